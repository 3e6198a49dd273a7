"""The mapping network z (, c) -> w, truncation and style mixing."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from .config import GeneratorConfig
from .layers import Buffer, Dense

NORMALIZE_EPS = 1e-8
# Truncation psi outside this range is almost certainly a mistake.
PSI_RANGE = (-1.0, 2.0)


def normalize_2nd_moment(x: jnp.ndarray) -> jnp.ndarray:
    """x [B, F] divided by its root mean square over F."""
    return x * jnp.reciprocal(jnp.sqrt(jnp.mean(jnp.square(x), axis=1, keepdims=True) + NORMALIZE_EPS))


def check_psi(psi) -> None:
    """Reject a concrete psi (Python, numpy or jax scalar) outside PSI_RANGE; traced values pass unchecked."""
    try:
        value = float(psi)
    except TypeError:  # a tracer (jax's ConcretizationTypeError is a TypeError)
        return
    if not PSI_RANGE[0] <= value <= PSI_RANGE[1]:
        raise ValueError(f"truncation psi must lie in {list(PSI_RANGE)}, got {psi}")


def truncate(ws: jnp.ndarray, w_avg: jnp.ndarray, psi=1.0, cutoff: int | None = None) -> jnp.ndarray:
    """ws [B, num_ws, w_dim] pulled towards w_avg [w_dim]: w_avg + psi (ws - w_avg).

    Only `ws[:, :cutoff]` changes when a cutoff is given. Computed as torch.lerp
    does (from the far end when psi >= 0.5), which reproduces official outputs
    bit for bit.
    """
    check_psi(psi)
    psi = jnp.asarray(psi, ws.dtype)
    diff = ws - w_avg
    out = jnp.where(psi < 0.5, w_avg + psi * diff, ws - diff * (1 - psi))
    if cutoff is None:
        return out
    if not 0 <= cutoff <= ws.shape[1]:
        raise ValueError(f"truncation cutoff must lie in [0, {ws.shape[1]}], got {cutoff}")
    return jnp.concatenate([out[:, :cutoff], ws[:, cutoff:]], axis=1)


def mix_styles(ws_a: jnp.ndarray, ws_b: jnp.ndarray, crossover: int) -> jnp.ndarray:
    """Style mixing: ws_a [B, num_ws, w_dim] for entries < crossover, ws_b from there on."""
    if ws_a.shape != ws_b.shape or ws_a.ndim != 3:
        raise ValueError(f"style mixing needs two [B, num_ws, w_dim] arrays, got {ws_a.shape}, {ws_b.shape}")
    if not 0 <= crossover <= ws_a.shape[1]:
        raise ValueError(f"crossover must lie in [0, {ws_a.shape[1]}], got {crossover}")
    return jnp.concatenate([ws_a[:, :crossover], ws_b[:, crossover:]], axis=1)


class MappingNetwork(nnx.Module):
    def __init__(self, cfg: GeneratorConfig, *, rngs: nnx.Rngs):
        self.z_dim, self.c_dim, self.num_ws = cfg.z_dim, cfg.c_dim, cfg.num_ws
        self.num_layers = cfg.mapping.num_layers
        lr = cfg.mapping.lr_multiplier
        if cfg.c_dim > 0:
            self.embed = Dense(cfg.c_dim, cfg.mapping.embed_features, rngs=rngs)
        in_features = cfg.z_dim + (cfg.mapping.embed_features if cfg.c_dim else 0)
        features = [in_features] + [cfg.mapping.layer_features] * (self.num_layers - 1) + [cfg.w_dim]
        for i in range(self.num_layers):
            layer = Dense(features[i], features[i + 1], lr_multiplier=lr, act="lrelu", rngs=rngs)
            setattr(self, f"fc{i}", layer)
        self.w_avg = Buffer(jnp.zeros((cfg.w_dim,)))

    def fc(self, i: int) -> Dense:
        return getattr(self, f"fc{i}")

    def check_inputs(self, z, c):
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [B, {self.z_dim}], got {tuple(z.shape)}")
        if self.c_dim == 0:
            if c is not None and c.size:
                raise ValueError("this generator is unconditional: pass c=None")
            return None
        if c is None:
            raise ValueError(f"this generator is conditional: pass c of shape [B, {self.c_dim}]")
        if c.shape != (z.shape[0], self.c_dim):
            raise ValueError(f"c must have shape [{z.shape[0]}, {self.c_dim}], got {tuple(c.shape)}")
        return c

    def features(self, z, c=None) -> list[jnp.ndarray]:
        """The output of every fc layer (psi 1, before broadcasting), [B, F] each."""
        c = self.check_inputs(z, c)
        x = normalize_2nd_moment(z)
        if c is not None:
            x = jnp.concatenate([x, normalize_2nd_moment(self.embed(c))], axis=1)
        out = []
        for i in range(self.num_layers):
            x = self.fc(i)(x)
            out.append(x)
        return out

    def __call__(self, z, c=None, psi=1.0, cutoff=None) -> jnp.ndarray:
        """z [B, z_dim], c [B, c_dim] or None -> ws [B, num_ws, w_dim]."""
        w = self.features(z, c)[-1]
        ws = jnp.broadcast_to(w[:, None], (w.shape[0], self.num_ws, w.shape[1]))
        return truncate(ws, self.w_avg[...], psi, cutoff)
