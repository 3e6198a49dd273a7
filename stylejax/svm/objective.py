"""The squared-hinge objective of one lane (a single attribute and C, rows x [nb, B, D]).

Value, gradient and generalised-Hessian products, each in one pass over the
row blocks; accuracies; and the lane result that both solvers return.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


def _standardise(xb: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """One [B, D] block in storage dtype -> standardised float32 [B, D]."""
    return (xb.astype(jnp.float32) - mean) / std


def _value_grad(theta, x, y, weight, C, mean, std):
    """One read of each block: objective, gradient [D+1], margins [nb, B], Hessian diagonal [D+1].

    theta: [D+1], weights then the intercept. The diagonal of the generalised
    Hessian at theta is the Jacobi preconditioner of the next CG solve.
    """

    def block(acc, blk):
        grad, diag = acc
        xb, yb, mb = blk
        xh = _standardise(xb, mean, std)
        z = xh @ theta[:-1] + theta[-1]  # [B]
        hinge = mb * jnp.maximum(0.0, 1.0 - yb * z)
        r = -2.0 * C * yb * hinge  # d loss / d z
        active = 2.0 * C * (hinge > 0).astype(jnp.float32)
        return (grad + jnp.append(r @ xh, r.sum()), diag + jnp.append(active @ xh**2, active.sum())), (
            jnp.sum(hinge**2),
            z,
        )

    zeros = jnp.zeros_like(theta)
    (grad, diag), (loss, z) = lax.scan(block, (zeros, zeros), (x, y, weight))
    return 0.5 * theta @ theta + C * loss.sum(), theta + grad, z, 1.0 + diag


def _hess_vec(d, active, x, C, mean, std):
    """Generalised-Hessian product H d [D+1] and the margins change X d [nb, B].

    active: [nb, B] weight of the rows with a positive hinge (those with curvature).
    """

    def block(hd, blk):
        xb, ab = blk
        xh = _standardise(xb, mean, std)
        u = xh @ d[:-1] + d[-1]  # [B]
        s = 2.0 * C * ab * u
        return hd + jnp.append(s @ xh, s.sum()), u

    hd, u = lax.scan(block, jnp.zeros_like(d), (x, active))
    return d + hd, u


class _LaneFit(NamedTuple):
    theta: jax.Array  # [D+1]
    train_acc: jax.Array  # training accuracy, from the final margins
    iterations: jax.Array  # Newton steps, or dual epochs
    cg_iterations: jax.Array  # CG steps (0 for the dual solver)
    grad_norm: jax.Array  # |gradient| / |theta|
    gap: jax.Array  # relative duality gap (f - f*) / f bound
    converged: jax.Array


def _margin_accuracy(z, y, weight):
    """Weighted accuracy from margins z (any shape, like y); ties predict -1 like sklearn."""
    pred = jnp.where(z > 0, 1.0, -1.0)
    return jnp.sum(weight * (pred == y).astype(jnp.float32)) / jnp.sum(weight)


def _correct(theta, x, y, weight, mean, std):
    """(correctly classified weight, total weight) of one lane; ties predict -1 like sklearn."""

    def block(xb):
        return _standardise(xb, mean, std) @ theta[:-1] + theta[-1]

    z = lax.map(block, x)  # [nb, B]
    pred = jnp.where(z > 0, 1.0, -1.0)
    return jnp.sum(weight * (pred == y).astype(jnp.float32)), jnp.sum(weight)
