"""Style intervention on the tiny fixture generator with a region mask."""

import dataclasses
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import pytest

from parity import load
from stylejax import functional
from stylejax.intervention import (InterventionConfig, compiled_optimise, compiled_step, even_batches, init_carry,
                                   intervene, translate)
from stylejax.translations import s_translation, w_translation, z_translation

STEPS = 30


@pytest.fixture(scope="module")
def setup():
    from fixture_paths import fixture_dir

    G, _ = load(lambda rel: fixture_dir(rel), "tiny")
    fn, params = functional(G)
    z = jax.random.normal(jax.random.key(0), (4, 64))
    s = G.styles(G.mapping(z))
    sigma = jnp.std(G.styles(G.mapping(jax.random.normal(jax.random.key(5), (512, 64)))), axis=0)
    n_z = jax.random.normal(jax.random.key(1), (64,))
    ds_z = z_translation(fn, params, z, n_z, 2.0)
    # A sparse S direction living in one 16x16 layer: a localised edit.
    n_s = jnp.zeros((G.space.dim,)).at[G.space.layer("b16.conv1").slice].set(
        jax.random.normal(jax.random.key(3), (64,))
    )
    ds_n = s_translation(n_s, sigma, 3.0)
    mask = np.zeros((32, 32), np.float32)
    mask[16:28, 8:24] = 1.0
    return G, s, ds_z, ds_n, mask, sigma


# The tiny fixture is untrained, so its loss scale is not toyfaces': explicit weights, not the defaults.
FIXTURE_CFG = InterventionConfig(steps=STEPS, w_pix=1.0)


def run(setup, cfg=FIXTURE_CFG, **kw):
    G, s, ds_z, ds_n, mask, sigma = setup
    args = dict(s=s, ds_z=ds_z, ds_n=ds_n, mask=mask)
    args.update(kw)
    return intervene(G, args["s"], args["ds_z"], args["ds_n"], args["mask"], cfg, sigma=sigma, mesh=None)


def test_intervention_beats_z_translation_outside_the_mask(setup):
    G, s, ds_z, ds_n, mask, sigma = setup
    res = run(setup)
    z_only = translate(G, s, ds_z, ds_n, mask, 0.0, sigma=sigma)
    s_only = translate(G, s, ds_z, ds_n, mask, 1.0, sigma=sigma)
    assert res.lam.shape == (4, G.space.dim) and res.loss_history.shape == (STEPS, 4)
    assert np.all(res.loss_history[-1] < res.loss_history[0])
    assert np.all(res.metrics["outside_change"] < 0.5 * z_only.metrics["outside_change"])
    assert np.all(res.metrics["cos_ds_dsn"] > z_only.metrics["cos_ds_dsn"] + 0.05)
    np.testing.assert_allclose(s_only.metrics["cos_ds_dsn"], 1.0, atol=1e-5)
    np.testing.assert_allclose(res.s_edit, s + ds_z + res.lam * (ds_n - ds_z), atol=1e-5)


# Equivalence tests use plain gradient descent: Adam's first steps are sign-like,
# so float32 rounding differences in near-zero gradients would flip whole steps.
SGD = InterventionConfig(steps=STEPS, optimizer=optax.sgd(0.5))


def test_batched_equals_per_face(setup):
    G, s, ds_z, ds_n, mask, sigma = setup
    batched = run(setup, SGD)
    for i in (0, 3):
        single = run(setup, SGD, s=s[i : i + 1], ds_z=ds_z[i : i + 1])
        np.testing.assert_allclose(single.lam[0], batched.lam[i], atol=1e-4)
        np.testing.assert_allclose(single.loss_history[:, 0], batched.loss_history[:, i], rtol=1e-5)


@pytest.mark.parametrize("loop", ["python", "scan"])
def test_deterministic_and_compiled_once(setup, loop):
    cfg = InterventionConfig(steps=5, loop=loop)
    a = run(setup, cfg)
    G = setup[0]
    compiled = (compiled_optimise if loop == "scan" else compiled_step)(functional(G)[0], cfg)
    size = compiled._cache_size()
    b = run(setup, cfg)
    np.testing.assert_array_equal(a.lam, b.lam)
    np.testing.assert_array_equal(a.images, b.images)
    assert compiled._cache_size() == size == 1  # five steps, two batches: one compilation


