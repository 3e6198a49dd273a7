"""Fully connected layer with equalised learning rate."""

from __future__ import annotations

import math

import jax.numpy as jnp

from .bias_act import bias_act


def dense(
    x: jnp.ndarray,
    weight: jnp.ndarray,
    bias: jnp.ndarray | None,
    *,
    lr_multiplier: float = 1.0,
    act: str = "linear",
) -> jnp.ndarray:
    """x: [..., I]; weight: [I, O] (stored unscaled); bias: [O] -> [..., O].

    The effective weight is `weight * lr_multiplier / sqrt(I)` and the
    effective bias `bias * lr_multiplier` (equalised learning rate).
    """
    weight_gain = lr_multiplier / math.sqrt(weight.shape[0])
    y = x @ (weight * weight_gain)
    b = None if bias is None else bias * lr_multiplier
    return bias_act(y, b, act=act)
