"""The fixtures' reproducible random-weight recipe (fixtures/README.md, "Weight recipe").

Used to regenerate the `ffhq-shape` weights, which are too large to store,
and by benchmarks that need a full-size official state dict.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable

import numpy as np

from .ops.fir import official_resample_filter


def _scale(key: str, lr_multiplier: float) -> tuple[float, float]:
    """(a, b) of the first matching rule: value = a * N(0, 1) + b."""
    if key.endswith("affine.bias"):
        return 0.1, 1.0
    if key.startswith("mapping.fc") and key.endswith(".bias"):
        return 10.0, 0.0
    if key.endswith(".bias"):
        return 0.1, 0.0
    if key.endswith("noise_strength"):
        return 0.1, 0.0
    if key == "mapping.w_avg":
        return 0.5, 0.0
    if key.startswith("mapping.fc") and key.endswith(".weight"):
        return 1.0 / lr_multiplier, 0.0
    return 1.0, 0.0


def recipe_state_dict(
    entries: Iterable[tuple[str, tuple[int, ...]]], weight_seed: int, lr_multiplier: float = 0.01
) -> "OrderedDict[str, np.ndarray]":
    """Official state dict from (key, shape) pairs in state dict order."""
    rng = np.random.default_rng(weight_seed)
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for key, shape in entries:
        if key.endswith("resample_filter"):
            out[key] = official_resample_filter()
            continue
        a, b = _scale(key, lr_multiplier)
        out[key] = (a * rng.standard_normal(size=tuple(shape)) + b).astype(np.float32)
    return out
