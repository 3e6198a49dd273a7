"""Dual coordinate descent on the Gram matrix: the solver when rows < channels (and <= _GRAM_MAX_ROWS)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .layout import Rows, _rows_axis
from .objective import _LaneFit, _margin_accuracy, _standardise

# The dual solver keeps a [K, M, M] float32 Gram matrix: 8 x 4096^2 floats = 512 MiB at most.
_GRAM_MAX_ROWS = 4096
_GRAM_PANELS = 4  # row panels of the Gram product (symmetry: 10 of 16 blocks computed)


class _Dual(NamedTuple):
    alpha: jax.Array  # [M, G] dual variables, 0 <= alpha; 0 for rows of weight 0
    z: jax.Array  # [M, G] margins X~ theta of the rows, theta = X~^T (alpha * y)
    it: jax.Array  # epochs
    gap: jax.Array  # [G] relative duality gap


def _gram(x, mean, std):
    """Rows x [nb, B, D] -> Gram matrix of the standardised rows with the intercept column, [M, M].

    The M x D standardised copy (below D^2 floats for M < D) makes it a few
    large matrix products; only the block upper triangle is computed (row
    panels against the rows from their own onwards, the rest by symmetry),
    which saves 1 - (p+1)/(2p) of the flops for p panels.
    """
    m = x.shape[0] * x.shape[1]
    xh = _standardise(x.reshape(m, -1), mean, std)
    panels = _GRAM_PANELS if m >= 64 * _GRAM_PANELS else 1
    size = -(-m // panels)
    xh = jnp.pad(xh, ((0, panels * size - m), (0, 0)))  # zero rows, cut off below
    upper = [xh[i * size : (i + 1) * size] @ xh[i * size :].T for i in range(panels)]  # [size, (p-i) size]
    blocks = [[None] * panels for _ in range(panels)]
    for i in range(panels):
        for j in range(i, panels):
            blocks[i][j] = upper[i][:, (j - i) * size : (j - i + 1) * size]
            blocks[j][i] = blocks[i][j].T
    return jnp.block(blocks)[:m, :m] + 1.0


def _dual_gap(alpha, z, y, weight, C):
    """Relative duality gap (P(theta) - D(alpha)) / P(theta) per lane, theta = X~^T (alpha * y).

    With h = max(0, 1 - y z), |theta|^2 = sum(alpha y z), and the gap written
    as sum_i (sqrt(C) h_i - alpha_i / (2 sqrt(C)))^2 + alpha_i max(0, y_i z_i - 1):
    non-negative terms, so float32 resolves it far below float32 resolution of P.
    """
    yz = y[:, None] * z
    h = weight[:, None] * jnp.maximum(0.0, 1.0 - yz)
    root = jnp.sqrt(C)
    gap = jnp.sum((root * h - alpha / (2.0 * root)) ** 2 + alpha * jnp.maximum(0.0, yz - 1.0), axis=0)
    primal = 0.5 * jnp.sum(alpha * yz, axis=0) + C * jnp.sum(h**2, axis=0)
    return gap / primal


def _dual_cd(gram, y, weight, C, tol, max_epochs) -> _Dual:
    """Dual coordinate descent (Hsieh et al. 2008) for one attribute, G lanes (one per C) at once.

    Dual of the squared-hinge SVM with regularised intercept:
        max_{alpha >= 0}  sum(alpha) - alpha^T Q alpha / 2,  Q = diag(y) (X~ X~^T) diag(y) + I / (2C)
    where X~ = [X_hat, 1] (Gram `gram` [M, M]). Each coordinate step is exact
    (a 1-D box-constrained quadratic) and updates the margins of all rows by
    one Gram row, O(M) per lane; rows are visited in a fresh random order each
    epoch. After each epoch the margins are recomputed from alpha (no drift)
    and the duality gap decides: stop once it is <= tol^2 of the primal
    objective for every lane (the primal solver's tol^2 bound on f - f*).
    """
    m = y.shape[0]
    dinv = 0.5 / C  # [G]
    qd = jnp.diagonal(gram)[:, None] + dinv  # [M, G] diagonal of Q
    key = jax.random.key(0)

    def step(order, j, carry):
        alpha, z = carry
        i = order[j]
        a = alpha[i]  # [G]
        g = y[i] * z[i] - 1.0 + dinv * a  # dual gradient of coordinate i
        new = weight[i] * jnp.maximum(a - g / qd[i], 0.0)
        return alpha.at[i].set(new), z + gram[i][:, None] * ((new - a) * y[i])

    def epoch(s: _Dual) -> _Dual:
        order = jax.random.permutation(jax.random.fold_in(key, s.it), m)
        alpha, _ = lax.fori_loop(0, m, functools.partial(step, order), (s.alpha, s.z))
        z = gram @ (alpha * y[:, None])
        return _Dual(alpha, z, s.it + 1, _dual_gap(alpha, z, y, weight, C))

    zeros = jnp.zeros((m, C.shape[0]))
    init = _Dual(zeros, zeros, 0, jnp.ones_like(C))
    return lax.while_loop(lambda s: jnp.any(s.gap > tol**2) & (s.it < max_epochs), epoch, init)


def _dual_report(s: _Dual, gram, y, weight, C, tol):
    """Per lane: train accuracy, |primal gradient| / |theta| (from the Gram matrix), converged."""
    hinge = weight[:, None] * jnp.maximum(0.0, 1.0 - y[:, None] * s.z)
    residual = (s.alpha - 2.0 * C * hinge) * y[:, None]  # X~^T residual is the primal gradient
    grad_sq = jnp.sum(residual * (gram @ residual), axis=0)
    theta_sq = jnp.sum(s.alpha * y[:, None] * s.z, axis=0)
    acc = jax.vmap(_margin_accuracy, in_axes=(1, None, None))(s.z, y, weight)
    grad_norm = jnp.sqrt(jnp.maximum(grad_sq, 0.0) / theta_sq)
    return acc, grad_norm, s.gap <= tol**2


def _lift(beta, x, mean, std):
    """Dual solution -> primal: beta = alpha * y [nb, B, G], rows x [nb, B, D] -> theta [G, D+1]."""

    def block(w, blk):
        xb, bb = blk
        return w + bb.T @ _standardise(xb, mean, std), None

    w, _ = lax.scan(block, jnp.zeros((beta.shape[-1], x.shape[-1])), (x, beta))
    return jnp.concatenate([w, beta.sum(axis=(0, 1))[:, None]], axis=1)


def _fit_dual(rows: Rows, C, mean, std, tol, max_epochs) -> _LaneFit:
    """Dual coordinate descent for every (attribute, C) lane; C: [K, G] -> fields [K, G, ...]."""
    k, nb, b = rows.y.shape
    per_attribute = rows.x.ndim == 4
    if per_attribute:  # lax.map: one attribute's standardised rows at a time
        gram = lax.map(lambda i: _gram(rows.x[:, i], mean, std), jnp.arange(k))  # [K, M, M]
    else:
        gram = _gram(rows.x, mean, std)  # [M, M], shared
    y, weight = rows.y.reshape(k, nb * b), rows.weight.reshape(k, nb * b)
    gram_axis = 0 if per_attribute else None
    dual = jax.vmap(_dual_cd, in_axes=(gram_axis, 0, 0, 0, None, None))(gram, y, weight, C, tol, max_epochs)
    acc, grad_norm, converged = jax.vmap(_dual_report, in_axes=(0, gram_axis, 0, 0, 0, None))(
        dual, gram, y, weight, C, tol
    )
    beta = (dual.alpha * y[..., None]).reshape(k, nb, b, -1)
    theta = jax.vmap(lambda bt, x: _lift(bt, x, mean, std), in_axes=(0, _rows_axis(rows)))(beta, rows.x)
    it = jnp.broadcast_to(dual.it[:, None], C.shape)
    return _LaneFit(theta, acc, it, jnp.zeros_like(it), grad_norm, dual.gap, converged)
