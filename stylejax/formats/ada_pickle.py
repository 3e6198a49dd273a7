"""NVIDIA PyTorch network pickles: stylegan2-ada-pytorch and stylegan3 `--cfg=stylegan2` (formats.md §3)."""

import re

from .errors import FormatError, NoGeneratorError, UnsupportedNetworkError
from .layout import GENERATOR_ARGS, MAPPING_DEFAULTS, expected_state_dict_shapes, fill_defaults, fp16_notes
from .rules import Rule, apply_rules
from .safe_pickle import PersistentRecord
from .source_network import SourceNetwork

NETWORKS = ('G_ema', 'G')
# ada's Generator signature, for files that passed some arguments positionally (`_init_args`).
_POSITIONAL = (*GENERATOR_ARGS, 'mapping_kwargs', 'synthesis_kwargs')
# Every entry keeps its ada name; the strict check against init_kwargs does the rest.
_RULES = (Rule(r'.*', lambda m: m[0]),)


def _field(record: PersistentRecord, name: str, kind: type | tuple[type, ...], default):
    value = record.state.get(name, default)
    if not isinstance(value, kind):
        raise FormatError(f'{record.class_name}.{name} has unexpected type {type(value).__name__}')
    return value


def module_state_dict(root: PersistentRecord) -> dict:
    """torch's `state_dict()` of a persistent module tree: per module its parameters, its persistent
    buffers, then each child under the prefix `name.` (iterative, so deep trees cannot overflow)."""
    entries = {}
    stack = [(root, '', frozenset())]
    while stack:
        record, prefix, ancestors = stack.pop()
        if id(record) in ancestors:
            raise FormatError(f'network modules form a cycle at {prefix[:-1]!r}')
        non_persistent = _field(record, '_non_persistent_buffers_set', (set, frozenset), set())
        for group in ('_parameters', '_buffers'):
            for name, tensor in _field(record, group, dict, {}).items():
                if tensor is not None and not (group == '_buffers' and name in non_persistent):
                    entries[f'{prefix}{name}'] = tensor
        children = []
        for name, child in _field(record, '_modules', dict, {}).items():
            if child is not None:
                if not isinstance(child, PersistentRecord):
                    raise FormatError(f'module {prefix}{name} is a {type(child).__name__}, not a network module')
                children.append((child, f'{prefix}{name}.', ancestors | {id(record)}))
        stack.extend(reversed(children))
    return entries


def _init_kwargs(generator: PersistentRecord, mapping) -> dict:
    """ada Generator kwargs from `_init_args`/`_init_kwargs`, EasyDicts as dicts, defaults filled.

    stylegan3 passes synthesis kwargs flat (`**synthesis_kwargs`); they are moved into synthesis_kwargs.
    """
    args = _field(generator, '_init_args', (tuple, list), ())
    given = {**dict(zip(_POSITIONAL, args)), **_field(generator, '_init_kwargs', dict, {})}
    kwargs = {k: dict(v) if isinstance(v, dict) else v for k, v in given.items() if k in _POSITIONAL}
    synthesis_kwargs = kwargs.setdefault('synthesis_kwargs', {})
    mapping_kwargs = kwargs.setdefault('mapping_kwargs', {})
    if not (isinstance(synthesis_kwargs, dict) and isinstance(mapping_kwargs, dict)):
        raise FormatError('Generator _init_kwargs has non-dict mapping_kwargs or synthesis_kwargs')
    synthesis_kwargs.update({k: v for k, v in given.items() if k not in _POSITIONAL})
    if 'w_avg_beta' not in mapping_kwargs and isinstance(mapping, PersistentRecord):
        # The attribute is the value actually used (stylegan3's default differs from ada's).
        beta = mapping.state.get('w_avg_beta', MAPPING_DEFAULTS['w_avg_beta'])
        if beta is None or isinstance(beta, float):
            mapping_kwargs['w_avg_beta'] = beta
    return fill_defaults(kwargs)


def convert_ada_pickle(top: dict, network: str = 'G_ema') -> SourceNetwork:
    """SourceNetwork of `top[network]` ('G_ema' or 'G') from an unpickled NVIDIA PyTorch network pickle."""
    if network not in NETWORKS:
        raise NoGeneratorError(f'network must be one of {NETWORKS}, not {network!r}')
    generator = top.get(network)
    if not isinstance(generator, PersistentRecord):
        present = [k for k in NETWORKS if isinstance(top.get(k), PersistentRecord)]
        if present:
            raise NoGeneratorError(f'pickle has no {network!r} network (it has {", ".join(present)})')
        raise NoGeneratorError(f'pickle holds no generator (top-level keys: {", ".join(map(str, top))})')
    if generator.class_name != 'Generator':
        raise UnsupportedNetworkError(f'{network} is a {generator.class_name}, not a Generator')
    modules = _field(generator, '_modules', dict, {})
    synthesis = modules.get('synthesis')
    if isinstance(synthesis, PersistentRecord):
        layers = _field(synthesis, '_modules', dict, {})
        if 'input' in layers or any(re.fullmatch(r'L\d+_\d+_\d+', str(n)) for n in layers):
            raise UnsupportedNetworkError('StyleGAN3 (config T/R) generators are not supported: '
                                          "synthesis has 'input' and L<i>_<size>_<channels> layers")
        for block in layers.values():
            arch = block.state.get('architecture') if isinstance(block, PersistentRecord) else None
            if isinstance(arch, str) and arch != 'skip':
                raise UnsupportedNetworkError(f"architecture {arch!r} is not supported (only 'skip')")

    init_kwargs = _init_kwargs(generator, modules.get('mapping'))
    state_dict, notes = apply_rules(expected_state_dict_shapes(init_kwargs), module_state_dict(generator), _RULES)
    others = [str(k) for k in top if k != network]
    if others:
        notes.insert(0, f'ignored: {", ".join(others)}')
    notes = (f'network: {network}', *notes, *fp16_notes(init_kwargs))
    return SourceNetwork('ada-pickle', init_kwargs, state_dict, notes)
