"""Linear SVM attribute directions in JAX, batched over attributes (method.md §2).

Problem (per attribute, standardised codes x_hat = (x - mean) / std, labels y in {-1, +1}):

    min_{w, b}  0.5 * (|w|^2 + b^2) + C * sum_i max(0, 1 - y_i (w . x_hat_i + b))^2

The intercept is regularised like scikit-learn's `LinearSVC` (intercept_scaling=1),
so both solve the same problem and accuracies/objectives compare directly; with
standardised codes and balanced classes the 0.5 b^2 term is a light penalty.
Nothing here is specific to S: the same code fits directions in Z or W.

Two solvers, chosen by the shape of the training rows (M rows, D channels):

* M < D (the InterFaceGAN 2% selection: M = 560 rows per attribute vs D = 9,088):
  dual coordinate descent (`_dual_cd`, Hsieh et al. 2008) on the M x M Gram
  matrix of [x_hat, 1]. The dual is a box-constrained QP in M variables,
  alpha >= 0, Q = diag(y) (X~ X~^T) diag(y) + I / (2C); each coordinate step
  is an exact 1-D minimisation and costs O(M) per lane once the Gram matrix
  exists. The Gram matrix (M^2 D flops; only its block upper triangle is
  multiplied out) is computed once and shared by every C of the grid, so C
  selection is nearly free. It stops on the duality gap (<= tol^2 of the
  objective, a bound on the relative suboptimality that is computed from
  non-negative terms and so resolves far below float32 resolution of the
  objective), then lifts w = X_hat^T (alpha y) in one pass over the rows.
  Why not coordinate descent in D (LinearSVC's own method, no Gram matrix):
  under XLA on CPU each of its M sequential steps (a [K, D] dot and axpy)
  measured 70-100 us, i.e. 40-50 ms per epoch for ~12 epochs; a blocked
  variant (B = 32-64 rows per step with their block Gram matrix, two [B, D]
  products per block) measured 0.36 s against 0.49 s for a whole Gram-route
  fit at one C (but without a validation pass and on a pre-standardised
  float32 copy), and 0.53 s against 0.55 s for a 4-value grid (every C adds
  two passes per epoch): not worth a second dual solver. Over-relaxation
  (SOR) only added epochs.
  The previous solver (eigh of the Gram matrix, then Newton-CG in the row
  span) spent 1.3 s in eigh alone. The Gram product runs at ~100 GFLOP/s on
  this machine (2 cores), which puts a floor of ~0.3 s under one fit of the
  benchmark below.
* M >= D (threshold selection labels all N rows): Newton-CG in D with the
  generalised Hessian of the squared hinge (H = I + 2C X_A^T X_A over the
  active rows A), Jacobi-preconditioned conjugate gradients with forcing term
  min(0.5, sqrt(|g|/|g0|)), and Armijo backtracking that costs no pass over
  the data (the margins along the step are accumulated during CG). Dual
  coordinate descent converges too slowly there (N = 20k, D = 9,088: a 5e-2
  relative gap after 30 epochs at C = 1e-3), which is why LinearSVC, too,
  switches to its primal solver when rows outnumber channels. The C grid is
  walked in ascending order, each C warm-started from the previous solution;
  the cost per C grows with C (CG steps on the benchmark data: 12, 32, 102,
  ~460 at C = 1e-5 ... 1e-2, each step one pass over the rows for all
  attributes). A rank-512 covariance sketch (randomised range finder on 4,096
  rows) as CG preconditioner was tried and raised the CG steps (16 / 42 / 130
  instead of 12 / 32 / 102): on these codes the spread of the noise bulk of
  X_A^T X_A, not its low-rank part, sets the conditioning.

Measured (benchmarks/bench_svm.py; N = 20,000, D = 9,088, K = 8 on 2 CPU cores
shared with a GAN training and test runs, load average ~6: times inflated and noisy):
  ratio, 560 training rows per attribute: prepare_design 0.06 s warm (the former
    block-by-block device copy took 1.08 s); fit_svm at one C (1e-3) 0.66 s warm,
    4-value grid 0.79 s (first calls, with compilation, 4-5 s). LinearSVC: 2.3 s
    for the 8 fits at that C (x3.2 with prepare: the 5x target is not met at a
    single C), 10.2 s with the same C selection (x12). Validation accuracy equal
    on all 8 attributes. With only the training running (at nice 10): prepare
    0.05 s, one-C fit 0.49 s = Gram 0.42 + 12 epochs 0.05 + lift 0.02 +
    validation 0.01 s.
  threshold, 14,000 rows: one C (1e-4) 10.7 s vs LinearSVC 144 s (x13, equal
    accuracy to 0.02 pt); grid 1e-5, 1e-4, 1e-3: 57 s (was > 7 min for a
    vmapped 1e-4 ... 1e-2 grid).
  N = 100,000 threshold mode on a float16 memmap: peak RSS 3.9 GiB.

Batching: attributes (and, in the dual solver, the C values of the grid) are
`jax.vmap`-ed lanes; with shared codes every pass over a row block is one
matrix product [B, D] x [D, lanes] instead of K matrix-vector products. C is
chosen per attribute on the validation split (highest accuracy, smallest C on
ties).

Memory: codes may be a numpy array, a float16 memmap or a jax array. Only the
selected rows are gathered, with one numpy `take` (only those rows of a memmap
are read), into an aligned host buffer that the CPU device uses in place, in
the storage dtype (float16 stays float16: half the bytes; anything else becomes
float32). Every Newton-CG pass upcasts and standardises one block of
`block_rows` rows at a time inside `lax.scan`, so no float32 or standardised
copy of the data exists; the Gram matrix standardises one attribute's M < D
rows at a time (an M x D temporary). Standardising the block (rather than
folding mean/std into w) keeps float32 precision when |mean| >> std, as for S
channels whose affine bias is 1. The selected rows are gathered once per
attribute ([nb, K, B, D]) when the attributes' sets are nearly disjoint (ratio
selection: no attribute pays the flops of another's rows), or once for all
([M, D] + [K, M] weights) when they overlap (threshold selection: one copy
[nb, B, D] instead of K).
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
# The dual solver keeps a [K, M, M] float32 Gram matrix: 8 x 4096^2 floats = 512 MiB at most.
_GRAM_MAX_ROWS = 4096
_GRAM_PANELS = 4  # row panels of the Gram product (symmetry: 10 of 16 blocks computed)


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
    if not isinstance(codes, np.ndarray):  # a jax array: a view of its host buffer on CPU
        codes = np.asarray(codes)
    dtype = np.float16 if codes.dtype == np.float16 else np.float32
    r, m = index.shape
    nb, d = m // block, codes.shape[1]
    order = index.reshape(r, nb, block).transpose(1, 0, 2).reshape(-1)  # block-major
    host = _aligned_empty((order.size, d), dtype)
    if codes.dtype == dtype:
        np.take(codes, order, axis=0, out=host, mode="clip")  # "raise" would buffer the output
    else:
        for i in range(0, order.size, 4096):  # converts dtype chunk by chunk
            host[i : i + 4096] = codes[order[i : i + 4096]]
    # One sum is non-finite if any value is (or, rarely, on overflow: then look row by row).
    if not np.isfinite(host.sum(dtype=np.float32)):
        bad = np.flatnonzero(~np.all(np.isfinite(host), axis=1))
        if bad.size:
            raise ValueError(f"codes contain NaN or inf (first at row {order[bad[0]]}); drop those samples first")
    rows = jax.device_put(host.reshape((nb, r, block, d) if per_attribute else (nb, block, d)), may_alias=True)
    return rows


def _aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """Uninitialised numpy array whose data is `align`-byte aligned (device_put can then alias it)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + align, np.uint8)
    offset = -raw.ctypes.data % align
    return raw[offset : offset + size].view(dtype).reshape(shape)


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
    train_acc: jax.Array  # training accuracy, from the final margins
    iterations: jax.Array  # Newton steps, or dual epochs
    cg_iterations: jax.Array  # CG steps (0 for the dual solver)
    grad_norm: jax.Array  # |gradient| / |theta|
    gap: jax.Array  # relative duality gap (f - f*) / f bound
    converged: jax.Array


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


# ---- dual coordinate descent on the Gram matrix (fewer rows than channels) -----------


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