def test_scan_equals_python_loop(setup):
    a = run(setup, dataclasses.replace(SGD, steps=5, loop="scan"))
    b = run(setup, dataclasses.replace(SGD, steps=5, loop="python"))
    np.testing.assert_allclose(a.lam, b.lam, atol=1e-5)
    np.testing.assert_allclose(a.loss_history, b.loss_history, rtol=1e-5)


def test_non_finite_face_is_flagged_and_others_unaffected(setup):
    G, s, ds_z, ds_n, mask, sigma = setup
    cfg = InterventionConfig(steps=10)
    clean = run(setup, cfg)
    bad = ds_z.at[1, 5].set(jnp.nan)
    res = run(setup, cfg, ds_z=bad)
    assert res.flagged.tolist() == [False, True, False, False]
    np.testing.assert_array_equal(res.lam[1], 0.0)  # never took a finite step
    for i in (0, 2, 3):
        np.testing.assert_allclose(res.lam[i], clean.lam[i], atol=1e-6)


@pytest.mark.parametrize("granularity, size", [("layer", 11), ("scalar", 1)])
def test_granularity_and_projection(setup, granularity, size):
    cfg = InterventionConfig(steps=10, granularity=granularity, project=True, init=0.5,
                             optimizer=optax.sgd(10.0))
    res = run(setup, cfg)
    assert res.lam.shape == (4, size)
    assert np.all((res.lam >= 0) & (res.lam <= 1))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(ds_n=jnp.zeros(639)), r"ds_n must have shape \[640\]"),
        (dict(mask=np.ones((16, 16), np.float32) * 0.5), "binary"),
        (dict(mask=np.zeros((16, 16), np.float32)), r"mask must be \(32, 32\)"),
        (dict(ds_z=jnp.zeros((3, 640))), "ds_z must have shape"),
    ],
)
def test_bad_inputs(setup, kw, match):
    with pytest.raises(ValueError, match=match):
        run(setup, InterventionConfig(steps=1), **kw)


SHARDED = textwrap.dedent(
    """
    import sys, numpy as np, jax, jax.numpy as jnp
    sys.path.insert(0, {tests!r})
    from fixture_paths import fixture_dir
    from parity import load
    import optax
    from stylejax.generator import functional
    from stylejax.intervention import InterventionConfig, compiled_step, intervene
    assert jax.device_count() == 4, jax.devices()
    G, _ = load(lambda rel: fixture_dir(rel), "tiny")
    s = G.styles(G.mapping(jax.random.normal(jax.random.key(0), (6, 64))))
    ds_z = 0.3 * jax.random.normal(jax.random.key(1), s.shape)
    ds_n = jnp.zeros(s.shape[1]).at[300:360].set(1.0)
    mask = np.zeros((32, 32), np.float32); mask[8:20, 8:20] = 1
    cfg = InterventionConfig(steps=5)  # Adam: its state is part of what must stay sharded
    a = intervene(G, s, ds_z, ds_n, mask, cfg, mesh="auto")
    compiles = compiled_step(functional(G)[0], cfg)._cache_size()
    b = intervene(G, s, ds_z, ds_n, mask, cfg, mesh=None)
    print(float(np.abs(a.lam - b.lam).max()), float(np.abs(a.images - b.images).max()), compiles)
    """
)


