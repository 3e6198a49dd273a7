"""Sparse directions: L1-penalised fits (FISTA), top-k truncation with optional refit, `sparsity_table`."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .dense import SVMFit, _accuracy, _fit_dense, fit_svm
from .layout import Design, Rows, _rows_axis
from .objective import _hess_vec, _value_grad


class SparseFit(NamedTuple):
    """Sparse fit per attribute (a pytree; leading axis K).

    normal:     [K, D] unit normal in standardised coordinates, mostly zeros.
    bias:       [K] offset for the unit normal.
    nnz:        [K] number of non-zero channels.
    train_acc:  [K], val_acc: [K] accuracies of the sparse direction.
    C:          [K] C used.
    penalty:    [K] L1 strength (0 for top-k).
    iterations: [K] solver iterations (FISTA for L1, Newton for a top-k refit).
    converged:  [K] bool.
    """

    normal: jax.Array
    bias: jax.Array
    nnz: jax.Array
    train_acc: jax.Array
    val_acc: jax.Array
    C: jax.Array
    penalty: jax.Array
    iterations: jax.Array
    converged: jax.Array


class SparsityTable(NamedTuple):
    """Validation accuracy against sparsity; rows follow `k`, columns attributes.

    k:          [J] requested numbers of non-zero channels.
    topk:       [J, K] top-k truncation of the dense normal, no refit.
    topk_refit: [J, K] top-k support, refit on it.
    l1:         [J, K] L1-penalised fit with ~k non-zeros.
    l1_nnz:     [J, K] non-zeros the L1 bisection reached.
    dense:      [K] dense validation accuracy, for reference.
    """

    k: np.ndarray
    topk: np.ndarray
    topk_refit: np.ndarray
    l1: np.ndarray
    l1_nnz: np.ndarray
    dense: np.ndarray


def _soft_threshold(theta, threshold):
    """Proximal map of threshold * |w|_1 on [D+1]; the intercept is not penalised."""
    w = theta[:-1]
    return jnp.append(jnp.sign(w) * jnp.maximum(jnp.abs(w) - threshold, 0.0), theta[-1])


def _lipschitz(x, weight, C, mean, std, iters: int = 30):
    """Upper estimate of the gradient's Lipschitz constant, the top eigenvalue of I + 2C X^T W X.

    Power iteration from a fixed start (all rows active bounds every
    generalised Hessian); the 10% margin covers its underestimate, which would
    otherwise make the FISTA step too long.
    """
    v0 = jnp.ones(x.shape[-1] + 1) / jnp.sqrt(x.shape[-1] + 1.0)

    def step(v, _):
        hv, _ = _hess_vec(v, weight, x, C, mean, std)
        return hv / jnp.linalg.norm(hv), None

    v, _ = lax.scan(step, v0, None, length=iters)
    return 1.1 * (v @ _hess_vec(v, weight, x, C, mean, std)[0])


class _Fista(NamedTuple):
    theta: jax.Array  # [D+1] current iterate
    point: jax.Array  # [D+1] extrapolated point
    momentum: jax.Array
    it: jax.Array
    mapping: jax.Array  # |gradient mapping| at the last point


def _fista(x, y, weight, C, penalty, theta0, lipschitz, mean, std, tol, max_iter):
    """Accelerated proximal gradient for the L1-penalised objective of one lane.

    Gradient-based adaptive restart (O'Donoghue & Candes) keeps the linear rate
    that the strongly convex L2 part allows. Stops when the gradient mapping
    |L (prox(point) - point)| <= tol |theta|, the proximal analogue of the
    dense stopping rule.
    """

    def body(s: _Fista) -> _Fista:
        g = _value_grad(s.point, x, y, weight, C, mean, std)[1]
        new = _soft_threshold(s.point - g / lipschitz, penalty / lipschitz)
        restart = (s.point - new) @ (new - s.theta) > 0
        momentum = jnp.where(restart, 1.0, 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * s.momentum**2)))
        point = jnp.where(restart, new, new + ((s.momentum - 1.0) / momentum) * (new - s.theta))
        return _Fista(new, point, momentum, s.it + 1, lipschitz * jnp.linalg.norm(new - s.point))

    def cond(s: _Fista):
        return (s.mapping > tol * jnp.linalg.norm(s.theta)) & (s.it < max_iter)

    return lax.while_loop(cond, body, _Fista(theta0, theta0, jnp.float32(1.0), 0, jnp.float32(jnp.inf)))


@jax.jit
def _fista_lanes(rows: Rows, C, penalty, theta0, lipschitz, mean, std, tol, max_iter) -> _Fista:
    """FISTA per attribute; C, penalty, lipschitz: [K], theta0: [K, D+1]."""

    def attribute(x, y, weight, c, pen, th0, lip):
        return _fista(x, y, weight, c, pen, th0, lip, mean, std, tol, max_iter)

    axes = (_rows_axis(rows), 0, 0, 0, 0, 0, 0)
    return jax.vmap(attribute, in_axes=axes)(rows.x, rows.y, rows.weight, C, penalty, theta0, lipschitz)


@jax.jit
def _l1_scales(rows: Rows, C, mean, std):
    """Per attribute: Lipschitz constant [K] and the L1 strength that zeroes every weight [K]."""

    def attribute(x, y, weight, c):
        g = _value_grad(jnp.zeros(x.shape[-1] + 1), x, y, weight, c, mean, std)[1]
        return _lipschitz(x, weight, c, mean, std), jnp.max(jnp.abs(g[:-1]))

    return jax.vmap(attribute, in_axes=(_rows_axis(rows), 0, 0, 0))(rows.x, rows.y, rows.weight, C)


def fit_l1(
    design: Design,
    nnz: int,
    *,
    C,
    tol: float = 1e-3,
    max_iter: int = 3000,
    max_bisect: int = 30,
) -> SparseFit:
    """Sparse direction with about `nnz` non-zero channels per attribute.

    Objective: the dense one plus penalty * |w|_1 (elastic net whose ridge part
    is the dense 0.5 |(w, b)|^2), solved by FISTA; the penalty is bisected in
    log scale per attribute, warm-started, until the non-zero count equals
    `nnz` or `max_bisect` steps. Returns the solution whose count is closest to
    `nnz` (its count in `SparseFit.nnz`: equal counts are not always reachable).

    Args:
      C: scalar or [K], e.g. `fit_svm(...).C`.
    """
    k, d = design.train.y.shape[0], design.mean.shape[0]
    C = jnp.broadcast_to(jnp.asarray(C, jnp.float32), (k,))
    lipschitz, penalty_max = _l1_scales(design.train, C, design.mean, design.std)
    # At twice the zeroing strength (bias not yet optimal) the solution is empty.
    lo, hi = jnp.log(penalty_max) - jnp.log(1e4), jnp.log(2.0 * penalty_max)
    theta = jnp.zeros((k, d + 1))
    best = (theta, jnp.full(k, jnp.inf), jnp.zeros(k), jnp.zeros(k, jnp.int32), jnp.zeros(k, bool))
    iterations = jnp.zeros(k, jnp.int32)
    for _ in range(max_bisect):
        mid = 0.5 * (lo + hi)
        run = _fista_lanes(design.train, C, jnp.exp(mid), theta, lipschitz, design.mean, design.std, tol, max_iter)
        theta, iterations = run.theta, iterations + run.it
        count = jnp.sum(theta[:, :-1] != 0, axis=1)
        error = jnp.abs(count - nnz).astype(jnp.float32)
        better = error < best[1]
        converged = run.mapping <= tol * jnp.linalg.norm(theta, axis=1)
        best = jax.tree.map(
            lambda new, old: jnp.where(better.reshape((k,) + (1,) * (old.ndim - 1)), new, old),
            (theta, error, jnp.exp(mid), count, converged),
            best,
        )
        too_dense = count > nnz  # penalty too weak
        lo, hi = jnp.where(too_dense, mid, lo), jnp.where(too_dense, hi, mid)
        if bool(jnp.all(best[1] == 0)):
            break
    theta, _, penalty, count, converged = best
    return _sparse_fit(design, theta, C, penalty, count, iterations, converged)


def _sparse_fit(design: Design, theta, C, penalty, nnz, iterations, converged) -> SparseFit:
    """Packs a [K, D+1] sparse solution with its accuracies."""
    scale = jnp.linalg.norm(theta[:, :-1], axis=1)
    scale = jnp.where(scale > 0, scale, 1.0)  # an empty direction stays zero
    return SparseFit(
        normal=theta[:, :-1] / scale[:, None],
        bias=theta[:, -1] / scale,
        nnz=nnz,
        train_acc=_accuracy(theta[:, None], design.train, design.mean, design.std)[:, 0],
        val_acc=_accuracy(theta[:, None], design.val, design.mean, design.std)[:, 0],
        C=C,
        penalty=penalty,
        iterations=iterations,
        converged=converged,
    )


@jax.jit
def _support_rows(rows: Rows, support, mean, std) -> Rows:
    """Standardised columns `support` [K, k] of the rows -> per-attribute rows [nb, K, B, k]."""
    mean_k = mean[support][None, :, None, :]  # [1, K, 1, k]
    std_k = std[support][None, :, None, :]
    if rows.x.ndim == 4:
        x = jnp.take_along_axis(rows.x, support[None, :, None, :], axis=3)  # [nb, K, B, k]
    else:
        x = jnp.moveaxis(rows.x[:, :, support], 2, 1)  # [nb, B, K, k] -> [nb, K, B, k]
    return rows._replace(x=(x.astype(jnp.float32) - mean_k) / std_k)


def fit_top_k(
    design: Design,
    dense: SVMFit,
    k: int,
    *,
    refit: bool = True,
    tol: float = 1e-3,
    max_newton: int = 100,
    max_cg: int = 1000,
    max_epochs: int = 1000,
) -> SparseFit:
    """Keeps the k largest |normal_i| of a dense fit; optionally refits on that support.

    The refit solves the same problem (same C) restricted to the k standardised
    channels, on a [M, k] copy of them, which is small for k << D.
    """
    K, d = dense.normal.shape
    support = jnp.argsort(-jnp.abs(dense.normal), axis=1)[:, :k]  # [K, k]
    if refit:
        sub = _support_rows(design.train, support, design.mean, design.std)
        lanes = _fit_dense(sub, dense.C[:, None], jnp.zeros(k), jnp.ones(k), tol, max_newton, max_cg, max_epochs)
        theta_k, iterations, converged = lanes.theta[:, 0], lanes.iterations[:, 0], lanes.converged[:, 0]
    else:
        theta_k = jnp.concatenate([jnp.take_along_axis(dense.normal, support, axis=1), dense.bias[:, None]], axis=1)
        iterations, converged = jnp.zeros(K, jnp.int32), jnp.ones(K, bool)
    theta = jnp.zeros((K, d + 1)).at[jnp.arange(K)[:, None], support].set(theta_k[:, :-1])
    theta = theta.at[:, -1].set(theta_k[:, -1])
    nnz = jnp.sum(theta[:, :-1] != 0, axis=1)
    return _sparse_fit(design, theta, dense.C, jnp.zeros(K), nnz, iterations, converged)


def sparsity_table(design: Design, ks, *, dense: SVMFit | None = None, **fit_kwargs) -> SparsityTable:
    """Validation accuracy of top-k (with and without refit) and L1 directions for each k in `ks`.

    dense: a `fit_svm` result to truncate (fitted here with `fit_kwargs` if None);
    its C is used by every sparse fit.
    """
    dense = fit_svm(design, **fit_kwargs) if dense is None else dense
    rows = []
    for k in ks:
        l1 = fit_l1(design, k, C=dense.C)
        rows.append(
            (
                fit_top_k(design, dense, k, refit=False).val_acc,
                fit_top_k(design, dense, k).val_acc,
                l1.val_acc,
                l1.nnz,
            )
        )
    topk, refit, l1_acc, l1_nnz = (np.stack([np.asarray(r[i]) for r in rows]) for i in range(4))
    return SparsityTable(np.asarray(ks), topk, refit, l1_acc, l1_nnz, np.asarray(dense.val_acc))
