"""Generator speed and memory: forward, and forward+backward w.r.t. s.

Cases: FFHQ-1024 config-f shapes and small256 shapes (random weights), batch
1 and 4. Each case runs in a fresh process so peak RSS is its own. In the same
run the device's fp32 matmul throughput is measured as its practical peak.

    python benchmarks/bench_generator.py            # full table
    python benchmarks/bench_generator.py --quick    # small256 only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import jax
import jax.numpy as jnp
from flax import nnx

import stylejax as sj
from common import machine, matmul_peak_gflops, peak_rss_mb, run_isolated, table, timeit

CONFIGS = {
    "ffhq1024": sj.GeneratorConfig(),
    "small256": sj.GeneratorConfig(
        z_dim=128, w_dim=128, img_resolution=256,
        mapping=sj.MappingConfig(num_layers=4),
        synthesis=sj.SynthesisConfig(channel_base=4096, channel_max=128, conv_clamp=256.0),
    ),
}


def conv_macs(cfg: sj.GeneratorConfig, batch: int) -> int:
    """Multiply-accumulates of the synthesis convs and toRGBs for one forward pass."""
    total = 0
    for layer in sj.StyleSpace.from_config(cfg).layers:
        taps = 9 if layer.kind == "conv" else 1
        total += batch * layer.resolution**2 * taps * layer.width * layer.out_channels
    return total


def run_case(config: str, mode: str, batch: int, dtype: str) -> dict:
    cfg = CONFIGS[config]
    G = sj.Generator(cfg, rngs=nnx.Rngs(0))
    fn, params = sj.functional(G)
    z = jax.random.normal(jax.random.key(1), (batch, cfg.z_dim))
    s = fn.styles(params, fn.mapping(params, z))
    error = None
    if dtype == "bf16":
        reference = jax.jit(fn.render)(params, s)
        params = jax.tree.map(lambda a: a.astype(jnp.bfloat16) if a.dtype == jnp.float32 else a, params)
        s = s.astype(jnp.bfloat16)
        low = jax.jit(fn.render)(params, s).astype(jnp.float32)
        error = float(jnp.max(jnp.abs(low - reference)) / jnp.max(jnp.abs(reference)))
    if mode == "fwd":
        f = jax.jit(lambda p, s: fn.render(p, s))
    else:
        f = jax.jit(jax.value_and_grad(lambda s, p: jnp.mean(jnp.square(fn.render(p, s).astype(jnp.float32)))),)
        f = (lambda g: (lambda p, s: g(s, p)))(f)
    t0 = time.perf_counter()
    jax.block_until_ready(f(params, s))
    first = time.perf_counter() - t0
    best = timeit(f, params, s, repeats=3, min_time=2.0)
    flops = 2 * conv_macs(cfg, batch) * (1 if mode == "fwd" else 3)  # bwd ~ 2x fwd
    return {
        "config": config, "mode": mode, "batch": batch, "dtype": dtype,
        "img_s": batch / best, "ms": best * 1e3, "gflops": flops / best / 1e9,
        "compile_s": first - best, "peak_rss_mb": peak_rss_mb(),
        **({"bf16_err": error} if error is not None else {}),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", help="internal: config,mode,batch,dtype")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="also run bf16 cases")
    args = ap.parse_args()
    if args.case:
        c, m, b, d = args.case.split(",")
        print(json.dumps(run_case(c, m, int(b), d)))
        return
    peak = matmul_peak_gflops()
    configs = ["small256"] if args.quick else ["small256", "ffhq1024"]
    dtypes = ["fp32", "bf16"] if args.bf16 else ["fp32"]
    rows = []
    for c in configs:
        for m in ("fwd", "fwd+bwd"):
            for b in (1, 4):
                for d in dtypes:
                    r = run_isolated(__file__, ["--case", f"{c},{m},{b},{d}"])
                    r.update(config=c, mode=m, batch=b, dtype=d)
                    if "gflops" in r:
                        r["pct_peak"] = f"{100 * r['gflops'] / peak:.0f}%"
                    rows.append(r)
                    print(json.dumps(r), file=sys.stderr, flush=True)
    print(f"Machine: {machine()}")
    print(f"fp32 matmul peak (2048^3, same run): {peak:.1f} GFLOP/s\n")
    print(table(rows, [("config", "config"), ("mode", "mode"), ("batch", "batch"), ("dtype", "dtype"),
                       ("img_s", "images/s"), ("ms", "ms/batch"), ("gflops", "conv GFLOP/s"),
                       ("pct_peak", "% of matmul peak"), ("compile_s", "compile s"),
                       ("peak_rss_mb", "peak RSS MB"), ("bf16_err", "max |bf16 - fp32| / max |fp32|"),
                       ("error", "error")]))


if __name__ == "__main__":
    main()
