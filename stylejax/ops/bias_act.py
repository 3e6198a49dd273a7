"""Bias, activation, gain and clamp, fused into one elementwise expression."""

from __future__ import annotations

import math

import jax.numpy as jnp

LRELU_SLOPE = 0.2
# Gain that keeps the activation's second moment at 1 for unit Gaussian input.
LRELU_GAIN = math.sqrt(2.0)


def bias_act(
    x: jnp.ndarray,
    b: jnp.ndarray | None,
    *,
    act: str = "linear",
    clamp: float | None = None,
) -> jnp.ndarray:
    """`clamp(act(x + b) * gain)` with `b` broadcast over the last axis.

    x: [..., C]; b: [C] or None. act: "linear" (gain 1) or "lrelu"
    (slope 0.2, gain sqrt(2)). The clamp acts on the value after the gain.
    """
    if b is not None:
        x = x + b
    if act == "lrelu":
        x = jnp.where(x >= 0, x, x * LRELU_SLOPE) * LRELU_GAIN
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    if clamp is not None:
        x = jnp.clip(x, -clamp, clamp)
    return x
