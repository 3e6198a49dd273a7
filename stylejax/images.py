"""Image helpers: raw generator output -> uint8 / PIL, grids, atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .io import atomic_write


def to_uint8(img) -> np.ndarray:
    """Raw images [..., H, W, C] (about [-1, 1]) -> uint8, as the official generate.py does:
    clip(img * 127.5 + 128, 0, 255), truncated."""
    img = np.asarray(img, np.float32)
    return np.clip(img * 127.5 + 128.0, 0, 255).astype(np.uint8)


def to_pil(img) -> Image.Image | list[Image.Image]:
    """One raw image [H, W, C] -> PIL image; a batch [B, H, W, C] -> a list of them."""
    arr = to_uint8(img)
    if arr.ndim == 4:
        return [to_pil_uint8(a) for a in arr]
    return to_pil_uint8(arr)


def to_pil_uint8(arr: np.ndarray) -> Image.Image:
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"expected an image [H, W, 1 or 3], got shape {arr.shape}")
    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


def grid(images: np.ndarray, ncol: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 image with `ncol` columns and `pad` pixels between."""
    n, h, w, c = images.shape
    nrow = -(-n // ncol)
    out = np.full((nrow * (h + pad) - pad, ncol * (w + pad) - pad, c), fill, np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, ncol)
        out[r * (h + pad): r * (h + pad) + h, k * (w + pad): k * (w + pad) + w] = im
    return out


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of [H, W, C] by an integer factor (pixels stay visible)."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def save_png(path: str | Path, image: np.ndarray | Image.Image) -> None:
    """Write a PNG atomically (temp file in the same folder, then rename)."""
    if not isinstance(image, Image.Image):
        image = to_pil_uint8(np.asarray(image))
    with atomic_write(path) as f:
        image.save(f, format="PNG")
