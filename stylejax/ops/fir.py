"""The [1, 3, 3, 1] FIR filter used for 2x up-sampling.

The official code zero-stuffs, pads and runs a 4x4 convolution. The filter is
separable and a 2x up-sampling has two output phases per axis, so every
output sample is a two-tap combination of neighbouring inputs. Writing it in
that polyphase form avoids convolving mostly-zero arrays.
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

FIR_TAPS = (1.0, 3.0, 3.0, 1.0)


def fir_1d(up: int = 2) -> np.ndarray:
    """[4] per-axis taps, normalised to sum `up` (the 2-D filter sums to up**2)."""
    taps = np.asarray(FIR_TAPS, np.float64)
    return taps / taps.sum() * up


def official_resample_filter() -> np.ndarray:
    """[4, 4] float32: the official `resample_filter` buffer, outer(taps) / sum**2."""
    f = fir_1d(up=1)
    return np.outer(f, f).astype(np.float32)


def _upsample_axis(x: jnp.ndarray, axis: int) -> jnp.ndarray:
    # Official semantics on one axis: sample n goes to index 2n of a zero
    # array of length 2L, padded (2, 1), then filtered. Output phase 0 mixes
    # x[q-1], x[q] with taps f[0], f[2]; phase 1 mixes x[q], x[q+1] with f[1], f[3].
    f = fir_1d()
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (1, 1)
    xp = jnp.pad(x, pad)
    prev = jnp.take(xp, jnp.arange(0, n), axis=axis)
    here = jnp.take(xp, jnp.arange(1, n + 1), axis=axis)
    nxt = jnp.take(xp, jnp.arange(2, n + 2), axis=axis)
    even = f[0] * prev + f[2] * here
    odd = f[1] * here + f[3] * nxt
    out = jnp.stack([even, odd], axis=axis + 1)  # [..., L, 2, ...]
    shape = list(x.shape)
    shape[axis] = 2 * n
    return out.reshape(shape)


def upsample_2x(x: jnp.ndarray) -> jnp.ndarray:
    """[B, H, W, C] -> [B, 2H, 2W, C], the skip-architecture image up-sampling."""
    return _upsample_axis(_upsample_axis(x, 1), 2)


def upsample_conv_phases() -> np.ndarray:
    """[2, 3, 3] matrix Q[r, k, u] folding the FIR into a 3x3 up-sampling conv.

    The official up-sampling conv is a stride-2 transposed conv with a 3x3
    kernel W (giving 2H+1 samples) followed by the FIR with padding (1, 1).
    Their composition is a transposed conv with the 6-tap kernel g = W * f
    (full convolution), and output phase r of it is an ordinary padded 3-tap
    correlation with taps g[r + 4 - 2k], k = 0..2. Q maps W's taps u to them.
    """
    f = fir_1d()
    q = np.zeros((2, 3, 3))
    for r in range(2):
        for k in range(3):
            for u in range(3):
                j = r + 4 - 2 * k - u
                if 0 <= j < 4:
                    q[r, k, u] = f[j]
    return q
