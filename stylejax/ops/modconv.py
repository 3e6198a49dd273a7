"""Modulated convolution (StyleGAN2), with styles as explicit inputs.

Two formulations of the same function:

* `modulated_conv` scales the *input* by the styles, runs one shared-weight
  convolution for the whole batch and scales the output by the demodulation
  coefficients. Up-sampling convs fold the FIR filter into the kernel and run
  as one ordinary 3x3 conv producing the four output phases as channels.
  This is the formulation the library uses (benchmarks/bench_modconv.py
  measures both).
* `modulated_conv_reference` follows the official computation literally:
  per-sample modulated and demodulated weights, a stride-2 transposed conv
  and a separate FIR pass. It exists to test the fast path against.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .fir import fir_1d, upsample_conv_phases

# Added under the square root of the demodulation norm (official value).
DEMOD_EPS = 1e-8
_DIMS = ("NHWC", "HWIO", "NHWC")


def _conv(x, w, padding, precision, lhs_dilation=(1, 1)):
    return lax.conv_general_dilated(
        x, w, (1, 1), padding, lhs_dilation=lhs_dilation,
        dimension_numbers=_DIMS, precision=precision,
    )


def demodulation(weight: jnp.ndarray, s: jnp.ndarray) -> jnp.ndarray:
    """weight [k, k, I, O], s [B, I] -> [B, O] = 1 / ||weight * s||."""
    wsq = jnp.sum(jnp.square(weight), axis=(0, 1))  # [I, O]
    return lax.rsqrt(jnp.square(s) @ wsq + DEMOD_EPS)


def upsample_conv_kernel(weight: jnp.ndarray) -> jnp.ndarray:
    """weight [3, 3, I, O] -> [3, 3, I, 4 * O], phases (ry, rx) major in the last axis."""
    if weight.shape[:2] != (3, 3):
        raise ValueError(f"up-sampling conv needs a 3x3 kernel, got {weight.shape[:2]}")
    q = jnp.asarray(upsample_conv_phases(), weight.dtype)  # [2 (r), 3 (k), 3 (u)]
    k = jnp.einsum("rkv,slu,vuio->klirso", q, q, weight)  # [3, 3, I, 2, 2, O]
    return k.reshape(3, 3, weight.shape[2], 4 * weight.shape[3])


def modulated_conv(
    x: jnp.ndarray,
    weight: jnp.ndarray,
    s: jnp.ndarray,
    *,
    demodulate: bool = True,
    up: int = 1,
    precision=None,
) -> jnp.ndarray:
    """x [B, H, W, I], weight [k, k, I, O], s [B, I] -> [B, up*H, up*W, O]."""
    b, h, w, _ = x.shape
    out_ch = weight.shape[3]
    x = x * s[:, None, None, :].astype(x.dtype)
    if up == 1:
        p = weight.shape[0] // 2
        y = _conv(x, weight.astype(x.dtype), [(p, p), (p, p)], precision)
    elif up == 2:
        kernel = upsample_conv_kernel(weight).astype(x.dtype)
        y = _conv(x, kernel, [(1, 1), (1, 1)], precision)  # [B, H, W, 4*O]
        y = y.reshape(b, h, w, 2, 2, out_ch)
        y = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, out_ch)
    else:
        raise ValueError(f"up must be 1 or 2, got {up}")
    if demodulate:
        y = y * demodulation(weight, s)[:, None, None, :].astype(y.dtype)
    return y


def to_rgb(x: jnp.ndarray, weight: jnp.ndarray, s: jnp.ndarray, *, precision=None) -> jnp.ndarray:
    """1x1 modulated conv without demodulation: x [B, H, W, I], weight [I, O], s [B, I]."""
    # 1/sqrt(fan_in) is applied here, not to s, so S stays the raw affine output.
    gain = 1.0 / np.sqrt(weight.shape[0])
    xs = x * (s * gain)[:, None, None, :].astype(x.dtype)
    return jnp.einsum("bhwi,io->bhwo", xs, weight.astype(x.dtype), precision=precision)


def modulated_conv_reference(
    x: jnp.ndarray,
    weight: jnp.ndarray,
    s: jnp.ndarray,
    *,
    demodulate: bool = True,
    up: int = 1,
    precision=None,
) -> jnp.ndarray:
    """The literal official computation (per-sample weights); same contract."""
    wm = weight[None] * s[:, None, None, :, None]  # [B, k, k, I, O]
    if demodulate:
        wm = wm * lax.rsqrt(jnp.sum(jnp.square(wm), axis=(1, 2, 3), keepdims=True) + DEMOD_EPS)

    def one(xi, wi):
        xi = xi[None]
        if up == 1:
            p = wi.shape[0] // 2
            return _conv(xi, wi, [(p, p), (p, p)], precision)[0]
        # Transposed conv = correlation of the 2x-dilated input with the
        # spatially flipped kernel, padded k-1 (2H+1 samples per axis) ...
        k = wi.shape[0]
        y = _conv(xi, wi[::-1, ::-1], [(k - 1, k - 1)] * 2, precision, lhs_dilation=(2, 2))
        # ... then the 4x4 FIR with padding (1, 1), channel by channel.
        f = fir_1d()
        f2 = jnp.asarray(np.outer(f, f), y.dtype)[:, :, None, None]
        ch = y.shape[-1]
        y = lax.conv_general_dilated(
            y, jnp.tile(f2, (1, 1, 1, ch)), (1, 1), [(1, 1), (1, 1)],
            dimension_numbers=_DIMS, feature_group_count=ch, precision=precision,
        )
        return y[0]

    return jax.vmap(one)(x, wm)
