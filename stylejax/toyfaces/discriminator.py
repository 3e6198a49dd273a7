"""StyleGAN2 residual discriminator (Flax NNX, NHWC) for small images.

fromRGB (1x1) at the input resolution, then one residual block per resolution
down to 8x8 (each halves the resolution), then the 4x4 epilogue: minibatch
standard deviation, 3x3 conv, fc, fc -> one logit per image. Every layer has
an equalised learning rate; hidden activations are lrelu * sqrt(2).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
from flax import nnx

from stylejax.layers import Dense
from stylejax.toyfaces.conv import Conv

MBSTD_EPS = 1e-8
# The residual sum of two branches is scaled back to unit variance.
RESIDUAL_GAIN = math.sqrt(0.5)


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    img_resolution: int = 32
    img_channels: int = 3
    channel_base: int = 2048
    channel_max: int = 64
    mbstd_group_size: int = 4
    mbstd_num_features: int = 1

    def __post_init__(self):
        r = self.img_resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"img_resolution must be a power of two >= 8, got {r}")

    def channels(self, resolution: int) -> int:
        """Feature channels at a resolution (the generator's rule)."""
        return min(self.channel_base // resolution, self.channel_max)

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        """Input resolution of each residual block, from the image down to 8."""
        return tuple(2**i for i in range(int(math.log2(self.img_resolution)), 2, -1))


def minibatch_std(x: jnp.ndarray, group_size: int, num_features: int = 1) -> jnp.ndarray:
    """x [B, H, W, C] -> [B, H, W, C + num_features]: appends the group's feature spread.

    Samples are split into groups of min(group_size, B) (sample n belongs to group
    n mod (B / G)); per group and per feature split of the channels, the standard
    deviation over the group's members, averaged over pixels and channels, is
    broadcast as an extra channel of every member. B must be divisible by G.
    """
    b, h, w, c = x.shape
    g = min(group_size, b)
    if b % g or c % num_features:
        raise ValueError(f"batch {b} must divide by group {g} and channels {c} by {num_features}")
    y = x.reshape(g, b // g, h, w, num_features, c // num_features)
    y = y - jnp.mean(y, axis=0)
    y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + MBSTD_EPS)  # [B/G, H, W, F, C/F]
    y = jnp.mean(y, axis=(1, 2, 4))  # [B/G, F]
    y = jnp.tile(y, (g, 1))[:, None, None, :]  # member n of group n mod (B/G)
    return jnp.concatenate([x, jnp.broadcast_to(y, (b, h, w, num_features))], axis=-1)


class DiscriminatorBlock(nnx.Module):
    """[B, R, R, C_in] -> [B, R/2, R/2, C_out]: two 3x3 convs (the second down-sampling) + 1x1 skip."""

    def __init__(self, in_ch: int, out_ch: int, *, rngs: nnx.Rngs):
        self.conv0 = Conv(in_ch, in_ch, 3, rngs=rngs)
        self.conv1 = Conv(in_ch, out_ch, 3, down=2, gain=RESIDUAL_GAIN, rngs=rngs)
        self.skip = Conv(in_ch, out_ch, 1, down=2, act="linear", gain=RESIDUAL_GAIN, bias=False, rngs=rngs)

    def __call__(self, x):
        return self.skip(x) + self.conv1(self.conv0(x))


class Discriminator(nnx.Module):
    def __init__(self, config: DiscriminatorConfig, *, rngs: nnx.Rngs):
        self.config = config
        top = config.img_resolution
        self.fromrgb = Conv(config.img_channels, config.channels(top), 1, rngs=rngs)
        for res in config.block_resolutions:
            block = DiscriminatorBlock(config.channels(res), config.channels(res // 2), rngs=rngs)
            setattr(self, f"b{res}", block)
        c4 = config.channels(4)
        self.conv = Conv(c4 + config.mbstd_num_features, c4, 3, rngs=rngs)
        self.fc = Dense(16 * c4, c4, act="lrelu", rngs=rngs)
        self.out = Dense(c4, 1, rngs=rngs)

    def __call__(self, img: jnp.ndarray) -> jnp.ndarray:
        """img [B, R, R, C] (raw range, about [-1, 1]) -> logits [B]."""
        cfg = self.config
        expected = (cfg.img_resolution, cfg.img_resolution, cfg.img_channels)
        if img.ndim != 4 or img.shape[1:] != expected:
            raise ValueError(f"images must have shape [B, {', '.join(map(str, expected))}], got {img.shape}")
        x = self.fromrgb(img)
        for res in cfg.block_resolutions:
            x = getattr(self, f"b{res}")(x)
        x = minibatch_std(x, cfg.mbstd_group_size, cfg.mbstd_num_features)
        x = self.conv(x)
        x = self.fc(x.reshape(x.shape[0], -1))
        return self.out(x)[:, 0]
