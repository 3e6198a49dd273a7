"""2x down-sampling with the [1, 3, 3, 1] FIR filter, as plain jnp functions.

The filter is separable, so each axis is filtered by a four-term weighted sum
of shifted slices; on CPU this is cheaper than a depthwise convolution. The
filter is normalised to sum 1 per axis (the image's mean is kept).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from stylejax.ops import FIR_TAPS

_TAPS = np.asarray(FIR_TAPS, np.float64) / np.sum(FIR_TAPS)


def _filter_axis(x: jnp.ndarray, axis: int, pad: int, stride: int) -> jnp.ndarray:
    # Valid correlation of the padded axis with the 4 taps, keeping every `stride`-th output.
    widths = [(0, 0)] * x.ndim
    widths[axis] = (pad, pad)
    xp = jnp.pad(x, widths)
    n_out = (xp.shape[axis] - len(_TAPS)) // stride + 1
    span = stride * (n_out - 1) + 1
    return sum(
        float(t) * lax.slice_in_dim(xp, k, k + span, stride=stride, axis=axis)
        for k, t in enumerate(_TAPS)
    )


def blur(x: jnp.ndarray, pad: int) -> jnp.ndarray:
    """[B, H, W, C] -> [B, H + 2 pad - 3, W + 2 pad - 3, C]: the FIR filter, zero padding."""
    return _filter_axis(_filter_axis(x, 1, pad, 1), 2, pad, 1)


def downsample_2x(x: jnp.ndarray) -> jnp.ndarray:
    """[B, H, W, C] -> [B, H/2, W/2, C]: FIR low-pass (padding 1) then every second sample."""
    return _filter_axis(_filter_axis(x, 1, 1, 2), 2, 1, 2)
