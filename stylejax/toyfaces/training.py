"""The StyleGAN2 training recipe as pure, jitted steps over an explicit state.

`TrainConfig` fixes everything that shapes the optimisation. `Trainer` holds
the static half (graph definitions, optimisers, the two compiled steps);
`TrainState` (a pytree of arrays) holds the rest, so a step is a pure function
`(state, data, key) -> (state, stats)` and a checkpoint is just the state.

Recipe (StyleGAN2, config F without path-length regularisation):
* non-saturating logistic loss for G and D;
* R1 on reals every `r1_interval` D steps as its own optimiser step, scaled by
  the interval (lazy regularisation); the D optimiser's lr and beta2 are
  corrected by c = interval / (interval + 1), since D then takes interval + 1
  optimiser steps per interval minibatches (G has no regulariser: no correction);
* Adam with betas (0, 0.99); the mapping network's lr multiplier (0.01) lives
  in its equalised-lr Dense layers, so one optimiser serves all of G;
* style mixing with probability `style_mixing` (one crossover per batch);
* w_avg tracked with `w_avg_beta`; G_ema with a half-life of `ema_kimg`
  thousand images, ramped up to `ema_rampup` times the images seen so far.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from stylejax.config import GeneratorConfig, MappingConfig, SynthesisConfig
from stylejax.generator import Generator
from stylejax.layers import Buffer
from stylejax.toyfaces.attributes import sample_attributes
from stylejax.toyfaces.discriminator import Discriminator, DiscriminatorConfig
from stylejax.toyfaces.render import render


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    resolution: int = 32
    # 64 channels at every resolution: 31 img/s on 2 idle CPU cores (128 at
    # 4..16 and 64 at 32: 18 img/s), so about 100 kimg fit into an hour.
    latent_dim: int = 64  # z_dim = w_dim
    mapping_layers: int = 4
    g_channel_base: int = 2048
    g_channel_max: int = 64
    d_channel_base: int = 2048
    d_channel_max: int = 64
    batch: int = 32
    lr: float = 0.0025
    beta1: float = 0.0
    beta2: float = 0.99
    # The ada heuristic 0.0002 R^2 / batch gives 0.0064 at 32x32, batch 32; 0.1
    # trades a little sharpness for stability in a short, unattended run on hard-edged,
    # flat-coloured images that let D grow steep input gradients.
    r1_gamma: float = 0.1
    r1_interval: int = 16
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    style_mixing: float = 0.9
    w_avg_beta: float = 0.995
    mbstd_group_size: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.batch % min(self.mbstd_group_size, self.batch):
            raise ValueError(f"batch {self.batch} must divide by the mbstd group size {self.mbstd_group_size}")
        if self.r1_interval < 1:
            raise ValueError("r1_interval must be >= 1")

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(
            z_dim=self.latent_dim,
            w_dim=self.latent_dim,
            img_resolution=self.resolution,
            mapping=MappingConfig(num_layers=self.mapping_layers, w_avg_beta=self.w_avg_beta),
            synthesis=SynthesisConfig(channel_base=self.g_channel_base, channel_max=self.g_channel_max),
        )

    def discriminator_config(self) -> DiscriminatorConfig:
        return DiscriminatorConfig(
            img_resolution=self.resolution,
            channel_base=self.d_channel_base,
            channel_max=self.d_channel_max,
            mbstd_group_size=self.mbstd_group_size,
        )

    def ema_beta(self, images_seen: int) -> float:
        """Per-step EMA decay: half-life ema_kimg thousand images (ramped up early on)."""
        ema_nimg = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            ema_nimg = min(ema_nimg, images_seen * self.ema_rampup)
        return 0.5 ** (self.batch / max(ema_nimg, 1e-8))


class TrainState(NamedTuple):
    """Everything a training run changes, as arrays (a pytree)."""

    G: nnx.State  # generator parameters
    G_buffers: nnx.State  # w_avg, noise_const
    G_ema: nnx.State
    G_ema_buffers: nnx.State
    D: nnx.State
    opt_G: Any
    opt_D: Any


def real_images(config: TrainConfig, step: int, n: int | None = None) -> np.ndarray:
    """The reals of a step, float32 [n or batch, R, R, 3] in the generator's raw range.

    Drawn from default_rng([seed, step]), so a resumed run sees the same data.
    uint8 u maps to (u - 128) / 127.5, the inverse of stylejax.images.to_uint8.
    """
    attrs = sample_attributes(np.random.default_rng([config.seed, step]), n or config.batch)
    images, _ = render(attrs, config.resolution)
    return (images.astype(np.float32) - 128.0) / 127.5


class Trainer:
    """Static parts of training: graph definitions, optimisers and the compiled steps.

    `d_step(state, reals, key)`, `d_reg_step(state, reals)` and
    `g_step(state, key, ema_beta)` compile once each (`ema_beta` is an array).
    R1 is a separate step, not a lax.cond inside `d_step`: on XLA:CPU the
    convolutions inside a conditional branch ran 14x slower (measured).
    """

    def __init__(self, config: TrainConfig):
        self.config = config
        G = nnx.eval_shape(lambda: Generator(config.generator_config(), rngs=nnx.Rngs(0)))
        D = nnx.eval_shape(lambda: Discriminator(config.discriminator_config(), rngs=nnx.Rngs(0)))
        self.g_def = nnx.graphdef(G)
        self.d_def = nnx.graphdef(D)
        self.opt_G = optax.adam(config.lr, b1=config.beta1, b2=config.beta2, eps=1e-8)
        c = config.r1_interval / (config.r1_interval + 1)
        self.opt_D = optax.adam(config.lr * c, b1=config.beta1**c, b2=config.beta2**c, eps=1e-8)
        self.d_step = jax.jit(self._d_step)
        self.d_reg_step = jax.jit(self._d_reg_step)
        self.g_step = jax.jit(self._g_step)

    # ---- state ------------------------------------------------------------------
    def init(self) -> TrainState:
        cfg = self.config
        kg, kd = jax.random.split(jax.random.key(cfg.seed))
        G = Generator(cfg.generator_config(), rngs=nnx.Rngs(kg))
        D = Discriminator(cfg.discriminator_config(), rngs=nnx.Rngs(kd))
        _, g_params, g_buffers = nnx.split(G, nnx.Param, Buffer)
        _, d_params = nnx.split(D, nnx.Param)
        with jax.numpy_dtype_promotion("standard"):
            opt_G, opt_D = self.opt_G.init(g_params), self.opt_D.init(d_params)
        copy = lambda s: jax.tree.map(jnp.array, s)
        return TrainState(g_params, g_buffers, copy(g_params), copy(g_buffers), d_params, opt_G, opt_D)

    def generator(self, state: TrainState, ema: bool = True) -> Generator:
        """The (EMA) generator as a stylejax.Generator module."""
        if ema:
            return nnx.merge(self.g_def, state.G_ema, state.G_ema_buffers)
        return nnx.merge(self.g_def, state.G, state.G_buffers)

    # ---- pure pieces ------------------------------------------------------------
    def _discriminate(self, d_params, images):
        return nnx.merge(self.d_def, d_params)(images)

    def _generate(self, g_params, g_buffers, key):
        """key -> (fakes [batch, R, R, 3], w [batch, w_dim] of the first latent)."""
        cfg = self.config
        G = nnx.merge(self.g_def, g_params, g_buffers)
        kz, kz2, kc, kp, kn = jax.random.split(key, 5)
        z = jax.random.normal(kz, (cfg.batch, cfg.latent_dim))
        ws = G.mapping_network(z)
        if cfg.style_mixing > 0:
            # Layers from a random crossover on take their w from a second latent.
            num_ws = ws.shape[1]
            cutoff = jax.random.randint(kc, (), 1, num_ws)
            cutoff = jnp.where(jax.random.uniform(kp, ()) < cfg.style_mixing, cutoff, num_ws)
            ws2 = G.mapping_network(jax.random.normal(kz2, z.shape))
            later = (jnp.arange(num_ws) >= cutoff)[None, :, None]
            ws_mixed = jnp.where(later, ws2, ws)
        else:
            ws_mixed = ws
        img = G.synthesis_network(G.synthesis_network.styles(ws_mixed), "random", kn)
        return img, ws[:, 0]

    def _d_step(self, state: TrainState, reals, key):
        """The D main phase: logistic loss on a fresh fake batch and the reals."""
        fakes, _ = self._generate(state.G, state.G_buffers, key)
        fakes = jax.lax.stop_gradient(fakes)

        def loss_fn(d_params):
            fake_logits = self._discriminate(d_params, fakes)
            real_logits = self._discriminate(d_params, reals)
            loss = jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))
            return loss, (jnp.mean(fake_logits), jnp.mean(real_logits))

        (loss, (fake_logit, real_logit)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.D)
        d_params, opt_D = self._apply(self.opt_D, state.D, state.opt_D, grads)
        stats = {"loss_D": loss, "logit_fake": fake_logit, "logit_real": real_logit}
        return state._replace(D=d_params, opt_D=opt_D), stats

    def _d_reg_step(self, state: TrainState, reals):
        """The lazy R1 phase: gamma / 2 E||grad_x D(x)||^2 on reals, times the interval."""
        cfg = self.config

        def loss_fn(d_params):
            grad_x = jax.grad(lambda x: jnp.sum(self._discriminate(d_params, x)))(reals)
            penalty = jnp.mean(jnp.sum(jnp.square(grad_x), axis=(1, 2, 3)))
            return penalty * (cfg.r1_gamma / 2 * cfg.r1_interval), penalty

        (_, penalty), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.D)
        d_params, opt_D = self._apply(self.opt_D, state.D, state.opt_D, grads)
        return state._replace(D=d_params, opt_D=opt_D), {"r1": penalty}

    def _g_step(self, state: TrainState, key, ema_beta):
        cfg = self.config

        def loss_fn(g_params):
            fakes, w = self._generate(g_params, state.G_buffers, key)
            return jnp.mean(jax.nn.softplus(-self._discriminate(state.D, fakes))), w

        (loss, w), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.G)
        g_params, opt_G = self._apply(self.opt_G, state.G, state.opt_G, grads)
        G = nnx.merge(self.g_def, g_params, state.G_buffers)
        w_mean = jnp.mean(w, axis=0)
        G.mapping_network.w_avg[...] = w_mean + (G.mapping_network.w_avg[...] - w_mean) * cfg.w_avg_beta
        _, _, buffers = nnx.split(G, nnx.Param, Buffer)
        G_ema = jax.tree.map(lambda e, p: p + (e - p) * ema_beta, state.G_ema, g_params)
        new = state._replace(G=g_params, G_buffers=buffers, G_ema=G_ema, G_ema_buffers=buffers, opt_G=opt_G)
        return new, {"loss_G": loss}

    @staticmethod
    def _apply(opt, params, opt_state, grads):
        # optax mixes its int32 step count with floats: allow that under strict promotion.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state
