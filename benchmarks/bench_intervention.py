"""Style intervention throughput (faces x steps / s) and memory.

* small256 shapes, for a batch of 1, 8 and 32 faces: the batched step driven
  by a Python loop (the library's default) on one device and sharded over all
  local devices, the same steps under lax.scan (one program), and a per-face
  Python loop over the jitted single-face step (the baseline a vmap-free
  implementation gets). On a CPU host the script splits the host into one
  XLA device per core (`stylejax --cpu-devices N`), unless XLA_FLAGS already
  sets a count.
* FFHQ-1024 shapes (random weights): batch 1 and 4, and XLA's peak temporary
  memory of the compiled optimisation with and without rematerialisation.

    python benchmarks/bench_intervention.py [--quick] [--only throughput|ffhq|memory]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import jax

# One XLA device per core on a CPU host (before the backend starts), unless XLA_FLAGS sets a count.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    jax.config.update("jax_num_cpu_devices", cores)

import jax.numpy as jnp
from flax import nnx

import stylejax as sj
from bench_generator import CONFIGS
from common import machine, matmul_peak_gflops, table
from stylejax.intervention import (Faces, InterventionConfig, compiled_optimise, compiled_step, default_mesh,
                                   init_carry, replicate, shard_faces)

REPEATS = 3  # every Python-loop timing is the best of this many runs


def make_faces(fn, params, cfg, b, seed=0):
    z = jax.random.normal(jax.random.key(seed), (b, cfg.z_dim))
    s = fn.styles(params, fn.mapping(params, z))
    d = s.shape[1]
    ds_z = 0.2 * jax.random.normal(jax.random.key(seed + 1), s.shape)
    ds_n = jnp.zeros((b, d)).at[:, d // 3 : d // 3 + d // 20].set(1.0)
    r = cfg.img_resolution
    mask = jnp.zeros((b, r, r)).at[:, r // 2 :, r // 4 : 3 * r // 4].set(1.0)
    original = jax.jit(fn.render)(params, s)
    return Faces(s, ds_z, ds_n, mask, original)


def timed(f, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(f(*args))
    return time.perf_counter() - t0, out


def best_of(run) -> tuple[float, float]:
    """(wall s, cores busy) of the fastest of REPEATS calls of run(); cores busy = CPU time / wall."""
    best = (float("inf"), 0.0)
    for _ in range(REPEATS):
        cpu0, t0 = time.process_time(), time.perf_counter()
        run()
        wall = time.perf_counter() - t0
        best = min(best, (wall, (time.process_time() - cpu0) / wall))
    return best


def loop_time(step, carry, args, steps) -> tuple[float, float]:
    """best_of `steps` steps from `carry` (compiled beforehand)."""
    jax.block_until_ready(step(carry, *args))

    def run():
        c = carry
        for _ in range(steps):
            c, _ = step(c, *args)
        jax.block_until_ready(c)

    return best_of(run)


def step_gflop(step, carry, args) -> float:
    cost = step.lower(carry, *args).compile().cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["flops"] / 1e9


def throughput(config_name, batches, steps, per_face_faces, scan=True):
    cfg = CONFIGS[config_name]
    G = sj.Generator(cfg, rngs=nnx.Rngs(0))
    fn, params = sj.functional(G)
    space = G.space
    sigma, layer_ids = jnp.ones(space.dim), space.layer_ids()
    icfg = InterventionConfig(steps=steps)
    step = compiled_step(fn, icfg)
    mesh = default_mesh()
    rows = []
    for b in batches:
        faces = make_faces(fn, params, cfg, b)
        lam0 = jnp.zeros((b, space.dim))
        row = lambda mode, t, cores=None, **kw: {"shapes": config_name, "mode": mode, "batch": b,
                                                 "fs_per_s": b * steps / t, "cores": cores, **kw}
        if scan:
            run = compiled_optimise(fn, icfg)
            t_first, _ = timed(run, params, faces, sigma, layer_ids, lam0)
            t, _ = timed(run, params, faces, sigma, layer_ids, lam0)
            rows.append(row("batched, lax.scan", t, compile_s=t_first - t))
        t, cores = loop_time(step, init_carry(icfg.transform(), lam0), (params, faces, sigma, layer_ids), steps)
        rows.append(row("batched, Python loop, 1 device", t, cores))
        if mesh is not None and b > 1:
            sharded_faces, sharded_lam0 = shard_faces(mesh, faces, lam0)
            args = (replicate(mesh, params), sharded_faces, *replicate(mesh, (sigma, layer_ids)))
            t, cores = loop_time(step, init_carry(icfg.transform(), sharded_lam0), args, steps)
            rows.append(row(f"batched, Python loop, sharded over {mesh.devices.size} devices", t, cores))
    if per_face_faces:
        faces = make_faces(fn, params, cfg, per_face_faces)
        one = lambda i: jax.tree.map(lambda a: a[i : i + 1], faces)
        carry0 = init_carry(icfg.transform(), jnp.zeros((1, space.dim)))
        gflop = step_gflop(step, carry0, (params, one(0), sigma, layer_ids))
        jax.block_until_ready(step(carry0, params, one(0), sigma, layer_ids))  # compile

        def per_face():
            for i in range(per_face_faces):
                carry, face = carry0, one(i)
                for _ in range(steps):
                    carry, _ = step(carry, params, face, sigma, layer_ids)
                jax.block_until_ready(carry)

        t, cores = best_of(per_face)
        rows.append({"shapes": config_name, "mode": "per-face Python loop (baseline)", "batch": per_face_faces,
                     "fs_per_s": per_face_faces * steps / t, "cores": cores})
        for r in rows:  # every mode does the same work per face-step
            r["gflops"] = r["fs_per_s"] * gflop
    return rows


def ffhq_throughput():
    """FFHQ-1024 shapes, batch 1 and 4, 2 steps of the library's default (Python loop) only."""
    return throughput("ffhq1024", [1, 4], 2, per_face_faces=0, scan=False)


