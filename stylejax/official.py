"""The rule table between official stylegan2-ada-pytorch state dicts and stylejax parameters.

Official tensors are channels-first (`[O, I, kh, kw]`, `[out, in]`); stylejax
stores channels-last (`[kh, kw, I, O]`, `[in, out]`). Every other weight
format is first brought into the official layout by `stylejax.formats`, so this
table is the single place where the two parameter trees meet.
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .config import GeneratorConfig
from .ops.fir import official_resample_filter
from .generator import Generator, abstract_generator


@dataclasses.dataclass(frozen=True)
class Transform:
    name: str
    to_ours: Callable[[np.ndarray], np.ndarray]
    to_official: Callable[[np.ndarray], np.ndarray]


SAME = Transform("same", lambda a: a, lambda a: a)
MATRIX = Transform("transpose", lambda a: a.T, lambda a: a.T)  # [out, in] <-> [in, out]
CONV = Transform(  # [O, I, kh, kw] <-> [kh, kw, I, O]
    "oihw->hwio", lambda a: a.transpose(2, 3, 1, 0), lambda a: a.transpose(3, 2, 0, 1)
)
CONST = Transform(  # [C, 4, 4] <-> [4, 4, C]
    "chw->hwc", lambda a: a.transpose(1, 2, 0), lambda a: a.transpose(2, 0, 1)
)
TORGB = Transform(  # [O, I, 1, 1] <-> [I, O]
    "oi11->io", lambda a: a[:, :, 0, 0].T, lambda a: a.T[:, :, None, None]
)


@dataclasses.dataclass(frozen=True)
class Rule:
    key: str  # official state dict key
    path: tuple[str, ...] | None  # stylejax parameter path; None: the fixed FIR filter buffer
    transform: Transform = SAME


class StateDictMismatch(ValueError):
    """Raised once, listing every missing, unexpected and mis-shaped key."""


def rules(cfg: GeneratorConfig) -> list[Rule]:
    """Every official generator entry, in official state dict order.

    Per module the official order is its parameters, its buffers, then its
    children. The `resample_filter` buffers hold a constant that stylejax
    does not store: they map to no path and are checked on the way in.
    """
    table: list[Rule] = []

    def dense(key, path):
        table.append(Rule(f"{key}.weight", (*path, "weight"), MATRIX))
        table.append(Rule(f"{key}.bias", (*path, "bias")))

    for res in cfg.block_resolutions:
        blk, key = ("synthesis_network", f"b{res}"), f"synthesis.b{res}"
        if res == 4:
            table.append(Rule(f"{key}.const", (*blk, "const"), CONST))
        table.append(Rule(f"{key}.resample_filter", None))
        for conv in ("conv1",) if res == 4 else ("conv0", "conv1"):
            table.append(Rule(f"{key}.{conv}.weight", (*blk, conv, "weight"), CONV))
            table.append(Rule(f"{key}.{conv}.noise_strength", (*blk, conv, "noise_strength")))
            table.append(Rule(f"{key}.{conv}.bias", (*blk, conv, "bias")))
            table.append(Rule(f"{key}.{conv}.resample_filter", None))
            table.append(Rule(f"{key}.{conv}.noise_const", (*blk, conv, "noise_const")))
            dense(f"{key}.{conv}.affine", (*blk, conv, "affine"))
        table.append(Rule(f"{key}.torgb.weight", (*blk, "torgb", "weight"), TORGB))
        table.append(Rule(f"{key}.torgb.bias", (*blk, "torgb", "bias")))
        dense(f"{key}.torgb.affine", (*blk, "torgb", "affine"))
    table.append(Rule("mapping.w_avg", ("mapping_network", "w_avg")))
    if cfg.c_dim:
        dense("mapping.embed", ("mapping_network", "embed"))
    for i in range(cfg.mapping.num_layers):
        dense(f"mapping.fc{i}", ("mapping_network", f"fc{i}"))
    return table


def _get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def _set(tree, path, value):
    for p in path[:-1]:
        tree = tree.setdefault(p, {})
    tree[path[-1]] = value


def params_from_state_dict(cfg: GeneratorConfig, state_dict: Mapping[str, np.ndarray]) -> dict:
    """Official state dict -> stylejax pure parameter dict (numpy, float32).

    Strict both ways: every entry of the table present, no entry outside it,
    every shape checked; all problems are reported in one error.
    """
    abstract = nnx.to_pure_dict(nnx.state(abstract_generator(cfg)))
    table = rules(cfg)
    fir = official_resample_filter()
    missing, bad = [], []
    out: dict = {}
    for rule in table:
        if rule.key not in state_dict:
            missing.append(rule.key)
            continue
        value = np.asarray(state_dict[rule.key], np.float32)
        if rule.path is None:
            if value.shape != fir.shape or not np.allclose(value, fir, rtol=0, atol=1e-7):
                bad.append(f"{rule.key}: not the [1, 3, 3, 1] filter this port implements")
            continue
        expected = rule.transform.to_official(np.empty(_get(abstract, rule.path).shape, np.float32)).shape
        if value.shape != expected:
            bad.append(f"{rule.key}: {value.shape} (expected {expected})")
            continue
        _set(out, rule.path, np.array(rule.transform.to_ours(value), np.float32, order="C"))
    unexpected = sorted(set(state_dict) - {r.key for r in table})
    if missing or unexpected or bad:
        raise StateDictMismatch(
            "state dict does not match the generator config: "
            f"missing {missing}; unexpected {unexpected}; mis-shaped {bad}"
        )
    return out


def state_dict_from_params(cfg: GeneratorConfig, params: Mapping) -> "OrderedDict[str, np.ndarray]":
    """stylejax pure parameter dict -> official state dict, in official order."""
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for rule in rules(cfg):
        if rule.path is None:
            out[rule.key] = official_resample_filter()
        else:
            value = np.asarray(_get(params, rule.path), np.float32)
            out[rule.key] = np.array(rule.transform.to_official(value), np.float32, order="C")
    return out


def generator_from_params(cfg: GeneratorConfig, params: Mapping) -> Generator:
    """Build a ready generator from a pure parameter dict, without computing an init."""
    graphdef, state = nnx.split(abstract_generator(cfg))
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, params))
    return nnx.merge(graphdef, state)


def load_official(weights: str | Path, config: str | Path | Mapping | None = None) -> Generator:
    """Load an official state dict (`.npz`, official key names) with its `init_kwargs`.

    `config` is a `config.json` holding `init_kwargs` (default: the one beside
    the weights), or the init_kwargs mapping itself.
    """
    weights = Path(weights)
    if config is None:
        config = weights.with_name("config.json")
    if not isinstance(config, Mapping):
        config = json.loads(Path(config).read_text())
    kwargs = config.get("init_kwargs", config)
    cfg = GeneratorConfig.from_official_kwargs(kwargs)
    with np.load(weights) as npz:
        state_dict = {k: npz[k] for k in npz.files}
    return generator_from_params(cfg, params_from_state_dict(cfg, state_dict))
