"""The synthesis network: a function of the style code s and the noise.

Blocks, layers and their parameters live in NNX modules; every computation
is delegated to `stylejax.ops`. Layers receive their styles as inputs:
the affines only run in `SynthesisNetwork.styles`.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from . import ops
from .config import GeneratorConfig
from .layers import Buffer, Dense
from .style_space import StyleSpace

NOISE_MODES = ("const", "random", "none", "explicit")


class SynthesisLayer(nnx.Module):
    """Modulated 3x3 conv, noise, bias, lrelu, clamp (up-sampling when up=2)."""

    def __init__(self, w_dim, in_ch, out_ch, resolution, *, up, conv_clamp, rngs):
        self.affine = Dense(w_dim, in_ch, bias_init=1.0, rngs=rngs)
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (3, 3, in_ch, out_ch)))
        self.bias = nnx.Param(jnp.zeros((out_ch,)))
        self.noise_strength = nnx.Param(jnp.zeros(()))
        self.noise_const = Buffer(jax.random.normal(rngs.params(), (resolution, resolution)))
        self.up = up
        self.conv_clamp = conv_clamp

    def __call__(self, x, s, noise):
        """x [B, H, W, I], s [B, I], noise [B, up*H, up*W] or None -> [B, up*H, up*W, O]."""
        x = ops.modulated_conv(x, self.weight[...], s, up=self.up)
        if noise is not None:
            # One noise channel, broadcast over all feature channels.
            x = x + (noise * self.noise_strength[...])[..., None]
        return ops.bias_act(x, self.bias[...], act="lrelu", clamp=self.conv_clamp)


class ToRGBLayer(nnx.Module):
    """1x1 modulated conv without demodulation, linear."""

    def __init__(self, w_dim, in_ch, img_channels, *, conv_clamp, rngs):
        self.affine = Dense(w_dim, in_ch, bias_init=1.0, rngs=rngs)
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (in_ch, img_channels)))
        self.bias = nnx.Param(jnp.zeros((img_channels,)))
        self.conv_clamp = conv_clamp

    def __call__(self, x, s):
        """x [B, H, W, I], s [B, I] -> [B, H, W, img_channels]."""
        y = ops.to_rgb(x, self.weight[...], s)
        return ops.bias_act(y, self.bias[...], clamp=self.conv_clamp)


class SynthesisBlock(nnx.Module):
    """One resolution: (const | up-sampling conv0), conv1, toRGB added to the up-sampled image."""

    def __init__(self, cfg: GeneratorConfig, resolution: int, *, rngs: nnx.Rngs):
        out_ch = cfg.channels(resolution)
        clamp = cfg.synthesis.conv_clamp
        self.resolution = resolution
        if resolution == 4:
            self.const = nnx.Param(jax.random.normal(rngs.params(), (4, 4, out_ch)))
        else:
            in_ch = cfg.channels(resolution // 2)
            self.conv0 = SynthesisLayer(
                cfg.w_dim, in_ch, out_ch, resolution, up=2, conv_clamp=clamp, rngs=rngs
            )
        self.conv1 = SynthesisLayer(
            cfg.w_dim, out_ch, out_ch, resolution, up=1, conv_clamp=clamp, rngs=rngs
        )
        self.torgb = ToRGBLayer(cfg.w_dim, out_ch, cfg.img_channels, conv_clamp=clamp, rngs=rngs)

    def convs(self) -> dict[str, SynthesisLayer]:
        if self.resolution == 4:
            return {"conv1": self.conv1}
        return {"conv0": self.conv0, "conv1": self.conv1}

    def __call__(self, x, img, styles, noise, remat=False):
        """x [B, H, W, C] or None (4x4 block), img [B, H, W, 3] or None.

        styles: {"conv0"?, "conv1", "torgb"} -> [B, width]; noise: name -> array or None.
        remat: keep only each layer's output for the backward pass and recompute the
        rest (jax.checkpoint per layer: at 1024 px one layer's intermediates, not a
        whole block's, set the peak).
        """
        wrap = jax.checkpoint if remat else (lambda f: f)
        if self.resolution == 4:
            batch = styles["conv1"].shape[0]
            x = jnp.broadcast_to(self.const[...], (batch, *self.const.shape))
        for name, layer in self.convs().items():
            x = wrap(lambda x, s, n, layer=layer: layer(x, s, n))(x, styles[name], noise[name])
        y = wrap(lambda x, s: self.torgb(x, s))(x, styles["torgb"])
        img = y if img is None else ops.upsample_2x(img) + y
        return x, img


class SynthesisNetwork(nnx.Module):
    def __init__(self, cfg: GeneratorConfig, *, rngs: nnx.Rngs):
        self.space = StyleSpace.from_config(cfg)
        self.block_resolutions = cfg.block_resolutions
        for res in cfg.block_resolutions:
            setattr(self, f"b{res}", SynthesisBlock(cfg, res, rngs=rngs))

    def block(self, res: int) -> SynthesisBlock:
        return getattr(self, f"b{res}")

    def layer(self, name: str) -> SynthesisLayer | ToRGBLayer:
        block, layer = name.split(".")
        return getattr(getattr(self, block), layer)

    def styles(self, ws: jnp.ndarray) -> jnp.ndarray:
        """ws [B, num_ws, w_dim] -> s [B, D_S]: every affine, in layout order."""
        return jnp.concatenate(
            [self.layer(l.name).affine(ws[:, l.ws_index]) for l in self.space.layers], axis=-1
        )

    def noise_inputs(self, batch, mode, key=None, noise=None) -> dict[str, jnp.ndarray | None]:
        """Per conv layer name: the noise image [B or 1, R, R], or None."""
        convs = [l for l in self.space.layers if l.kind == "conv"]
        if mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")
        if (mode == "random") != (key is not None):
            raise ValueError("noise_mode='random' needs a PRNG key (and only it takes one)")
        if (mode == "explicit") != (noise is not None):
            raise ValueError("noise_mode='explicit' needs noise arrays (and only it takes them)")
        if mode == "none":
            return {l.name: None for l in convs}
        if mode == "const":
            return {l.name: self.layer(l.name).noise_const[...][None] for l in convs}
        if mode == "random":
            keys = jax.random.split(key, len(convs))
            return {
                l.name: jax.random.normal(k, (batch, l.resolution, l.resolution))
                for k, l in zip(keys, convs)
            }
        return _check_explicit_noise(noise, convs, batch)

    def blocks(self, s, noise_mode="const", key=None, noise=None, remat=False):
        """s [B, D_S] -> [(x [B, R, R, C_R], img [B, R, R, 3]) for every block].

        remat: store only layer outputs for the backward pass and recompute the
        rest (jax.checkpoint per layer), trading compute for memory.
        """
        self.space.check(s)
        per_layer = self.space.unflatten(s)
        noises = self.noise_inputs(s.shape[0], noise_mode, key, noise)
        x = img = None
        out = []
        for res in self.block_resolutions:
            prefix = f"b{res}."
            styles = {k[len(prefix):]: v for k, v in per_layer.items() if k.startswith(prefix)}
            block_noise = {k[len(prefix):]: v for k, v in noises.items() if k.startswith(prefix)}
            x, img = self.block(res)(x, img, styles, block_noise, remat)
            out.append((x, img))
        return out

    def __call__(self, s, noise_mode="const", key=None, noise=None, remat=False):
        """s [B, D_S] -> images [B, H, W, C], raw range (about [-1, 1] for trained models)."""
        return self.blocks(s, noise_mode, key, noise, remat)[-1][1]


def _check_explicit_noise(noise: Mapping, convs, batch) -> dict[str, jnp.ndarray]:
    names = [l.name for l in convs]
    missing = [n for n in names if n not in noise]
    extra = sorted(set(noise) - set(names))
    if missing or extra:
        raise ValueError(f"explicit noise: missing layers {missing}, unexpected {extra}")
    out = {}
    for l in convs:
        arr = jnp.asarray(noise[l.name])
        r = l.resolution
        if arr.shape == (r, r):
            arr = arr[None]
        if arr.shape not in ((1, r, r), (batch, r, r)):
            raise ValueError(
                f"noise for {l.name} must have shape [{batch}, {r}, {r}] or [{r}, {r}], "
                f"got {tuple(arr.shape)}"
            )
        out[l.name] = arr
    return out
