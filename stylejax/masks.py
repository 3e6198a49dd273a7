"""Region masks for style intervention: loading, validation and the automatic footprint mask.

A mask is float32 `[H, W]` (shared) or `[B, H, W]` (per face), exactly 0 or 1,
1 inside the region to edit, at the generator's image resolution.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, UnidentifiedImageError

# Automatic mask rule (see `footprint_mask`).
FOOTPRINT_BLUR = 1 / 64  # Gaussian sigma as a fraction of the image size (at least 1 px)
FOOTPRINT_THRESHOLD = 0.2  # fraction of the per-face maximum of the blurred change


class MaskError(ValueError):
    """A mask that cannot be read or is not usable."""


def binarize(mask, resolution: int, what: str = "mask") -> np.ndarray:
    """Threshold at 0.5 and check: float32 [..., R, R], neither empty nor full."""
    arr = np.asarray(mask, np.float32)
    if arr.ndim not in (2, 3) or arr.shape[-2:] != (resolution, resolution):
        raise MaskError(f"{what} must have shape [{resolution}, {resolution}] or [B, {resolution}, {resolution}], got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MaskError(f"{what} contains NaN or inf")
    out = (arr >= 0.5).astype(np.float32)
    inside = out.reshape(-1, resolution * resolution).mean(axis=1)
    if np.any(inside == 0):
        raise MaskError(f"{what} is empty (no pixel >= 0.5): nothing to edit")
    if np.any(inside == 1):
        raise MaskError(f"{what} is full (every pixel >= 0.5): no region to protect")
    return out


def load_mask(path: str | Path, resolution: int) -> np.ndarray:
    """A PNG (or any image PIL reads) -> binary float32 [R, R].

    Grey levels are scaled to [0, 1]; the image is resized (bilinear) to the
    generator resolution, then thresholded at 0.5.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = im.convert("L").resize((resolution, resolution), Image.Resampling.BILINEAR)
            arr = np.asarray(im, np.float32) / 255.0
    except (FileNotFoundError, IsADirectoryError):
        raise MaskError(f"mask file {path} not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise MaskError(f"mask {path} is not a readable image ({e})") from None
    return binarize(arr, resolution, what=f"mask {path.name}")


def load_masks(source, resolution: int, keys: list | None = None) -> np.ndarray:
    """Masks from a PNG file ([R, R], shared), a directory of `<key>.png` (one per face,
    [B, R, R] in the order of `keys`), a `.npy` file, or an array."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            if keys is None:
                raise MaskError("a mask directory needs the face keys (e.g. seeds) to match files")
            return np.stack([load_mask(path / f"{k}.png", resolution) for k in keys])
        if path.suffix == ".npy":
            try:
                arr = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise MaskError(f"mask {path} is not a readable .npy array ({e})") from None
            return binarize(arr, resolution, what=f"mask {path.name}")
        return load_mask(path, resolution)
    return binarize(source, resolution)


def gaussian_blur(img: jnp.ndarray, sigma: float) -> jnp.ndarray:
    """[B, H, W] separable Gaussian blur with zero padding."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k = jnp.asarray(k / k.sum(), img.dtype)
    conv = lambda v: jnp.convolve(v, k, mode="same")
    img = jax.vmap(jax.vmap(conv))(img)  # along W
    return jax.vmap(jax.vmap(conv, in_axes=1, out_axes=1))(img)  # along H


def footprint_mask(original: jnp.ndarray, edited: jnp.ndarray) -> np.ndarray:
    """The automatic mask: where the S translation visibly changes the image.

    Rule: D = mean over channels of |edited - original| per pixel; blur D with a
    Gaussian of sigma = max(1, R/64) px; keep pixels whose blurred D is at least
    0.2 of that face's maximum. images [B, R, R, C] -> binary float32 [B, R, R].
    """
    diff = jnp.mean(jnp.abs(edited - original), axis=-1)
    res = diff.shape[-1]
    blurred = gaussian_blur(diff, max(1.0, res * FOOTPRINT_BLUR))
    peak = jnp.max(blurred, axis=(1, 2), keepdims=True)
    mask = (blurred >= FOOTPRINT_THRESHOLD * peak) & (peak > 0)
    return binarize(np.asarray(mask, np.float32), res, what="automatic footprint mask")
