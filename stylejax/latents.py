"""Seeds and input latents."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_seeds(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11] (ranges inclusive, order kept, no repeats)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = _RANGE.match(part.strip())
        if not m:
            raise ValueError(f"cannot parse seeds {text!r}: use e.g. '0-63' or '1,5,9-12'")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"cannot parse seeds {text!r}: range {lo}-{hi} is empty")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {text!r} repeat a seed")
    return seeds


def z_from_seeds(seeds, z_dim: int) -> np.ndarray:
    """[len(seeds), z_dim] float32: RandomState(seed).randn(z_dim), the official generate.py convention."""
    return np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds]).astype(np.float32)


def load_z(path: str | Path, z_dim: int) -> np.ndarray:
    """Input latents z [N, z_dim] from a .npy file (no pickles)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"z file {path}: not a readable .npy array ({e})") from None
    if arr.ndim != 2 or arr.shape[1] != z_dim:
        raise ValueError(f"z file {path} must have shape [N, {z_dim}], got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"z file {path} contains NaN or inf")
    return arr.astype(np.float32)


def load_latents(path: str | Path, w_dim: int, num_ws: int) -> np.ndarray:
    """External W [N, w_dim] or W+ [N, num_ws, w_dim] latents from a .npy file (no pickles)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"latents {path}: not a readable .npy array ({e})") from None
    if not (arr.ndim == 2 and arr.shape[1] == w_dim) and not (arr.ndim == 3 and arr.shape[1:] == (num_ws, w_dim)):
        raise ValueError(f"latents {path} must be W [N, {w_dim}] or W+ [N, {num_ws}, {w_dim}], got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"latents {path} contain NaN or inf")
    return arr.astype(np.float32)