def memory(batches, steps=2):
    cfg = CONFIGS["ffhq1024"]
    G = sj.Generator(cfg, rngs=nnx.Rngs(0))
    fn, params = sj.functional(G)
    sigma, layer_ids = jnp.ones(G.space.dim), G.space.layer_ids()
    rows = []
    for b in batches:
        faces = make_faces(fn, params, cfg, b)
        lam0 = jnp.zeros((b, G.space.dim))
        for remat in (False, True):
            run = compiled_optimise(fn, InterventionConfig(steps=steps, remat=remat))
            t0 = time.perf_counter()
            mem = run.lower(params, faces, sigma, layer_ids, lam0).compile().memory_analysis()
            rows.append({"batch": b, "remat": "on" if remat else "off",
                         "temp_gb": mem.temp_size_in_bytes / 2**30,
                         "args_gb": mem.argument_size_in_bytes / 2**30,
                         "compile_s": time.perf_counter() - t0})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["throughput", "ffhq", "memory"], help="run one part")
    args = ap.parse_args()
    print(f"Machine: {machine()}\n")
    if args.only == "ffhq":
        print(table(ffhq_throughput(), [("shapes", "shapes"), ("mode", "mode"), ("batch", "faces"),
                                        ("fs_per_s", "faces x steps / s")]))
    elif args.only != "memory":
        print_throughput(args.quick)
    if not args.quick and args.only in (None, "memory"):
        print("\nFFHQ-1024 shapes, compiled optimisation: XLA buffer sizes")
        print(table(memory([1, 4]), [("batch", "faces"), ("remat", "remat"), ("temp_gb", "peak temp GiB"),
                                     ("args_gb", "arguments GiB"), ("compile_s", "compile s")]))


def print_throughput(quick: bool) -> None:
    steps = 3 if quick else 5
    peak = matmul_peak_gflops()
    rows = throughput("small256", [1, 8] if quick else [1, 8, 32], steps, per_face_faces=8)
    base = next(r["fs_per_s"] for r in rows if r["mode"].startswith("per-face"))
    for r in rows:
        r["vs_loop"] = f"{r['fs_per_s'] / base:.2f}x"
        r["of_peak"] = f"{r['gflops'] / peak:.0%}" if "gflops" in r else ""
    print(f"fp32 matmul peak (same run): {peak:.0f} GFLOP/s; GFLOP/s from XLA's flop count of one face-step\n")
    if not quick:
        rows += ffhq_throughput()
    print(table(rows, [("shapes", "shapes"), ("mode", "mode"), ("batch", "faces"),
                       ("fs_per_s", "faces x steps / s"), ("vs_loop", "vs per-face loop"),
                       ("gflops", "GFLOP/s"), ("of_peak", "% of matmul peak"), ("cores", "cores busy"),
                       ("compile_s", "compile s")]))


if __name__ == "__main__":
    main()
