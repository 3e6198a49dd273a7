"""Linear SVM attribute directions in JAX, batched over attributes (method.md §2).

Problem (per attribute, standardised codes x_hat = (x - mean) / std, labels y in {-1, +1}):

    min_{w, b}  0.5 * (|w|^2 + b^2) + C * sum_i max(0, 1 - y_i (w . x_hat_i + b))^2

The intercept is regularised like scikit-learn's `LinearSVC` (intercept_scaling=1),
so both solve the same problem and accuracies/objectives compare directly; with
standardised codes and balanced classes the 0.5 b^2 term is a light penalty.
Nothing here is specific to S: the same code fits directions in Z or W.

Solver: Newton-CG with the generalised Hessian of the squared hinge
(H = I + 2C X_A^T X_A over the active rows A), Jacobi-preconditioned conjugate
gradients with forcing term min(0.5, sqrt(|g|/|g0|)), and Armijo backtracking
that costs no pass over the data (the margins along the step are accumulated
during CG). When the training rows are fewer than the channels (the common
2% selection: M = 560 rows vs D = 9088), the problem is solved exactly in the
row span (`_reduce`: Gram matrix + eigh, M features), where the features are
decorrelated and the Jacobi preconditioner is effective. Measured on planted
data (N = 20,000, D = 9,088, K = 8, 2 CPU cores): Newton-CG directly in D took
56 s at C = 1 (up to 3,300 CG steps, each one pass over the rows); in the row
span 2.0 s at C = 1, 0.67 s at C = 1e-3 (LinearSVC: 1.4 s for the 8 fits).
`optax.lbfgs` was not benchmarked: Newton uses the exact curvature of this
piecewise-quadratic loss and needs no extra passes for its line search, where
the zoom line search of L-BFGS evaluates the objective (a pass) per trial step.

Batching: one lane = one (attribute, C) pair; lanes are `jax.vmap`-ed, so with
shared codes every pass over a row block is one matrix product
[B, D] x [D, lanes] instead of K * G matrix-vector products. C is chosen per
attribute on the validation split (highest accuracy, smallest C on ties).

Memory: codes may be a numpy array, a float16 memmap or a jax array. Only the
selected rows are copied, block by block, into one padded device buffer in the
storage dtype (float16 stays float16: half the bytes; anything else becomes
float32); every pass then upcasts and standardises one block of `block_rows`
rows at a time inside `lax.scan`, so no float32 or standardised copy of the data
exists (the row-span reduction standardises one attribute's M < D rows at a
time, an M x D temporary). Standardising the block (rather than folding mean/std into w) keeps
float32 precision when |mean| >> std, as for S channels whose affine bias is 1.
The selected rows are gathered once per attribute ([nb, K, B, D]) when the
attributes' sets are nearly disjoint (ratio selection: no attribute pays the
flops of another's rows), or once for all ([M, D] + [K, M] weights) when they
overlap (threshold selection: one copy [nb, B, D] instead of K).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .selection import Selection

DEFAULT_C_GRID = (1e-3, 1e-2, 1e-1, 1.0)
_ARMIJO_SLOPE = 1e-4  # sufficient-decrease constant of the backtracking line search
_ARMIJO_STEPS = 30  # halvings before giving up on a step (2^-30 is below float32 resolution)
# Newton stops once its predicted decrease -g.d/2 ~ f - f* drops below this
# fraction of f: float32 cannot resolve more, and at large C the gradient's
# rounding error (~ condition number x 6e-8) can exceed tol |theta|.
_FLOAT32_GAP = 1e-6


class Rows(NamedTuple):
    """Selected codes in row blocks, for chunked passes (a pytree).

    x:      [nb, B, D] rows shared by all attributes, or [K, nb, B, D] rows per
            attribute; storage dtype (float16 or float32), zero padding rows.
    y:      [K, nb, B] float32 labels +-1 (0 where weight is 0).
    weight: [K, nb, B] float32, 1 where the row is in attribute k's set, else 0.
    """

    x: jax.Array
    y: jax.Array
    weight: jax.Array


class Design(NamedTuple):
    """Training and validation rows plus the standardisation statistics [D]."""

    train: Rows
    val: Rows
    mean: jax.Array
    std: jax.Array


class SVMFit(NamedTuple):
    """Dense fit per attribute (a pytree; leading axis K).

    normal:        [K, D] unit normal in standardised coordinates.
    bias:          [K] offset for the unit normal: decision = normal . x_hat + bias.
    scale:         [K] |w| of the solution, so w = scale * normal, b = scale * bias.
    train_acc:     [K] training accuracy at the chosen C.
    val_acc:       [K] validation accuracy at the chosen C.
    val_acc_grid:  [K, G] validation accuracy for every C of the grid.
    C:             [K] chosen C.
    iterations:    [K] Newton iterations.
    cg_iterations: [K] conjugate-gradient iterations (Hessian-vector products).
    grad_norm:     [K] final |gradient| / |gradient at 0|.
    converged:     [K] bool, grad_norm <= tol.
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
    converged: jax.Array


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


