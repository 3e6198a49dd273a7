"""Linear SVM attribute directions in JAX, batched over attributes (method.md §2).

Problem (per attribute, standardised codes x_hat = (x - mean) / std, labels y in {-1, +1}):

    min_{w, b}  0.5 * (|w|^2 + b^2) + C * sum_i max(0, 1 - y_i (w . x_hat_i + b))^2

The intercept is regularised like scikit-learn's `LinearSVC` (intercept_scaling=1),
so both solve the same problem and accuracies/objectives compare directly; with
standardised codes and balanced classes the 0.5 b^2 term is a light penalty.
Nothing here is specific to S: the same code fits directions in Z or W.

Two solvers, chosen by the shape of the training rows (M rows, D channels):

* M < D (the InterFaceGAN 2% selection: M = 560 rows per attribute vs D = 9,088):
  dual coordinate descent (`dual._dual_cd`, Hsieh et al. 2008) on the M x M Gram
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

Modules: `layout` (Rows, Design, prepare_design: the row gathering above),
`objective` (the objective, gradient and Hessian products of one lane),
`newton` (primal Newton-CG, M >= D), `dual` (dual coordinate descent, M < D
and M <= 4,096), `dense` (fit_svm: solver choice, C selection; svm_objective),
`sparse` (fit_l1, fit_top_k, sparsity_table).
"""

from __future__ import annotations

from .dense import DEFAULT_C_GRID, SVMFit, fit_svm, svm_objective
from .layout import Design, Rows, prepare_design
from .sparse import SparseFit, SparsityTable, fit_l1, fit_top_k, sparsity_table

__all__ = [
    "DEFAULT_C_GRID",
    "Design",
    "Rows",
    "SVMFit",
    "SparseFit",
    "SparsityTable",
    "fit_l1",
    "fit_svm",
    "fit_top_k",
    "prepare_design",
    "sparsity_table",
    "svm_objective",
]
