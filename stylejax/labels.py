"""Attribute scores for sampled codes: from CSV, from .npy, or from a scorer on rendered images."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import jax.numpy as jnp
import numpy as np

from .generator import Generator, functional, jitted


class Labels:
    """Scores [M, K] for K attributes of the codes at `index` [M] (M <= N; rows may be a subset)."""

    def __init__(self, names: list[str], index: np.ndarray, scores: np.ndarray):
        scores = np.asarray(scores, np.float64)
        index = np.asarray(index, np.int64)
        if scores.ndim != 2 or scores.shape != (len(index), len(names)):
            raise ValueError(f"scores must have shape [{len(index)}, {len(names)}], got {scores.shape}")
        if not np.all(np.isfinite(scores)):
            bad = np.argwhere(~np.isfinite(scores))[0]
            raise ValueError(f"label of attribute {names[bad[1]]!r} for sample {index[bad[0]]} is NaN or inf")
        if len(np.unique(index)) != len(index):
            raise ValueError("labels list a sample index twice")
        self.names, self.index, self.scores = list(names), index, scores

    def column(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise ValueError(f"unknown attribute {name!r}; labels have {self.names}")
        return self.scores[:, self.names.index(name)]

    def check_codes(self, n: int) -> None:
        if len(self.index) and (self.index.min() < 0 or self.index.max() >= n):
            raise ValueError(f"labels refer to sample {self.index.max()} but there are only {n} codes")


def load_labels(path: str | Path, n_codes: int, names: list[str] | None = None) -> Labels:
    """CSV (first column: sample index; one column per attribute, header names them)
    or .npy ([N] or [N, K] scores for all N codes; `names` names the columns)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"labels file {path} not found")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"labels {path}: not a readable .npy array ({e})") from None
        arr = arr[:, None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[0] != n_codes:
            raise ValueError(f"labels {path} must have {n_codes} rows (one per code), got shape {arr.shape}")
        names = names or [f"attr{i}" for i in range(arr.shape[1])]
        if len(names) != arr.shape[1]:
            raise ValueError(f"{len(names)} attribute names for {arr.shape[1]} label columns")
        labels = Labels(names, np.arange(n_codes), arr)
    else:
        labels = _read_csv(path)
    labels.check_codes(n_codes)
    return labels


def _read_csv(path: Path) -> Labels:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2 or len(rows[0]) < 2:
        raise ValueError(f"labels {path}: need a header (index, attribute...) and at least one row")
    names = [h.strip() for h in rows[0][1:]]
    index, scores = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise ValueError(f"labels {path}, line {line}: {len(row)} fields, expected {len(rows[0])}")
        try:
            index.append(int(row[0]))
            scores.append([_score(v) for v in row[1:]])
        except ValueError:
            raise ValueError(f"labels {path}, line {line}: not numbers: {row}") from None
    return Labels(names, np.array(index), np.array(scores))


def _score(text: str) -> float:
    text = text.strip().lower()
    if text in ("true", "false"):
        return float(text == "true")
    return float(text) if text else float("nan")


def score_codes(
    G: Generator,
    s: np.ndarray,
    scorer: Callable[[jnp.ndarray], jnp.ndarray],
    names: list[str],
    batch: int = 256,
    noise_mode: str = "const",
) -> Labels:
    """Render codes s [N, D_S] in batches and score them: scorer(images [B, H, W, C]) -> [B, K]."""
    fn, params = functional(G)
    render = jitted(fn, "render")
    out = []
    for i in range(0, len(s), batch):
        img = render(params, jnp.asarray(s[i : i + batch], jnp.float32), noise_mode=noise_mode)
        out.append(np.asarray(scorer(img), np.float64).reshape(img.shape[0], -1))
    return Labels(names, np.arange(len(s)), np.concatenate(out))