# ---- data layout -----------------------------------------------------------------


def prepare_design(codes, selection: Selection, mean, std, *, block_rows: int = 256) -> Design:
    """Gathers the selected rows of `codes` [N, D] for fitting.

    Args:
      codes: [N, D] numpy array, memmap (float16 kept as float16) or jax array.
      selection: labels and split over the same N samples.
      mean, std: [D] per-channel statistics defining standardised coordinates.
      block_rows: rows per step of every chunked pass, all attributes together
        (bounds the float32 temporaries to block_rows x D).
    """
    n = selection.labels.shape[1]
    if codes.ndim != 2 or codes.shape[0] != n:
        raise ValueError(f"codes have shape {codes.shape} but the selection labels {n} samples; expected [{n}, D]")
    mean = jnp.asarray(mean, jnp.float32)
    std = jnp.asarray(std, jnp.float32)
    if mean.shape != codes.shape[1:] or std.shape != codes.shape[1:]:
        raise ValueError(f"mean {mean.shape} and std {std.shape} must both have shape ({codes.shape[1]},)")
    if not bool(jnp.all(jnp.isfinite(mean)) & jnp.all(jnp.isfinite(std)) & jnp.all(std > 0)):
        raise ValueError("mean must be finite and std finite and > 0 (drop constant channels first)")
    labels = np.asarray(selection.labels)
    return Design(
        _gather_rows(codes, labels, np.asarray(selection.train), block_rows),
        _gather_rows(codes, labels, np.asarray(selection.val), block_rows),
        mean,
        std,
    )