def test_sharded_over_four_devices_equals_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    script = SHARDED.format(tests=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lam_diff, img_diff, compiles = map(float, out.stdout.split())
    assert lam_diff < 1e-4 and img_diff < 1e-4
    assert compiles == 1  # five sharded steps, one program


def test_diverging_face_falls_back_to_its_last_finite_lam(setup):
    """Face 2 is fine at lam = 0 but its loss overflows once lam moves: it goes back
    to the last lam with a finite loss, is flagged, and the other faces are unaffected."""
    G, s, ds_z, ds_n, mask, sigma = setup
    cfg = InterventionConfig(steps=4, optimizer=optax.sgd(1.0))
    per_face = jnp.broadcast_to(ds_n, s.shape)
    clean = run(setup, cfg, ds_n=per_face)
    res = run(setup, cfg, ds_n=per_face.at[2].multiply(1e15))
    assert res.flagged.tolist() == [False, False, True, False]
    assert np.isfinite(res.loss_history[0, 2]) and not np.all(np.isfinite(res.loss_history[:, 2]))
    np.testing.assert_array_equal(res.lam[2], 0.0)  # lam = 0 was its last finite-loss point
    assert np.all(np.isfinite(res.images[2]))
    np.testing.assert_allclose(res.lam[[0, 1, 3]], clean.lam[[0, 1, 3]], atol=1e-6)


def test_remat_gives_the_same_result(setup):
    a = run(setup, dataclasses.replace(SGD, steps=3))
    b = run(setup, dataclasses.replace(SGD, steps=3, remat=True))
    np.testing.assert_allclose(a.lam, b.lam, atol=1e-5)
    np.testing.assert_allclose(a.loss_history, b.loss_history, rtol=1e-5)
    # And remat is really in the program: one checkpoint per synthesis layer.
    G = setup[0]
    fn, params = functional(G)
    def checkpoints(remat):  # the checkpoint primitive prints as remat2 (jax 0.10) or checkpoint
        text = str(jax.make_jaxpr(lambda s: fn.render(params, s, remat=remat))(setup[1]))
        return len(re.findall(r"\b(?:remat2?|checkpoint)\[", text))

    assert checkpoints(False) == 0 and checkpoints(True) == len(G.space.layers)


def test_translations_reject_psi_out_of_range(setup):
    G, s, *_ = setup
    fn, params = functional(G)
    z = jnp.zeros((1, G.config.z_dim))
    with pytest.raises(ValueError, match="psi"):
        z_translation(fn, params, z, jnp.ones(G.config.z_dim), 1.0, psi=7.0)
    with pytest.raises(ValueError, match="psi"):
        w_translation(fn, params, G.mapping(z), jnp.ones(G.config.w_dim), 1.0, psi=-9.0)
    with pytest.raises(ValueError, match="psi"):  # numpy scalars are numbers too
        z_translation(fn, params, z, jnp.ones(G.config.z_dim), 1.0, psi=np.float32(7.0))


@pytest.mark.parametrize("n, batch", [(1, 16), (16, 16), (17, 16), (100, 64), (255, 64), (7, 3)])
def test_even_batches_cover_every_position_once_in_equal_batches(n, batch):
    batches = even_batches(n, batch)
    assert len(batches) == -(-n // batch)
    assert len({len(r) for r in batches}) == 1 and len(batches[0]) <= batch
    positions = [p for r in batches for p in r]
    assert positions[:n] == list(range(n)) and len(positions) - n < len(batches)
    assert all(r.start < n for r in batches)  # padding only ever fills the last batch


def test_init_carry_accepts_numpy():
    lam0 = np.arange(6, dtype=np.float32).reshape(2, 3)
    carry = init_carry(optax.adam(0.1), lam0)
    np.testing.assert_array_equal(carry.lam, lam0)
    np.testing.assert_array_equal(carry.last_good, lam0)
    assert carry.flagged.tolist() == [False, False]


def test_init_carry_places_every_leaf_on_the_face_axis():
    mesh = Mesh(np.array(jax.devices()[:1]), ("faces",))
    lam0 = jax.device_put(jnp.ones((2, 3)), NamedSharding(mesh, PartitionSpec("faces", None)))
    carry = init_carry(optax.adam(0.1), lam0)
    for leaf in jax.tree.leaves(carry):  # lam, Adam's count, mu, nu, last_good, flagged
        assert isinstance(leaf.sharding, NamedSharding) and leaf.sharding.spec[0] == "faces", leaf.sharding
