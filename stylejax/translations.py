"""Attribute translations expressed as style-space deltas (method.md §2).

    ds_z = S(z + alpha_z n_Z) - S(z)      (S = mapping, truncation, affines)
    ds_w = S(ws + alpha_w n_W) - S(ws)
    ds_n = alpha sigma n_S                (n_S a unit normal in standardised S)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .generator import GeneratorFn
from .mapping import check_psi


def _unit(n: jnp.ndarray, dim: int, what: str) -> jnp.ndarray:
    n = jnp.asarray(n, jnp.float32)
    if n.shape != (dim,):
        raise ValueError(f"{what} must have shape [{dim}], got {tuple(n.shape)}")
    return n / jnp.linalg.norm(n)


def z_translation(fn: GeneratorFn, params, z, n_z, alpha_z: float, c=None, psi=1.0, cutoff=None):
    """z [B, z_dim], n_z [z_dim] -> ds_z [B, D_S]."""
    check_psi(psi)  # here, while psi is a number: inside jit it is traced and passes unchecked
    return _z_translation(fn, params, z, n_z, alpha_z, c, psi, cutoff)


@functools.partial(jax.jit, static_argnums=(0, 7))
def _z_translation(fn, params, z, n_z, alpha_z, c, psi, cutoff):
    n = _unit(n_z, z.shape[-1], "the Z direction")
    s0 = fn.styles(params, fn.mapping(params, z, c, psi, cutoff))
    s1 = fn.styles(params, fn.mapping(params, z + alpha_z * n, c, psi, cutoff))
    return s1 - s0


def w_translation(fn: GeneratorFn, params, ws, n_w, alpha_w: float, psi=1.0, cutoff=None):
    """ws: W [B, w_dim] or W+ [B, num_ws, w_dim]; n_w [w_dim] added to every entry,
    then both truncated (psi 1: untouched, for final latents) -> [B, D_S]."""
    check_psi(psi)
    return _w_translation(fn, params, ws, n_w, alpha_w, psi, cutoff)


@functools.partial(jax.jit, static_argnums=(0, 6))
def _w_translation(fn, params, ws, n_w, alpha_w, psi, cutoff):
    n = _unit(n_w, ws.shape[-1], "the W direction")
    before = fn.truncate(params, ws, psi, cutoff)
    after = fn.truncate(params, ws + alpha_w * n, psi, cutoff)
    return fn.styles(params, after) - fn.styles(params, before)


def s_translation(n_s, sigma, alpha: float) -> jnp.ndarray:
    """Unit normal in standardised S [D] and per-channel std [D] -> raw-S delta [D]."""
    sigma = jnp.asarray(sigma, jnp.float32)
    return alpha * sigma * _unit(n_s, sigma.shape[0], "the S direction")
