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
    path: tuple[str, ...]  # stylejax parameter path
    transform: Transform


class StateDictMismatch(ValueError):
    """Raised once, listing every missing, unexpected and mis-shaped key."""


def rules(cfg: GeneratorConfig) -> list[Rule]:
    """Every official generator entry except the fixed resample filters, in state dict order."""
    table: list[Rule] = []

    def dense(key, path, matrix=MATRIX):
        table.append(Rule(f"{key}.weight", (*path, "weight"), matrix))
        table.append(Rule(f"{key}.bias", (*path, "bias"), SAME))

    for res in cfg.block_resolutions:
        blk = ("synthesis_network", f"b{res}")
        key = f"synthesis.b{res}"
        if res == 4:
            table.append(Rule(f"{key}.const", (*blk, "const"), CONST))
        convs = ("conv1",) if res == 4 else ("conv0", "conv1")
        for conv in convs:
            table.append(Rule(f"{key}.{conv}.weight", (*blk, conv, "weight"), CONV))
            table.append(Rule(f"{key}.{conv}.noise_strength", (*blk, conv, "noise_strength"), SAME))
            table.append(Rule(f"{key}.{conv}.bias", (*blk, conv, "bias"), SAME))
            table.append(Rule(f"{key}.{conv}.noise_const", (*blk, conv, "noise_const"), SAME))
            dense(f"{key}.{conv}.affine", (*blk, conv, "affine"))
        table.append(Rule(f"{key}.torgb.weight", (*blk, "torgb", "weight"), TORGB))
        table.append(Rule(f"{key}.torgb.bias", (*blk, "torgb", "bias"), SAME))
        dense(f"{key}.torgb.affine", (*blk, "torgb", "affine"))
    if cfg.c_dim:
        dense("mapping.embed", ("mapping_network", "embed"))
    for i in range(cfg.mapping.num_layers):
        dense(f"mapping.fc{i}", ("mapping_network", f"fc{i}"))
    table.append(Rule("mapping.w_avg", ("mapping_network", "w_avg"), SAME))
    return table


def resample_filter_keys(cfg: GeneratorConfig) -> list[str]:
    """Official buffers that hold the fixed FIR filter (ignored, but checked)."""
    keys = []
    for res in cfg.block_resolutions:
        keys.append(f"synthesis.b{res}.resample_filter")
        convs = ("conv1",) if res == 4 else ("conv0", "conv1")
        keys += [f"synthesis.b{res}.{c}.resample_filter" for c in convs]
    return keys


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

    Strict both ways: every parameter filled, every entry used (the fixed
    resample filters are checked and dropped), every shape checked.
    """
    abstract = nnx.to_pure_dict(nnx.state(abstract_generator(cfg)))
    table = rules(cfg)
    filters = resample_filter_keys(cfg)
    missing, bad_shape = [], []
    out: dict = {}
    for rule in table:
        if rule.key not in state_dict:
            missing.append(rule.key)
            continue
        value = np.asarray(state_dict[rule.key], np.float32)
        expected = _get(abstract, rule.path).shape
        expected_official = rule.transform.to_official(np.empty(expected, np.float32)).shape
        if value.shape != expected_official:
            bad_shape.append(f"{rule.key}: {value.shape} (expected {expected_official})")
            continue
        _set(out, rule.path, np.ascontiguousarray(rule.transform.to_ours(value)))
    reference_filter = official_resample_filter()
    for key in filters:
        if key in state_dict and not np.allclose(state_dict[key], reference_filter, atol=1e-7):
            bad_shape.append(f"{key}: not the [1, 3, 3, 1] filter this port implements")
    known = {r.key for r in table} | set(filters)
    unexpected = sorted(set(state_dict) - known)
    if missing or unexpected or bad_shape:
        raise StateDictMismatch(
            "state dict does not match the generator config: "
            f"missing {missing}; unexpected {unexpected}; mis-shaped {bad_shape}"
        )
    return out


def state_dict_from_params(cfg: GeneratorConfig, params: Mapping) -> "OrderedDict[str, np.ndarray]":
    """stylejax pure parameter dict -> official state dict (filters included)."""
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for rule in rules(cfg):
        out[rule.key] = np.ascontiguousarray(rule.transform.to_official(np.asarray(_get(params, rule.path))))
    for key in resample_filter_keys(cfg):
        out[key] = official_resample_filter()
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
