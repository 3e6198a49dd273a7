"""Benchmark: batched JAX SVM directions (stylejax.svm) vs scikit-learn LinearSVC.

Synthetic codes with S-like structure (low-rank part + noise, per-channel mean
and scale), K planted attribute directions, labels by 2% top/bottom selection
and by threshold (all N). Then peak RSS of a threshold-mode fit on N=100,000
float16 codes read through a memmap, each case in its own subprocess.

    python benchmarks/bench_svm.py           # N=20,000, D=9,088, K=8 (minutes)
    python benchmarks/bench_svm.py --quick   # small smoke run
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stylejax import svm  # noqa: E402
from stylejax.selection import select_labels  # noqa: E402

RANK = 512  # S codes of unmixed w span at most w_dim = 512 directions


def make_codes(n, d, seed, out=None, chunk=5000):
    """Codes [N, D] (into `out` if given, e.g. a float16 memmap), written chunk by chunk."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((RANK, d)).astype(np.float32) / np.sqrt(RANK)
    mean = (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32)
    scale = np.exp(rng.uniform(-2.0, 0.0, d)).astype(np.float32)
    out = np.empty((n, d), np.float32) if out is None else out
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        low = rng.standard_normal((m, RANK), dtype=np.float32) @ basis
        out[i : i + m] = (low + rng.standard_normal((m, d), dtype=np.float32)) * scale + mean
    return out


def chunked_stats(codes, chunk=5000):
    """Per-channel mean and std [D] without a float32 copy of the codes."""
    total = np.zeros(codes.shape[1])
    square = np.zeros(codes.shape[1])
    for i in range(0, len(codes), chunk):
        block = np.asarray(codes[i : i + chunk], np.float64)
        total += block.sum(0)
        square += (block**2).sum(0)
    mean = total / len(codes)
    return mean.astype(np.float32), np.sqrt(square / len(codes) - mean**2).astype(np.float32)


def planted_scores(codes, mean, std, k, seed, chunk=5000):
    """Scores [K, N] = standardised codes . planted unit normals + noise."""
    rng = np.random.default_rng(seed + 1)
    normals = rng.standard_normal((k, codes.shape[1])).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    scores = np.concatenate(
        [((np.asarray(codes[i : i + chunk], np.float32) - mean) / std) @ normals.T for i in range(0, len(codes), chunk)]
    )
    return (scores + 0.5 * rng.standard_normal(scores.shape)).T


def timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def sklearn_fit(xh, sel, C):
    from sklearn.svm import LinearSVC

    labels, train, val = (np.asarray(a) for a in sel)
    acc = []
    for k in range(labels.shape[0]):
        model = LinearSVC(C=float(C[k])).fit(xh[train[k]], labels[k, train[k]])
        acc.append(model.score(xh[val[k]], labels[k, val[k]]))
    return np.array(acc)


