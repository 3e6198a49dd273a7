"""Equalised-learning-rate convolution (optionally 2x down-sampling) for the toyfaces networks."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from stylejax import ops
from stylejax.toyfaces.downsample import blur, downsample_2x

_DIMS = ("NHWC", "HWIO", "NHWC")


def conv2d(
    x: jnp.ndarray,
    weight: jnp.ndarray,
    bias: jnp.ndarray | None,
    *,
    down: int = 1,
    act: str = "linear",
    gain: float = 1.0,
) -> jnp.ndarray:
    """x [B, H, W, I], weight [k, k, I, O] (stored unscaled) -> [B, H/down, W/down, O].

    The effective weight is weight / sqrt(k k I) (equalised learning rate). With
    down=2 the input is FIR-filtered before a stride-2 convolution (a 1x1 kernel
    just takes the filtered samples), so no aliasing enters the down-sampling.
    `gain` multiplies the output after the activation.
    """
    k, _, fan_in_ch, _ = weight.shape
    w = weight * (1.0 / math.sqrt(k * k * fan_in_ch))
    if down == 1:
        p = k // 2
        y = lax.conv_general_dilated(x, w, (1, 1), [(p, p), (p, p)], dimension_numbers=_DIMS)
    elif down == 2 and k == 1:
        y = jnp.einsum("bhwi,io->bhwo", downsample_2x(x), w[0, 0])
    elif down == 2:
        # Padding chosen so that [B, H, W] maps to [B, H/2, W/2] with the filter centred.
        xf = blur(x, pad=(k + 1) // 2)
        y = lax.conv_general_dilated(xf, w, (2, 2), "VALID", dimension_numbers=_DIMS)
    else:
        raise ValueError(f"down must be 1 or 2, got {down}")
    y = ops.bias_act(y, bias, act=act)
    return y * gain if gain != 1.0 else y


class Conv(nnx.Module):
    """Parameters of one `conv2d`: weight [k, k, I, O] ~ N(0, 1), bias [O] zeros (or none)."""

    def __init__(self, in_ch, out_ch, kernel, *, rngs: nnx.Rngs, down=1, act="lrelu", gain=1.0, bias=True):
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (kernel, kernel, in_ch, out_ch)))
        self.bias = nnx.Param(jnp.zeros((out_ch,))) if bias else None
        self.down, self.act, self.gain = down, act, gain

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x [B, H, W, I] -> [B, H/down, W/down, O]."""
        b = None if self.bias is None else self.bias[...]
        return conv2d(x, self.weight[...], b, down=self.down, act=self.act, gain=self.gain)
