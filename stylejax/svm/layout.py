"""Data layout: training and validation rows gathered into blocks for chunked passes (`prepare_design`)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..selection import Selection


class Rows(NamedTuple):
    """Selected codes in row blocks, for chunked passes (a pytree).

    x:      [nb, B, D] rows shared by all attributes, or [K, nb, B, D] rows per
            attribute; storage dtype (float16 or float32), zero padding rows.
    y:      [K, nb, B] float32 labels +-1 (0 where weight is 0).
    weight: [K, nb, B] float32, 1 where the row is in attribute k's set, else 0.
    """

    x: jax.Array
    y: jax.Array
    weight: jax.Array


class Design(NamedTuple):
    """Training and validation rows plus the standardisation statistics [D]."""

    train: Rows
    val: Rows
    mean: jax.Array
    std: jax.Array


def prepare_design(codes, selection: Selection, mean, std, *, block_rows: int = 256) -> Design:
    """Gathers the selected rows of `codes` [N, D] for fitting.

    Args:
      codes: [N, D] numpy array, memmap (float16 kept as float16) or jax array.
      selection: labels and split over the same N samples.
      mean, std: [D] per-channel statistics defining standardised coordinates.
      block_rows: rows per step of every chunked pass, all attributes together
        (bounds the float32 temporaries to block_rows x D).
    """
    n = selection.labels.shape[1]
    if codes.ndim != 2 or codes.shape[0] != n:
        raise ValueError(f"codes have shape {codes.shape} but the selection labels {n} samples; expected [{n}, D]")
    mean = jnp.asarray(mean, jnp.float32)
    std = jnp.asarray(std, jnp.float32)
    if mean.shape != codes.shape[1:] or std.shape != codes.shape[1:]:
        raise ValueError(f"mean {mean.shape} and std {std.shape} must both have shape ({codes.shape[1]},)")
    if not bool(jnp.all(jnp.isfinite(mean)) & jnp.all(jnp.isfinite(std)) & jnp.all(std > 0)):
        raise ValueError("mean must be finite and std finite and > 0 (drop constant channels first)")
    labels = np.asarray(selection.labels)
    return Design(
        _gather_rows(codes, labels, np.asarray(selection.train), block_rows),
        _gather_rows(codes, labels, np.asarray(selection.val), block_rows),
        mean,
        std,
    )


def _gather_rows(codes, labels: np.ndarray, member: np.ndarray, block_rows: int) -> Rows:
    """Rows of `codes` in `member` [K, N], per attribute or shared (package docstring)."""
    k, n = member.shape
    counts = member.sum(axis=1)  # [K]
    union = np.flatnonzero(member.any(axis=0))
    # Per-attribute copies hold at most twice the rows of the union and spare
    # each attribute the flops of the others' rows; beyond that share one copy.
    per_attribute = k * counts.max() <= 2 * union.size
    if per_attribute:
        index = np.zeros((k, counts.max()), np.int64)  # [K, M], padded with row 0
        valid = np.arange(counts.max()) < counts[:, None]
        index[valid] = np.flatnonzero(member.reshape(-1)) % n
    else:
        index, valid = union[None], np.ones((1, union.size), bool)  # [1, M]
    m = index.shape[1]
    per_step = max(1, block_rows // index.shape[0])  # rows of each copy per scan step
    block = -(-m // -(-m // per_step))  # equal blocks with the least padding
    pad = -m % block
    index = np.pad(index, ((0, 0), (0, pad)))
    valid = np.pad(valid, ((0, 0), (0, pad)))
    owner = np.arange(k) if per_attribute else np.zeros(k, np.int64)  # row set of attribute k
    weight = np.take_along_axis(member, index[owner], axis=1) & valid[owner]  # [K, Mp]
    y = np.take_along_axis(labels, index[owner], axis=1) * weight
    shape = (k, -1, block)  # [K, nb, B]
    return Rows(
        _copy_rows(codes, index, block, per_attribute),
        jnp.asarray(y.reshape(shape), jnp.float32),
        jnp.asarray(weight.reshape(shape), jnp.float32),
    )


def _copy_rows(codes, index: np.ndarray, block: int, per_attribute: bool) -> jax.Array:
    """Device copy of codes[index] ([R, Mp] rows): [nb, R, B, D] if per_attribute else [nb, B, D].

    Blocks lead so that a scan step reads contiguous memory (a batch axis in
    front would make vmap(scan) transpose the whole buffer on every pass).
    One numpy gather (`np.take` reads only the selected rows of a memmap) into
    a 64-byte aligned host buffer that the CPU device then uses in place
    (`device_put(may_alias=True)`): the rows exist once, with no device-side
    scatter. (The previous block-by-block `.at[].set` into a donated buffer
    took 1.1 s for the 4,480 rows of the ratio benchmark; this takes tens of ms.)
    """
    if not isinstance(codes, np.ndarray):  # a jax array: a view of its host buffer on CPU
        codes = np.asarray(codes)
    dtype = np.float16 if codes.dtype == np.float16 else np.float32
    r, m = index.shape
    nb, d = m // block, codes.shape[1]
    order = index.reshape(r, nb, block).transpose(1, 0, 2).reshape(-1)  # block-major
    host = _aligned_empty((order.size, d), dtype)
    if codes.dtype == dtype:
        np.take(codes, order, axis=0, out=host, mode="clip")  # "raise" would buffer the output
    else:
        for i in range(0, order.size, 4096):  # converts dtype chunk by chunk
            host[i : i + 4096] = codes[order[i : i + 4096]]
    # One sum is non-finite if any value is (or, rarely, on overflow: then look row by row).
    if not np.isfinite(host.sum(dtype=np.float32)):
        bad = np.flatnonzero(~np.all(np.isfinite(host), axis=1))
        if bad.size:
            raise ValueError(f"codes contain NaN or inf (first at row {order[bad[0]]}); drop those samples first")
    rows = jax.device_put(host.reshape((nb, r, block, d) if per_attribute else (nb, block, d)), may_alias=True)
    return rows


def _aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """Uninitialised numpy array whose data is `align`-byte aligned (device_put can then alias it)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + align, np.uint8)
    offset = -raw.ctypes.data % align
    return raw[offset : offset + size].view(dtype).reshape(shape)


def _rows_axis(rows: Rows):
    """vmap axis of rows.x over attributes: 1 for per-attribute rows, None for shared ones."""
    return 1 if rows.x.ndim == 4 else None
