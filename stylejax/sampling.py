"""Sample style codes at scale, resumably.

`sample_codes(G, out, n, ...)` writes into `out/`:

    meta.json      the run's arguments and the generator's identity
    z.npy          [N, z_dim] float32   inputs (sample i: normal(fold_in(key(seed), i)))
    w.npy          [N, w_dim] float32   mapping outputs before truncation
    s.npy          [N, D_S]  float32 or float16, style codes after truncation
    progress.json  {"chunks_done": k}   rewritten atomically after each chunk is flushed
    stats.npz      per-channel mean and std of S (float64 accumulation), at the end
    images/        optional thumbnails, <index>.png

Arrays are preallocated `.npy` memmaps, so an interrupted run loses at most the
chunk in flight, and running the same command again continues after the last
complete chunk. Every sample depends only on (seed, index): results do not
depend on the chunk size or on interruptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from .generator import Generator, functional, identity, jitted
from .images import save_png, to_uint8
from .io import check_settings, write_json, write_npz

DTYPES = {"float32": np.float32, "float16": np.float16}
META, PROGRESS, STATS = "meta.json", "progress.json", "stats.npz"


def sample_fn(G: Generator, psi: float, cutoff: int | None):
    """A jitted (params, seed_key, indices [n]) -> (z, w, s) for a chunk of sample indices."""
    fn, params = functional(G)

    def run(params, key, idx):
        z = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (G.config.z_dim,)))(idx)
        ws = fn.mapping(params, z)  # psi 1: ws[:, 0] is the untruncated w
        s = fn.styles(params, fn.truncate(params, ws, psi, cutoff))
        return z, ws[:, 0], s

    return jax.jit(run), params


def sample_codes(
    G: Generator,
    out: str | Path,
    n: int,
    psi: float = 0.7,
    cutoff: int | None = None,
    seed: int = 0,
    chunk: int = 1000,
    dtype: str = "float32",
    images: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write n samples into `out` (resuming a previous identical run). images: thumbnail size, 0 for none."""
    if n < 1 or chunk < 1:
        raise ValueError(f"n and chunk must be >= 1, got n={n}, chunk={chunk}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"n": n, "psi": psi, "cutoff": cutoff, "seed": seed, "chunk": chunk, "dtype": dtype,
            "images": images, "generator": identity(G), "version": 1}
    shapes = {"z": (n, G.config.z_dim), "w": (n, G.config.w_dim), "s": (n, G.space.dim)}
    dtypes = {"z": np.float32, "w": np.float32, "s": DTYPES[dtype]}
    if check_settings(out / META, meta, "samples"):
        arrays = {k: np.load(out / f"{k}.npy", mmap_mode="r+") for k in shapes}
        done = json.loads((out / PROGRESS).read_text())["chunks_done"] if (out / PROGRESS).exists() else 0
    else:
        arrays = {k: np.lib.format.open_memmap(out / f"{k}.npy", "w+", dtypes[k], shapes[k]) for k in shapes}
        write_json(out / PROGRESS, {"chunks_done": 0})
        write_json(out / META, meta)
        done = 0
    if images:
        (out / "images").mkdir(exist_ok=True)
    run, params = sample_fn(G, psi, cutoff)
    fn = functional(G)[0]
    key = jax.random.key(seed)
    n_chunks = -(-n // chunk)
    for c in range(done, n_chunks):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        z, w, s = jax.device_get(run(params, key, jnp.arange(lo, hi)))
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(w))):
            raise FloatingPointError(f"non-finite codes in samples {lo}-{hi - 1}: the generator is broken")
        arrays["z"][lo:hi], arrays["w"][lo:hi], arrays["s"][lo:hi] = z, w, s.astype(dtypes["s"])
        if images:
            _thumbnails(fn, params, s, out / "images", lo, images)
        for a in arrays.values():
            a.flush()
        write_json(out / PROGRESS, {"chunks_done": c + 1})
        if progress:
            progress(hi, n)
    if not (out / STATS).exists():
        _write_stats(out, arrays["s"])
    return out


def _thumbnails(fn, params, s, folder: Path, start: int, size: int, batch: int = 64) -> None:
    render = jitted(fn, "render")
    for i in range(0, len(s), batch):
        for j, im in enumerate(to_uint8(render(params, jnp.asarray(s[i : i + batch], jnp.float32)))):
            pil = Image.fromarray(im)
            if pil.size[0] != size:
                pil = pil.resize((size, size), Image.Resampling.LANCZOS)
            save_png(folder / f"{start + i + j}.png", pil)


def _write_stats(out: Path, s: np.ndarray, chunk: int = 4096) -> None:
    total = np.zeros(s.shape[1], np.float64)
    sq = np.zeros(s.shape[1], np.float64)
    for i in range(0, s.shape[0], chunk):
        block = np.asarray(s[i : i + chunk], np.float64)
        total += block.sum(0)
        sq += np.square(block).sum(0)
    mean = total / s.shape[0]
    std = np.sqrt(np.maximum(sq / s.shape[0] - mean**2, 0.0))
    write_npz(out / STATS, mean=mean.astype(np.float32), std=std.astype(np.float32), n=np.int64(s.shape[0]))


class Codes:
    """A finished sampling run, opened read-only (memmaps)."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        if not (folder / META).exists():
            raise ValueError(f"{folder} is not a codes folder (no {META}); run `stylejax sample` first")
        self.meta = json.loads((folder / META).read_text())
        progress = json.loads((folder / PROGRESS).read_text())["chunks_done"]
        if progress * self.meta["chunk"] < self.meta["n"] or not (folder / STATS).exists():
            raise ValueError(f"{folder} is an unfinished sampling run; rerun the same `stylejax sample` command")
        self.folder = folder
        self.z = np.load(folder / "z.npy", mmap_mode="r")
        self.w = np.load(folder / "w.npy", mmap_mode="r")
        self.s = np.load(folder / "s.npy", mmap_mode="r")
        with np.load(folder / STATS) as st:
            self.mean, self.std = st["mean"], st["std"]

    @classmethod
    def from_arrays(cls, z, w, s, generator: dict) -> "Codes":
        """In-memory codes (e.g. a few thousand for an evaluation), with S statistics."""
        self = cls.__new__(cls)
        self.folder, self.z, self.w, self.s = None, np.asarray(z), np.asarray(w), np.asarray(s)
        self.meta = {"n": len(self.s), "generator": generator}
        s64 = self.s.astype(np.float64)
        self.mean, self.std = s64.mean(0).astype(np.float32), s64.std(0).astype(np.float32)
        return self

    def __len__(self) -> int:
        return self.meta["n"]

    def space(self, name: str) -> np.ndarray:
        if name not in ("z", "w", "s"):
            raise ValueError(f"space must be 'z', 'w' or 's', got {name!r}")
        return getattr(self, name)
