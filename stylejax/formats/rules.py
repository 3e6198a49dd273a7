"""Strict mapping of a file's entries onto the ada state_dict through a per-format rule table.

The table is applied both ways: every ada key expected from init_kwargs must be filled with the
expected shape, and every source entry must be used or explicitly ignored. All disagreements are
collected and raised as one `StateDictMismatchError`.
"""

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import StateDictMismatchError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Transform:
    """A layout change. `source_shape(ada_shape)` is the only source shape accepted (checked before
    `apply` runs, so a wrong source is reported rather than silently sliced or reshaped);
    `apply(float32 source array) -> ada array`."""

    source_shape: Callable[[Shape], Shape]
    apply: Callable[[np.ndarray], np.ndarray]


IDENTITY = Transform(lambda s: s, lambda x: x)
TRANSPOSE = Transform(lambda s: s[::-1], lambda x: x.T)
DROP_AXIS0 = Transform(lambda s: (1, *s), lambda x: x[0])
DROP_AXES01 = Transform(lambda s: (1, 1, *s), lambda x: x[0, 0])


@dataclass(frozen=True)
class Rule:
    """ada keys fully matching `pattern` come from source entry `source(match)` through `transform`;
    with `source=None` they have no counterpart in the file and get the fixed array `value`."""

    pattern: str
    source: Callable[[re.Match], str] | None = None
    transform: Transform = IDENTITY
    value: np.ndarray | None = None


def _listing(items: list[str], limit: int = 8) -> str:
    more = f' (+{len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


def _finish(array: np.ndarray) -> np.ndarray:
    """C-contiguous, writeable; copies only when needed (np.ascontiguousarray would make 0-d arrays 1-d)."""
    array = np.asarray(array, order='C')
    return array if array.flags.writeable else array.copy()


def apply_rules(expected: Mapping[str, Shape], source: Mapping[str, Any], rules: Sequence[Rule],
                ignore: Sequence[tuple[str, str]] = ()) -> tuple[dict[str, np.ndarray], list[str]]:
    """Build the ada state_dict (in `expected` order, float32) from `source` (name -> array-like).

    `ignore` holds (regex on source names, reason) for entries deliberately left out. Returns the
    state_dict and notes (ignored entries, dtype conversions). Source values are materialised only
    after their shape has been checked.
    """
    compiled = [(re.compile(rule.pattern), rule) for rule in rules]
    state, used = {}, set()
    missing, misshaped, converted = [], [], Counter()
    for key, shape in expected.items():
        match, rule = next(((m, r) for p, r in compiled if (m := p.fullmatch(key))), (None, None))
        if rule is None:
            missing.append(key)
            continue
        if rule.source is None:
            if rule.value.shape != shape:
                misshaped.append(f'{key} {rule.value.shape} (expected {shape})')
            state[key] = rule.value.copy()
            continue
        name = rule.source(match)
        if name not in source:
            missing.append(key if name == key else f'{key} (from {name})')
            continue
        used.add(name)
        value, want = source[name], rule.transform.source_shape(shape)
        got = getattr(value, 'shape', None)
        if not (isinstance(got, tuple) and all(type(d) is int for d in got)):
            misshaped.append(f'{name} is a {type(value).__name__}, not an array')
            continue
        if got != want:
            misshaped.append(f'{name} {got} (expected {want}' + (')' if name == key else f' for {key})'))
            continue
        array = np.asarray(value)
        if array.dtype.kind != 'f':
            misshaped.append(f'{name} has dtype {array.dtype}, not floating point')
            continue
        if array.dtype != np.float32:
            converted[str(array.dtype)] += 1
        state[key] = _finish(rule.transform.apply(array.astype(np.float32, copy=False)))

    ignore_compiled = [(re.compile(p), reason) for p, reason in ignore]
    ignored, unexpected = {}, []
    for name in source:
        if name in used:
            continue
        reason = next((r for p, r in ignore_compiled if p.fullmatch(name)), None)
        if reason is None:
            unexpected.append(name)
        else:
            ignored.setdefault(reason, []).append(name)
    if missing or unexpected or misshaped:
        parts = [f'{label} [{_listing(items)}]' for label, items in
                 (('missing', missing), ('unexpected', unexpected), ('mis-shaped', misshaped)) if items]
        raise StateDictMismatchError('weights do not match the architecture: ' + '; '.join(parts))
    notes = [f'ignored {reason}: {_listing(names)}' for reason, names in ignored.items()]
    notes += [f'converted {n} {dtype} entries to float32' for dtype, n in converted.items()]
    return state, notes
