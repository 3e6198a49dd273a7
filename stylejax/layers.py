"""Small NNX building blocks shared by the networks: buffers and dense layers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from . import ops


class Buffer(nnx.Variable):
    """A non-trainable array that is part of the network (noise_const, w_avg)."""


class Dense(nnx.Module):
    """Equalised-lr fully connected layer; weight stored [in, out], unscaled."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rngs: nnx.Rngs,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        act: str = "linear",
    ):
        # Official init: N(0, 1) / lr_multiplier, so the effective weight is N(0, 1/fan_in).
        w = jax.random.normal(rngs.params(), (in_features, out_features)) / lr_multiplier
        self.weight = nnx.Param(w)
        self.bias = nnx.Param(jnp.full((out_features,), bias_init / lr_multiplier, jnp.float32))
        self.lr_multiplier = lr_multiplier
        self.act = act

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x [..., in] -> [..., out]."""
        return ops.dense(
            x, self.weight[...], self.bias[...], lr_multiplier=self.lr_multiplier, act=self.act
        )
