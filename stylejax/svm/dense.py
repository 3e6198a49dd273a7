"""Dense directions: `fit_svm` batches a solver over attributes and the C grid and picks C on validation."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .dual import _GRAM_MAX_ROWS, _fit_dual
from .layout import Design, Rows, _rows_axis
from .newton import _fit_lanes
from .objective import _LaneFit, _correct, _value_grad

DEFAULT_C_GRID = (1e-3, 1e-2, 1e-1, 1.0)


class SVMFit(NamedTuple):
    """Dense fit per attribute (a pytree; leading axis K).

    normal:        [K, D] unit normal in standardised coordinates.
    bias:          [K] offset for the unit normal: decision = normal . x_hat + bias.
    scale:         [K] |w| of the solution, so w = scale * normal, b = scale * bias.
    train_acc:     [K] training accuracy at the chosen C.
    val_acc:       [K] validation accuracy at the chosen C.
    val_acc_grid:  [K, G] validation accuracy for every C of the grid.
    C:             [K] chosen C.
    iterations:    [K] Newton steps (primal solver) or epochs (dual solver).
    cg_iterations: [K] conjugate-gradient steps (Hessian-vector products); 0 for the dual solver.
    grad_norm:     [K] final |gradient| / |(w, b)| of the primal objective.
    gap:           [K] relative duality gap, an upper bound on (f - f*) / f.
    converged:     [K] bool: the solver's stopping rule was met (see fit_svm's tol).
    """

    normal: jax.Array
    bias: jax.Array
    scale: jax.Array
    train_acc: jax.Array
    val_acc: jax.Array
    val_acc_grid: jax.Array
    C: jax.Array
    iterations: jax.Array
    cg_iterations: jax.Array
    grad_norm: jax.Array
    gap: jax.Array
    converged: jax.Array


# ---- batching over attributes (and C) --------------------------------------------


@jax.jit
def _fit_dense(rows: Rows, C, mean, std, tol, max_newton, max_cg, max_epochs) -> _LaneFit:
    """Dual coordinate descent on the Gram matrix when rows are fewer than channels, else Newton-CG."""
    m, d = rows.y.shape[1] * rows.y.shape[2], rows.x.shape[-1]
    if m < d and m <= _GRAM_MAX_ROWS:
        return _fit_dual(rows, C, mean, std, tol, max_epochs)
    return _fit_lanes(rows, C, mean, std, tol, max_newton, max_cg)


@jax.jit
def _accuracy(theta, rows: Rows, mean, std):
    """theta: [K, G, D+1] -> accuracy [K, G]."""

    def attribute(th, x, y, weight):
        hits, total = jax.vmap(lambda t: _correct(t, x, y, weight, mean, std))(th)
        return hits / total

    return jax.vmap(attribute, in_axes=(0, _rows_axis(rows), 0, 0))(theta, rows.x, rows.y, rows.weight)


# ---- dense directions -------------------------------------------------------------


def fit_svm(
    design: Design,
    *,
    C_grid=DEFAULT_C_GRID,
    tol: float = 1e-3,
    max_newton: int = 100,
    max_cg: int = 1000,
    max_epochs: int = 1000,
) -> SVMFit:
    """L2 squared-hinge SVM for every attribute, C chosen on the validation split.

    Args:
      design: rows from `prepare_design`.
      C_grid: [G] candidate C values, all fitted at once (vmap).
      tol: Newton-CG stops when |gradient| <= tol |(w, b)|, dual coordinate
        descent when the duality gap is <= tol^2 of the objective; either way
        the relative objective error is at most tol^2.
      max_newton, max_cg: iteration caps of Newton-CG (Newton steps; CG steps per Newton step).
      max_epochs: cap on the epochs of dual coordinate descent.
    """
    k = design.train.y.shape[0]
    grid = jnp.broadcast_to(jnp.sort(jnp.asarray(C_grid, jnp.float32)), (k, len(C_grid)))  # [K, G]
    lanes = _fit_dense(design.train, grid, design.mean, design.std, tol, max_newton, max_cg, max_epochs)
    val_grid = _accuracy(lanes.theta, design.val, design.mean, design.std)
    best = jnp.argmax(val_grid, axis=1)  # first maximum: the smallest C
    pick = jax.tree.map(lambda a: _take_lane(a, best), lanes)
    theta = pick.theta  # [K, D+1]
    scale = jnp.linalg.norm(theta[:, :-1], axis=1)
    return SVMFit(
        normal=theta[:, :-1] / scale[:, None],
        bias=theta[:, -1] / scale,
        scale=scale,
        train_acc=pick.train_acc,
        val_acc=_take_lane(val_grid, best),
        val_acc_grid=val_grid,
        C=_take_lane(grid, best),
        iterations=pick.iterations,
        cg_iterations=pick.cg_iterations,
        grad_norm=pick.grad_norm,
        gap=pick.gap,
        converged=pick.converged,
    )


def _take_lane(a: jax.Array, lane: jax.Array) -> jax.Array:
    """a: [K, G, ...], lane: [K] -> [K, ...]."""
    return jnp.take_along_axis(a, lane.reshape((-1,) + (1,) * (a.ndim - 1)), axis=1)[:, 0]


def svm_objective(design: Design, w, b, C) -> jax.Array:
    """Objective of `w` [K, D], `b` [K] on the training rows at `C` (scalar or [K]) -> [K].

    For comparing solutions from elsewhere (e.g. scikit-learn) in the same terms.
    """
    k = design.train.y.shape[0]
    theta = jnp.concatenate([jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)[:, None]], axis=1)
    C = jnp.broadcast_to(jnp.asarray(C, jnp.float32), (k,))
    rows = design.train

    def one(th, x, y, weight, c):
        return _value_grad(th, x, y, weight, c, design.mean, design.std)[0]

    return jax.vmap(one, in_axes=(0, _rows_axis(rows), 0, 0, 0))(theta, rows.x, rows.y, rows.weight, C)