def _gather_rows(codes, labels: np.ndarray, member: np.ndarray, block_rows: int) -> Rows:
    """Rows of `codes` in `member` [K, N], per attribute or shared (module docstring)."""
    k, n = member.shape
    counts = member.sum(axis=1)  # [K]
    union = np.flatnonzero(member.any(axis=0))
    # Per-attribute copies hold at most twice the rows of the union and spare
    # each attribute the flops of the others' rows; beyond that share one copy.
    per_attribute = k * counts.max() <= 2 * union.size
    if per_attribute:
        index = np.zeros((k, counts.max()), np.int64)  # [K, M], padded with row 0
        valid = np.arange(counts.max()) < counts[:, None]
        index[valid] = np.flatnonzero(member.reshape(-1)) % n
    else:
        index, valid = union[None], np.ones((1, union.size), bool)  # [1, M]
    m = index.shape[1]
    per_step = max(1, block_rows // index.shape[0])  # rows of each copy per scan step
    block = -(-m // -(-m // per_step))  # equal blocks with the least padding
    pad = -m % block
    index = np.pad(index, ((0, 0), (0, pad)))
    valid = np.pad(valid, ((0, 0), (0, pad)))
    owner = np.arange(k) if per_attribute else np.zeros(k, np.int64)  # row set of attribute k
    weight = np.take_along_axis(member, index[owner], axis=1) & valid[owner]  # [K, Mp]
    y = np.take_along_axis(labels, index[owner], axis=1) * weight
    shape = (k, -1, block)  # [K, nb, B]
    return Rows(
        _copy_rows(codes, index, block, per_attribute),
        jnp.asarray(y.reshape(shape), jnp.float32),
        jnp.asarray(weight.reshape(shape), jnp.float32),
    )


def _copy_rows(codes, index: np.ndarray, block: int, per_attribute: bool) -> jax.Array:
    """Device copy of codes[index] ([R, Mp] rows): [nb, R, B, D] if per_attribute else [nb, B, D].

    Blocks lead so that a scan step reads contiguous memory (a batch axis in
    front would make vmap(scan) transpose the whole buffer on every pass).
    One numpy gather (`np.take` reads only the selected rows of a memmap) into
    a 64-byte aligned host buffer that the CPU device then uses in place
    (`device_put(may_alias=True)`): the rows exist once, with no device-side
    scatter. (The previous block-by-block `.at[].set` into a donated buffer
    took 1.1 s for the 4,480 rows of the ratio benchmark; this takes tens of ms.)
    """
    dtype = np.float16 if codes.dtype == np.float16 else np.float32
    r, m = index.shape
    nb, d = m // block, codes.shape[1]
    order = index.reshape(r, nb, block).transpose(1, 0, 2).reshape(-1)  # block-major
    host = _aligned_empty((order.size, d), dtype)
    if codes.dtype == dtype:
        np.take(codes, order, axis=0, out=host)
    else:
        for i in range(0, order.size, 4096):  # converts dtype chunk by chunk
            host[i : i + 4096] = codes[order[i : i + 4096]]
    rows = jax.device_put(host.reshape((nb, r, block, d) if per_attribute else (nb, block, d)), may_alias=True)
    if not bool(_all_finite(rows)):
        bad = order[np.flatnonzero(~np.all(np.isfinite(host), axis=1))[0]]
        raise ValueError(f"codes contain NaN or inf (first at row {bad}); drop those samples first")
    return rows


def _aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """Uninitialised numpy array whose data is `align`-byte aligned (device_put can then alias it)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + align, np.uint8)
    offset = -raw.ctypes.data % align
    return raw[offset : offset + size].view(dtype).reshape(shape)


@jax.jit
def _all_finite(x: jax.Array) -> jax.Array:
    return jnp.all(jnp.isfinite(x))


def _rows_axis(rows: Rows):
    """vmap axis of rows.x over attributes: 1 for per-attribute rows, None for shared ones."""
    return 1 if rows.x.ndim == 4 else None


# ---- one lane: a single attribute and C, rows x [nb, B, D] ----------------------


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


class _LaneFit(NamedTuple):
    theta: jax.Array  # [D+1]
    iterations: jax.Array
    cg_iterations: jax.Array
    grad_norm: jax.Array  # |gradient| / |theta|
    converged: jax.Array


def _newton_cg(x, y, weight, C, mean, std, tol, max_newton, max_cg) -> _LaneFit:
    """Minimises the squared-hinge objective of one lane from theta = 0.

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

    theta0 = jnp.zeros(x.shape[-1] + 1)
    init = _Newton(theta0, *grad(theta0), jnp.inf, 0, 0)
    g0 = jnp.linalg.norm(init.g)
    s = lax.while_loop(lambda s: ~resolved(s) & (s.it < max_newton), body, init)
    return _LaneFit(s.theta, s.it, s.cg_it, jnp.linalg.norm(s.g) / jnp.linalg.norm(s.theta), resolved(s))


def _correct(theta, x, y, weight, mean, std):
    """(correctly classified weight, total weight) of one lane; ties predict -1 like sklearn."""

    def block(xb):
        return _standardise(xb, mean, std) @ theta[:-1] + theta[-1]

    z = lax.map(block, x)  # [nb, B]
    pred = jnp.where(z > 0, 1.0, -1.0)
    return jnp.sum(weight * (pred == y).astype(jnp.float32)), jnp.sum(weight)


# ---- row-span reduction (fewer rows than channels) -------------------------------


def _reduce(x, mean, std):
    """Features of the same problem in the row span: x [nb, B, D] -> ([1, M, M], lift [M, M]).

    With X_hat = U L^1/2 V^T (thin SVD, from the M x M Gram matrix), the optimum
    has w = V beta, and X_hat w = (U L^1/2) beta, |w| = |beta|: an M-feature
    problem whose features are decorrelated, so Jacobi-preconditioned CG works
    well. Directions with eigenvalue below 1e-6 of the largest (rank deficiency,
    e.g. S codes of unmixed w lie in a 512-dimensional affine subspace) get zero
    features and are never used. The Gram product standardises these M < D rows
    at once (an M x D float32 temporary, below D^2) so that it is one large
    matrix product rather than many block products.
    """
    m = x.shape[0] * x.shape[1]
    xh = _standardise(x.reshape(m, -1), mean, std)  # [M, D]
    eigval, eigvec = jnp.linalg.eigh(xh @ xh.T)
    keep = eigval > 1e-6 * eigval[-1]
    root = jnp.sqrt(jnp.where(keep, eigval, 0.0))
    features = (eigvec * root)[None]  # [1, M, M]: one block, small enough to stay in cache
    lift = eigvec * jnp.where(keep, 1.0 / jnp.where(keep, root, 1.0), 0.0)  # U L^-1/2, [M, M]
    return features, lift


def _lift(theta, lift, x, mean, std):
    """Reduced solution theta [M+1] -> [D+1]: w = X_hat^T (U L^-1/2 beta), same intercept."""
    coef = (lift @ theta[:-1]).reshape(x.shape[:2])  # [nb, B]

    def block(w, blk):
        xb, cb = blk
        return w + cb @ _standardise(xb, mean, std), None

    w, _ = lax.scan(block, jnp.zeros(x.shape[-1]), (x, coef))
    return jnp.append(w, theta[-1])


# ---- batching over attributes (and C) --------------------------------------------


def _fit_lanes(rows: Rows, C, mean, std, tol, max_newton, max_cg) -> _LaneFit:
    """Newton-CG for every (attribute, C) lane; C: [K, G] -> fields [K, G, ...]."""

    def attribute(x, y, weight, c_row):
        def lane(c):
            return _newton_cg(x, y, weight, c, mean, std, tol, max_newton, max_cg)

        return jax.vmap(lane)(c_row)

    return jax.vmap(attribute, in_axes=(_rows_axis(rows), 0, 0, 0))(rows.x, rows.y, rows.weight, C)


@jax.jit
def _fit_dense(rows: Rows, C, mean, std, tol, max_newton, max_cg) -> _LaneFit:
    """`_fit_lanes` in the row span when rows are fewer than channels, else directly."""
    nb, b, d = rows.x.shape[0], rows.x.shape[-2], rows.x.shape[-1]
    if nb * b >= d:
        return _fit_lanes(rows, C, mean, std, tol, max_newton, max_cg)
    per_attribute = rows.x.ndim == 4
    if per_attribute:
        # lax.map, not vmap: one attribute's standardised rows at a time.
        features, lift = lax.map(lambda k: _reduce(rows.x[:, k], mean, std), jnp.arange(rows.x.shape[1]))
        features = jnp.moveaxis(features, 0, 1)  # [1, K, M, M], the per-attribute layout
    else:
        features, lift = _reduce(rows.x, mean, std)
    # Reduced features are already standardised: identity statistics.
    one_block = (rows.y.shape[0], 1, nb * b)  # [K, 1, M]
    reduced = Rows(features, rows.y.reshape(one_block), rows.weight.reshape(one_block))
    fit = _fit_lanes(reduced, C, jnp.zeros(nb * b), jnp.ones(nb * b), tol, max_newton, max_cg)
    lift_axis = 0 if per_attribute else None

    def lift_attribute(theta, lift_k, x):
        return jax.vmap(lambda t: _lift(t, lift_k, x, mean, std))(theta)

    theta = jax.vmap(lift_attribute, in_axes=(0, lift_axis, _rows_axis(rows)))(fit.theta, lift, rows.x)
    return fit._replace(theta=theta)


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
) -> SVMFit:
    """L2 squared-hinge SVM for every attribute, C chosen on the validation split.

    Args:
      design: rows from `prepare_design`.
      C_grid: [G] candidate C values, all fitted at once (vmap).
      tol: stop when |gradient| <= tol |(w, b)|, which bounds the relative
        objective error by tol^2.
      max_newton, max_cg: iteration caps (Newton steps; CG steps per Newton step).
    """
    k = design.train.y.shape[0]
    grid = jnp.broadcast_to(jnp.sort(jnp.asarray(C_grid, jnp.float32)), (k, len(C_grid)))  # [K, G]
    lanes = _fit_dense(design.train, grid, design.mean, design.std, tol, max_newton, max_cg)
    val_grid = _accuracy(lanes.theta, design.val, design.mean, design.std)
    best = jnp.argmax(val_grid, axis=1)  # first maximum: the smallest C
    pick = jax.tree.map(lambda a: _take_lane(a, best), lanes)
    theta = pick.theta  # [K, D+1]
    scale = jnp.linalg.norm(theta[:, :-1], axis=1)
    return SVMFit(
        normal=theta[:, :-1] / scale[:, None],
        bias=theta[:, -1] / scale,
        scale=scale,
        train_acc=_accuracy(theta[:, None], design.train, design.mean, design.std)[:, 0],
        val_acc=_take_lane(val_grid, best),
        val_acc_grid=val_grid,
        C=_take_lane(grid, best),
        iterations=pick.iterations,
        cg_iterations=pick.cg_iterations,
        grad_norm=pick.grad_norm,
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


# ---- sparse directions ------------------------------------------------------------


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
) -> SparseFit:
    """Keeps the k largest |normal_i| of a dense fit; optionally refits on that support.

    The refit solves the same problem (same C) restricted to the k standardised
    channels, on a [M, k] copy of them, which is small for k << D.
    """
    K, d = dense.normal.shape
    support = jnp.argsort(-jnp.abs(dense.normal), axis=1)[:, :k]  # [K, k]
    if refit:
        sub = _support_rows(design.train, support, design.mean, design.std)
        lanes = _fit_dense(sub, dense.C[:, None], jnp.zeros(k), jnp.ones(k), tol, max_newton, max_cg)
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
