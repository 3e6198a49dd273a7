"""Linear SVM directions (stylejax.svm, stylejax.selection) against planted truths and scikit-learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax import svm
from stylejax.svm.dense import _fit_dense
from stylejax.selection import select_labels

sklearn_svm = pytest.importorskip("sklearn.svm")  # test reference only


def planted(n, d, k, *, seed=0, noise=0.3, support=None):
    """Codes [N, D] with non-trivial mean/scale, unit normals [K, D] in standardised space, scores [K, N]."""
    rng = np.random.default_rng(seed)
    mean = 1.0 + 0.1 * rng.standard_normal(d)
    scale = np.exp(rng.uniform(-2.0, 0.0, d))
    codes = (rng.standard_normal((n, d)) * scale + mean).astype(np.float32)
    normals = rng.standard_normal((k, d))
    if support is not None:
        normals[:, np.setdiff1d(np.arange(d), support)] = 0.0
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    mu, sd = codes.mean(0), codes.std(0)
    scores = ((codes - mu) / sd) @ normals.T + noise * rng.standard_normal((n, k))
    return codes, mu, sd, normals, scores.T


@pytest.fixture(scope="module")
def threshold_case():
    codes, mu, sd, normals, scores = planted(3000, 40, 3)
    sel = select_labels(scores, jax.random.key(0), threshold=0.0)
    design = svm.prepare_design(codes, sel, mu, sd)
    return codes, mu, sd, normals, sel, design, svm.fit_svm(design)


def sklearn_fits(codes, mu, sd, sel, C):
    """LinearSVC (squared hinge, L2, intercept_scaling=1) per attribute on the same split."""
    xh = (codes - mu) / sd
    labels, train, val = (np.asarray(a) for a in sel)
    out = []
    for k in range(labels.shape[0]):
        model = sklearn_svm.LinearSVC(C=float(C[k]), max_iter=100_000, tol=1e-6)
        model.fit(xh[train[k]], labels[k, train[k]])
        out.append((model.coef_[0], model.intercept_[0], model.score(xh[val[k]], labels[k, val[k]])))
    return out


def test_planted_direction_is_recovered(threshold_case):
    *_, normals, _, _, fit = threshold_case
    cosine = np.sum(np.asarray(fit.normal) * normals, axis=1)
    assert np.all(cosine >= 0.95), cosine
    assert fit.normal.shape == normals.shape and np.all(np.asarray(fit.converged))


def test_matches_linear_svc_accuracy_and_objective(threshold_case):
    codes, mu, sd, _, sel, design, fit = threshold_case
    ref = sklearn_fits(codes, mu, sd, sel, np.asarray(fit.C))
    ref_acc = np.array([r[2] for r in ref])
    assert np.max(np.abs(np.asarray(fit.val_acc) - ref_acc)) <= 0.01
    ours = svm.svm_objective(design, fit.normal * fit.scale[:, None], fit.bias * fit.scale, fit.C)
    theirs = svm.svm_objective(design, np.stack([r[0] for r in ref]), np.array([r[1] for r in ref]), fit.C)
    # Not worse than scikit-learn's solution, up to float32 rounding of the objective.
    assert np.all(np.asarray(ours) <= np.asarray(theirs) * (1 + 1e-5)), (ours, theirs)


def test_optimality_kkt_residual(threshold_case):
    """Float64 gradient of the objective at the returned solution is small relative to |(w, b)|."""
    codes, mu, sd, _, sel, _, fit = threshold_case
    xh = np.c_[(codes - mu) / sd, np.ones(len(codes))].astype(np.float64)
    labels, train = np.asarray(sel.labels), np.asarray(sel.train)
    for k in range(labels.shape[0]):
        theta = np.append(np.asarray(fit.normal[k], np.float64), fit.bias[k]) * float(fit.scale[k])
        x, y = xh[train[k]], labels[k, train[k]]
        hinge = np.maximum(0.0, 1.0 - y * (x @ theta))
        grad = theta - 2.0 * float(fit.C[k]) * x.T @ (y * hinge)
        assert np.linalg.norm(grad) <= 2e-3 * np.linalg.norm(theta)
        assert float(fit.grad_norm[k]) <= 1e-3


def test_fewer_rows_than_channels_matches_sklearn():
    """Fewer selected rows than channels (ratio mode, dual solver on the Gram matrix): the same problem."""
    codes, mu, sd, normals, scores = planted(4000, 300, 2, seed=1)
    sel = select_labels(scores, jax.random.key(1), ratio=0.03)  # 120 per class, 168 training rows < 300
    design = svm.prepare_design(codes, sel, mu, sd)
    fit = svm.fit_svm(design, C_grid=(1e-2, 1.0))
    ref = sklearn_fits(codes, mu, sd, sel, np.asarray(fit.C))
    assert np.max(np.abs(np.asarray(fit.val_acc) - [r[2] for r in ref])) <= 0.01
    ours = svm.svm_objective(design, fit.normal * fit.scale[:, None], fit.bias * fit.scale, fit.C)
    theirs = svm.svm_objective(design, np.stack([r[0] for r in ref]), np.array([r[1] for r in ref]), fit.C)
    assert np.all(np.asarray(ours) <= np.asarray(theirs) * (1 + 1e-5)), (ours, theirs)
    assert np.all(np.asarray(fit.converged))


def _objective64(x, y, theta, C):
    """Float64 primal objective: x [M, D+1] with the intercept column, y [M] in +-1."""
    hinge = np.maximum(0.0, 1.0 - y * (x @ theta))
    return 0.5 * theta @ theta + C * np.sum(hinge**2)


def _dual_optimum64(x, y, C):
    """Float64 optimum of the dual (box-constrained QP in M variables) by L-BFGS-B: P* = D*."""
    from scipy.optimize import minimize

    q = (y[:, None] * x) @ (y[:, None] * x).T + np.eye(len(y)) / (2.0 * C)

    def negative_dual(alpha):
        qa = q @ alpha
        return 0.5 * alpha @ qa - alpha.sum(), qa - 1.0

    res = minimize(negative_dual, np.zeros(len(y)), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * len(y), options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
    assert res.success, res.message  # stopped early, it would understate the optimum: a spurious failure
    return -res.fun


def test_dual_solver_optimality():
    """Fewer rows than channels: every C lane of the dual solver is within its reported gap of the float64 optimum."""
    codes, mu, sd, _, scores = planted(2000, 400, 2, seed=3)
    sel = select_labels(scores, jax.random.key(3), ratio=0.05)  # 100 per class, 140 training rows < 400
    design = svm.prepare_design(codes, sel, mu, sd)
    grid = (1e-3, 1e-1, 10.0)  # up to a large C: hard-margin-like, the slowest for coordinate descent
    lanes = _fit_dense(design.train, jnp.broadcast_to(jnp.asarray(grid), (2, 3)),
                       design.mean, design.std, 1e-3, 100, 1000, 1000)
    assert np.all(np.asarray(lanes.converged)) and np.all(np.asarray(lanes.cg_iterations) == 0)
    assert np.all(np.asarray(lanes.gap) <= 1e-6)  # tol^2
    xh = np.c_[(codes - mu) / sd, np.ones(len(codes))].astype(np.float64)
    labels, train = np.asarray(sel.labels), np.asarray(sel.train)
    for k in range(2):
        x, y = xh[train[k]], labels[k, train[k]].astype(np.float64)
        for g, C in enumerate(grid):
            theta = np.asarray(lanes.theta[k, g], np.float64)
            primal, optimum = _objective64(x, y, theta, C), _dual_optimum64(x, y, C)
            # The reported gap bounds the true relative suboptimality (measured: they agree to a
            # few percent), up to float32 rounding of theta.
            gap = float(lanes.gap[k, g])
            assert (primal - optimum) / primal <= 1.1 * gap + 1e-7, (k, C, primal, optimum, gap)
            # Training accuracy is read off the solver's margins: same as recomputing it.
            acc = np.mean(np.where(x @ theta > 0, 1, -1) == y)
            assert float(lanes.train_acc[k, g]) == pytest.approx(acc, abs=1e-6)
    fit = svm.fit_svm(design, C_grid=grid)
    assert np.all(np.asarray(fit.converged)) and np.all(np.asarray(fit.gap) <= 1e-6)


def test_dual_batched_fit_equals_single_fits():
    """Dual solver: the same per attribute whether fitted together or alone (codes given as a jax array)."""
    codes, mu, sd, _, scores = planted(2000, 400, 2, seed=4)
    sel = select_labels(scores, jax.random.key(4), ratio=0.05)
    fit = svm.fit_svm(svm.prepare_design(jnp.asarray(codes), sel, mu, sd), C_grid=(1e-2, 1.0))
    for k in range(2):
        single_sel = jax.tree.map(lambda a: a[k : k + 1], sel)
        single = svm.fit_svm(svm.prepare_design(codes, single_sel, mu, sd), C_grid=(1e-2, 1.0))
        np.testing.assert_allclose(single.normal[0], fit.normal[k], atol=2e-4)
        np.testing.assert_allclose(single.bias[0], fit.bias[k], atol=2e-4)
        assert float(single.C[0]) == float(fit.C[k])


def test_batched_fit_equals_single_fits(threshold_case):
    codes, mu, sd, _, sel, _, fit = threshold_case
    for k in range(sel.labels.shape[0]):
        single_sel = jax.tree.map(lambda a: a[k : k + 1], sel)
        single = svm.fit_svm(svm.prepare_design(codes, single_sel, mu, sd))
        # Same problem, different batching (matrix vs vector products): float32 rounding only.
        np.testing.assert_allclose(single.normal[0], fit.normal[k], atol=2e-4)
        np.testing.assert_allclose(single.bias[0], fit.bias[k], atol=2e-4)
        assert float(single.C[0]) == float(fit.C[k])


def test_float16_memmap_codes(tmp_path, threshold_case):
    codes, mu, sd, _, sel, _, fit = threshold_case
    np.save(tmp_path / "codes.npy", codes.astype(np.float16))
    mapped = np.load(tmp_path / "codes.npy", mmap_mode="r")
    design = svm.prepare_design(mapped, sel, mu, sd)
    assert design.train.x.dtype == jnp.float16
    half = svm.fit_svm(design)
    cosine = np.sum(np.asarray(half.normal) * np.asarray(fit.normal), axis=1)
    assert np.all(cosine > 0.999)


def test_sparse_support_is_recovered():
    support = np.array([3, 11, 17, 25, 38])
    codes, mu, sd, normals, scores = planted(3000, 40, 2, seed=2, noise=0.1, support=support)
    sel = select_labels(scores, jax.random.key(2), threshold=0.0)
    design = svm.prepare_design(codes, sel, mu, sd)
    dense = svm.fit_svm(design)
    for fit in (svm.fit_l1(design, 5, C=dense.C), svm.fit_top_k(design, dense, 5)):
        for k in range(2):
            found = np.flatnonzero(np.asarray(fit.normal[k]))
            np.testing.assert_array_equal(found, support)  # exact support, no tolerance needed here
        assert np.all(np.asarray(fit.val_acc) >= np.asarray(dense.val_acc) - 0.02)


def test_sparsity_table_shapes(threshold_case):
    *_, design, dense = threshold_case
    table = svm.sparsity_table(design, [2, 10], dense=dense)
    assert table.topk.shape == table.topk_refit.shape == table.l1.shape == (2, 3)
    assert np.all(table.topk_refit[1] >= table.topk_refit[0] - 0.02)  # more channels, not much worse


def test_ratio_selection_and_split():
    scores = np.arange(100.0)[None].repeat(2, 0)
    scores[1] = scores[1, ::-1]
    sel = select_labels(scores, jax.random.key(0), ratio=0.05)
    labels = np.asarray(sel.labels)
    np.testing.assert_array_equal(np.flatnonzero(labels[0] == 1), [95, 96, 97, 98, 99])
    np.testing.assert_array_equal(np.flatnonzero(labels[0] == -1), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(np.flatnonzero(labels[1] == 1), [0, 1, 2, 3, 4])
    assert np.all(np.asarray(sel.train | sel.val) == (labels != 0))
    assert not np.any(np.asarray(sel.train & sel.val))
    # 70/30 per class: round(0.7 * 5) = 4 training samples of each class.
    assert np.all(np.sum(np.asarray(sel.train) & (labels == 1), axis=1) == 4)

    scores = np.random.default_rng(0).standard_normal((1, 1000))
    split = [np.asarray(select_labels(scores, jax.random.key(s), ratio=0.1).train) for s in (0, 0, 1)]
    np.testing.assert_array_equal(split[0], split[1])
    assert not np.array_equal(split[0], split[2])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: select_labels(np.r_[np.ones(50), np.full(50, np.nan)], jax.random.key(0)), "NaN"),
        (lambda: select_labels(np.ones(100), jax.random.key(0), threshold=5.0), "single class"),
        (
            lambda: svm.prepare_design(
                np.zeros((99, 3), np.float32),
                select_labels(np.arange(100.0), jax.random.key(0), ratio=0.1),
                np.zeros(3),
                np.ones(3),
            ),
            "expected \\[100, D\\]",
        ),
        (
            lambda: svm.prepare_design(
                np.full((100, 3), np.inf, np.float32),
                select_labels(np.arange(100.0), jax.random.key(0), ratio=0.1),
                np.zeros(3),
                np.ones(3),
            ),
            "NaN or inf",
        ),
    ],
)
def test_bad_inputs_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()
