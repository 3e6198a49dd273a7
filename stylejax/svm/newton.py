"""Primal Newton-CG with an Armijo line search: the solver when rows >= channels (or > _GRAM_MAX_ROWS)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .layout import Rows, _rows_axis
from .objective import _LaneFit, _hess_vec, _margin_accuracy, _value_grad

_ARMIJO_SLOPE = 1e-4  # sufficient-decrease constant of the backtracking line search
_ARMIJO_STEPS = 30  # halvings before giving up on a step (2^-30 is below float32 resolution)
# Newton stops once its predicted decrease -g.d/2 ~ f - f* drops below this
# fraction of f: float32 cannot resolve more, and at large C the gradient's
# rounding error (~ condition number x 6e-8) can exceed tol |theta|.
_FLOAT32_GAP = 1e-6


def _change_along(t, theta, d, z, zd, y, weight, C):
    """f(theta + t d) - f(theta) from the margins z + t zd: no pass over the data.

    Computed as a difference term by term: near the optimum the decrease is
    below float32 resolution of f itself, and comparing two rounded values of f
    would reject good steps.
    """
    h0 = weight * jnp.maximum(0.0, 1.0 - y * z)
    ht = weight * jnp.maximum(0.0, 1.0 - y * (z + t * zd))
    return t * (theta @ d) + 0.5 * t**2 * (d @ d) + C * jnp.sum((ht - h0) * (ht + h0))


def _armijo(theta, g, d, z, zd, y, weight, C):
    """Largest step 2^-j (j < 30) with sufficient decrease along d."""
    slope = _ARMIJO_SLOPE * (g @ d)

    def cond(state):
        t, j = state
        return (_change_along(t, theta, d, z, zd, y, weight, C) > t * slope) & (j < _ARMIJO_STEPS)

    t, _ = lax.while_loop(cond, lambda s: (0.5 * s[0], s[1] + 1), (jnp.float32(1.0), 0))
    return t


class _CG(NamedTuple):
    d: jax.Array  # [D+1] solution so far
    zd: jax.Array  # [nb, B] margins change X d, accumulated for the line search
    r: jax.Array  # residual
    p: jax.Array  # search direction
    rs: jax.Array  # r . (preconditioned r)
    it: jax.Array


def _conjugate_gradient(hess_vec, rhs, diag, atol, max_iter):
    """Jacobi-preconditioned CG for H d = rhs to |residual| <= atol -> (d, X d, iterations)."""
    _, u = jax.eval_shape(hess_vec, rhs)

    def body(s: _CG) -> _CG:
        hp, up = hess_vec(s.p)
        alpha = s.rs / (s.p @ hp)
        r = s.r - alpha * hp
        rs = r @ (r / diag)
        return _CG(s.d + alpha * s.p, s.zd + alpha * up, r, r / diag + (rs / s.rs) * s.p, rs, s.it + 1)

    init = _CG(jnp.zeros_like(rhs), jnp.zeros(u.shape), rhs, rhs / diag, rhs @ (rhs / diag), 0)
    s = lax.while_loop(lambda s: (jnp.linalg.norm(s.r) > atol) & (s.it < max_iter), body, init)
    return s.d, s.zd, s.it


class _Newton(NamedTuple):
    theta: jax.Array  # [D+1]
    g: jax.Array  # [D+1] gradient
    z: jax.Array  # [nb, B] margins
    diag: jax.Array  # [D+1] Hessian diagonal
    decrement: jax.Array  # -g.d of the last Newton step
    it: jax.Array
    cg_it: jax.Array


def _newton_cg(x, y, weight, C, mean, std, tol, max_newton, max_cg, theta0) -> _LaneFit:
    """Minimises the squared-hinge objective of one lane from theta0 [D+1].

    Stops when |grad| <= tol |theta|: the objective is 1-strongly convex and
    f >= |theta|^2 / 2, so then f - f* <= |grad|^2 / 2 <= tol^2 f; or when the
    Newton decrement says f - f* < 1e-6 f (float32 resolution, _FLOAT32_GAP).
    Both count as converged.
    """

    def grad(theta):  # the line search works on objective differences, not values
        return _value_grad(theta, x, y, weight, C, mean, std)[1:]

    def hess_vec(active, d):
        return _hess_vec(d, active, x, C, mean, std)

    def body(s: _Newton) -> _Newton:
        gnorm = jnp.linalg.norm(s.g)
        active = weight * (y * s.z < 1.0).astype(jnp.float32)
        forcing = jnp.minimum(0.5, jnp.sqrt(gnorm / g0))  # inexact early, exact near the optimum
        d, zd, n_cg = _conjugate_gradient(functools.partial(hess_vec, active), -s.g, s.diag, forcing * gnorm, max_cg)
        t = _armijo(s.theta, s.g, d, s.z, zd, y, weight, C)
        theta = s.theta + t * d
        return _Newton(theta, *grad(theta), -(s.g @ d), s.it + 1, s.cg_it + n_cg)

    def resolved(s: _Newton):
        f = 0.5 * s.theta @ s.theta + C * jnp.sum((weight * jnp.maximum(0.0, 1.0 - y * s.z)) ** 2)
        return (jnp.linalg.norm(s.g) <= tol * jnp.linalg.norm(s.theta)) | (s.decrement <= 2 * _FLOAT32_GAP * f)

    init = _Newton(theta0, *grad(theta0), jnp.inf, 0, 0)
    g0 = jnp.linalg.norm(init.g)
    s = lax.while_loop(lambda s: ~resolved(s) & (s.it < max_newton), body, init)
    f = 0.5 * s.theta @ s.theta + C * jnp.sum((weight * jnp.maximum(0.0, 1.0 - y * s.z)) ** 2)
    gnorm = jnp.linalg.norm(s.g)
    return _LaneFit(
        s.theta,
        _margin_accuracy(s.z, y, weight),
        s.it,
        s.cg_it,
        gnorm / jnp.linalg.norm(s.theta),
        0.5 * gnorm**2 / f,  # the duality gap at alpha = 2C hinge(theta) is |g|^2 / 2
        resolved(s),
    )


# ---- batching over attributes (and C) --------------------------------------------


def _fit_lanes(rows: Rows, C, mean, std, tol, max_newton, max_cg) -> _LaneFit:
    """Newton-CG for every (attribute, C) lane; C: [K, G] ascending -> fields [K, G, ...].

    The grid is walked in order, each C warm-started from the solution at the
    previous one, with the attributes batched (vmap). Batching the C values
    too would make every lane wait for the largest C's many CG steps, at G
    times the cost of each step.
    """

    def one_c(theta0, c):  # theta0 [K, D+1], c [K]
        fit = jax.vmap(_newton_cg, in_axes=(_rows_axis(rows), 0, 0, 0, None, None, None, None, None, 0))(
            rows.x, rows.y, rows.weight, c, mean, std, tol, max_newton, max_cg, theta0
        )
        return fit.theta, fit

    theta0 = jnp.zeros((C.shape[0], rows.x.shape[-1] + 1))
    _, fits = lax.scan(one_c, theta0, C.T)  # fields [G, K, ...]
    return jax.tree.map(lambda a: jnp.moveaxis(a, 0, 1), fits)
