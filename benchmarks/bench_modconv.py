"""Modulated-conv formulations side by side (the choice behind stylejax.ops.modulated_conv).

"input": scale x by s, one shared-weight conv, scale by demodulation (the library's).
"weight": per-sample modulated weights, vmapped conv, literal transposed conv + FIR.
Both at 64x64, 128 channels, batch 8, 4 layers (the first up-sampling), fwd and fwd+bwd.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import jax
import jax.numpy as jnp

from common import machine, table, timeit
from stylejax import ops

IMPLS = {"input": ops.modulated_conv, "weight": ops.modulated_conv_reference}


def stack(impl, x, weights, styles):
    for i, (w, s) in enumerate(zip(weights, styles)):
        x = ops.bias_act(impl(x, w, s, up=2 if i == 0 else 1), None, act="lrelu")
    return x


def main(batch=8, res=64, ch=128, layers=4):
    keys = jax.random.split(jax.random.key(0), 2 * layers + 1)
    x = jax.random.normal(keys[0], (batch, res // 2, res // 2, ch))
    weights = [jax.random.normal(k, (3, 3, ch, ch)) for k in keys[1 : layers + 1]]
    styles = [jax.random.normal(k, (batch, ch)) for k in keys[layers + 1 :]]
    rows, times = [], {}
    for name, impl in IMPLS.items():
        fwd = jax.jit(lambda x, w, s, impl=impl: stack(impl, x, w, s))
        bwd = jax.jit(jax.grad(lambda s, x, w, impl=impl: jnp.mean(stack(impl, x, w, s) ** 2)))
        jax.block_until_ready(fwd(x, weights, styles))
        jax.block_until_ready(bwd(styles, x, weights))
        times[name] = (timeit(fwd, x, weights, styles), timeit(bwd, styles, x, weights))
    for name, (f, b) in times.items():
        rows.append({"impl": name, "fwd_ms": f * 1e3, "bwd_ms": b * 1e3,
                     "fwd_x": times["weight"][0] / f, "bwd_x": times["weight"][1] / b})
    print(f"Machine: {machine()}\n")
    print(table(rows, [("impl", "formulation"), ("fwd_ms", "fwd ms"), ("bwd_ms", "fwd+bwd ms"),
                       ("fwd_x", "fwd speed-up vs weight"), ("bwd_x", "fwd+bwd speed-up vs weight")]))


if __name__ == "__main__":
    main()
