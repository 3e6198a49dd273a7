"""Shared helpers for the benchmark scripts (not part of the library)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import jax
import jax.numpy as jnp


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    dev = jax.devices()[0]
    return f"{cpu}, {os.cpu_count()} cores visible, jax {jax.__version__} on {dev.platform} ({dev.device_kind})"


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timeit(fn, *args, repeats: int = 3, min_time: float = 1.0) -> float:
    """Best wall time of fn(*args) over repeats (each blocks until ready)."""
    best = float("inf")
    total, n = 0.0, 0
    while n < repeats or total < min_time:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        dt = time.perf_counter() - t0
        best, total, n = min(best, dt), total + dt, n + 1
        if n >= 50:
            break
    return best


def matmul_peak_gflops(n: int = 2048, dtype=jnp.float32) -> float:
    """Practical fp32 matmul throughput of this device, GFLOP/s."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    f = jax.jit(jnp.dot)
    jax.block_until_ready(f(a, b))
    return 2 * n**3 / timeit(f, a, b, repeats=5) / 1e9


def run_isolated(script: str, args: list[str]) -> dict:
    """Run one case in a fresh process (for honest peak memory); returns its JSON line."""
    out = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A markdown table: columns are (key, header) pairs."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for k, _ in columns:
            v = r.get(k)
            v = "" if v is None else v
            if isinstance(v, float):
                cells.append(f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