def compare(codes, mean, std, scores, mode, grid):
    kwargs = {"threshold": 0.0} if mode == "threshold" else {"ratio": 0.02}
    sel = select_labels(scores, jax.random.key(0), **kwargs)
    design, t_prep = timed(lambda: svm.prepare_design(codes, sel, mean, std))
    fit, t_first = timed(lambda: svm.fit_svm(design, C_grid=grid))  # includes compilation
    fit, t_grid = timed(lambda: svm.fit_svm(design, C_grid=grid))
    c_fixed = float(np.median(np.asarray(fit.C)))
    timed(lambda: svm.fit_svm(design, C_grid=(c_fixed,)))  # compiles for one C
    _, t_fixed = timed(lambda: svm.fit_svm(design, C_grid=(c_fixed,)))
    xh = (codes - mean) / std  # LinearSVC gets standardised codes for free (not timed)
    start = time.perf_counter()
    sk_acc = sklearn_fit(xh, sel, np.asarray(fit.C))
    t_sk = time.perf_counter() - start
    delta = 100 * np.abs(np.asarray(fit.val_acc) - sk_acc)
    print(f"\n== {mode} selection: {int(np.asarray(sel.train).sum(1).mean())} training rows per attribute ==")
    print(f"prepare_design (gather rows)      {t_prep:8.2f} s")
    print(f"fit_svm, C grid {grid}, first call (compiles) {t_first:8.2f} s")
    print(f"fit_svm, C grid, warm             {t_grid:8.2f} s   vs LinearSVC x{t_sk / (t_prep + t_grid):.1f} (prepare + warm)")
    print(f"fit_svm, fixed C={c_fixed:g}, warm     {t_fixed:8.2f} s   vs LinearSVC x{t_sk / (t_prep + t_fixed):.1f}")
    print(f"LinearSVC, {len(sk_acc)} attributes in turn, same C {t_sk:8.2f} s")
    print("val acc  ours:      " + " ".join(f"{a:.3f}" for a in np.asarray(fit.val_acc)))
    print("val acc  LinearSVC: " + " ".join(f"{a:.3f}" for a in sk_acc))
    print(f"|delta acc| mean {delta.mean():.2f} pt, max {delta.max():.2f} pt; chosen C {np.asarray(fit.C)}")
    print(f"Newton its {np.asarray(fit.iterations)}, CG its {np.asarray(fit.cg_iterations)}, converged {np.asarray(fit.converged).all()}")


def peak_rss_case(path, n, d, k):
    """Runs in a subprocess: threshold-mode fit on the float16 memmap, prints peak RSS."""
    codes = np.load(path, mmap_mode="r")
    mean, std = chunked_stats(codes)
    scores = planted_scores(codes, mean, std, k, seed=0)
    sel = select_labels(scores, jax.random.key(0), threshold=0.0)
    design, t_prep = timed(lambda: svm.prepare_design(codes, sel, mean, std))
    fit, t_fit = timed(lambda: svm.fit_svm(design, C_grid=(1e-3,)))
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    print(f"N={n} threshold mode, float16 memmap: prepare {t_prep:.1f} s, fit (C=1e-3) {t_fit:.1f} s, "
          f"val acc {np.round(np.asarray(fit.val_acc), 3)}, converged {np.asarray(fit.converged).all()}")
    print(f"peak RSS (VmHWM) {int(hwm) / 2**20:.2f} GiB; codes on disk {n * d * 2 / 2**30:.2f} GiB float16 "
          f"({n * d * 4 / 2**30:.2f} GiB as float32)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--rss-case", nargs=4, help=argparse.SUPPRESS)  # path n d k, in a subprocess
    args = parser.parse_args()
    if args.rss_case:
        path, n, d, k = args.rss_case
        return peak_rss_case(path, int(n), int(d), int(k))
    n, d, k, n_big = (2000, 512, 4, 10_000) if args.quick else (20_000, 9088, 8, 100_000)
    codes = make_codes(n, d, seed=0)
    mean, std = codes.mean(0), codes.std(0)
    scores = planted_scores(codes, mean, std, k, seed=0)
    print(f"N={n}, D={d}, K={k}, {jax.devices()[0].platform}")
    # Threshold mode solves in D (more rows than channels), where C = 1 on these
    # low-rank codes needs thousands of CG passes (minutes): its grid stops at 1e-2.
    for mode, grid in (("ratio", svm.DEFAULT_C_GRID), ("threshold", (1e-4, 1e-3, 1e-2))):
        compare(codes, mean, std, scores, mode, grid)
    del codes
    path = Path("/tmp/bench_svm_codes.npy")
    mapped = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n_big, d))
    make_codes(n_big, d, seed=1, out=mapped)
    mapped.flush()
    del mapped
    print()
    subprocess.run([sys.executable, __file__, "--rss-case", str(path), str(n_big), str(d), str(k)], check=True)
    path.unlink()


if __name__ == "__main__":
    main()
