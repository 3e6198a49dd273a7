"""One training iteration on a tiny config: finite losses, compile-once steps, the recipe's bookkeeping."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax.toyfaces.training import TrainConfig, Trainer, real_images

TINY = TrainConfig(resolution=16, latent_dim=8, mapping_layers=2, g_channel_base=64, g_channel_max=16,
                   d_channel_base=64, d_channel_max=16, batch=4, r1_interval=2)


@pytest.fixture(scope="module")
def trainer():
    return Trainer(TINY)


def run(trainer, state, steps, start=0):
    """The iteration of stylejax.toyfaces.train: D, R1 every r1_interval steps, G + EMA."""
    cfg = trainer.config
    stats = []
    for step in range(start, start + steps):
        reals = jnp.asarray(real_images(cfg, step))
        kd, kg = jax.random.split(jax.random.fold_in(jax.random.key(cfg.seed), step))
        state, s = trainer.d_step(state, reals, kd)
        if step % cfg.r1_interval == 0:
            state, r1 = trainer.d_reg_step(state, reals)
            s = {**s, **r1}
        state, g = trainer.g_step(state, kg, jnp.float32(cfg.ema_beta(step * cfg.batch)))
        stats.append(jax.device_get({**s, **g}))
    return state, stats


def test_steps_run_compile_once_and_stay_finite(trainer):
    state = trainer.init()
    state, stats = run(trainer, state, 4)
    for s in stats:
        assert all(np.isfinite(v) for v in s.values()), s
    assert "r1" in stats[0] and "r1" not in stats[1]
    assert trainer.d_step._cache_size() == 1
    assert trainer.d_reg_step._cache_size() == 1
    assert trainer.g_step._cache_size() == 1


def test_updates_w_avg_ema_and_both_networks(trainer):
    s0 = trainer.init()
    s1, _ = run(trainer, jax.tree.map(jnp.array, s0), 1)
    changed = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert changed(s0.G, s1.G) and changed(s0.D, s1.D) and changed(s0.G_ema, s1.G_ema)
    w0 = s0.G_buffers["mapping_network"]["w_avg"][...]
    w1 = s1.G_buffers["mapping_network"]["w_avg"][...]
    assert not np.array_equal(w0, w1)
    np.testing.assert_array_equal(w1, s1.G_ema_buffers["mapping_network"]["w_avg"][...])
    # Noise buffers are constants of the network, not trained.
    np.testing.assert_array_equal(s0.G_buffers["synthesis_network"]["b8"]["conv0"]["noise_const"][...],
                                  s1.G_buffers["synthesis_network"]["b8"]["conv0"]["noise_const"][...])


def test_lazy_regularisation_correction(trainer):
    # D's lr and beta2 are corrected by c = 2 / 3 for r1_interval 2; G's are not.
    c = 2 / 3
    grads = {"w": jnp.ones(3)}
    with jax.numpy_dtype_promotion("standard"):
        upd_d, _ = trainer.opt_D.update(grads, trainer.opt_D.init(grads))
        upd_g, _ = trainer.opt_G.update(grads, trainer.opt_G.init(grads))
    # First Adam step with beta1 0: the update is -lr * g / (|g| + eps).
    np.testing.assert_allclose(upd_g["w"], -TINY.lr, rtol=1e-5)
    np.testing.assert_allclose(upd_d["w"], -TINY.lr * c, rtol=1e-5)

    # beta2 shows from the second step on: gradients 1 then 3, by hand (beta1 0, so mu = g).
    def second_step(opt):
        state = opt.init(grads)
        with jax.numpy_dtype_promotion("standard"):
            _, state = opt.update(grads, state)
            upd, _ = opt.update({"w": 3 * jnp.ones(3)}, state)
        return upd["w"]

    def by_hand(lr, b2):
        nu = b2 * (1 - b2) * 1.0 + (1 - b2) * 9.0
        return -lr * 3.0 / (np.sqrt(nu / (1 - b2**2)) + 1e-8)

    np.testing.assert_allclose(second_step(trainer.opt_G), by_hand(TINY.lr, TINY.beta2), rtol=1e-5)
    np.testing.assert_allclose(second_step(trainer.opt_D), by_hand(TINY.lr * c, TINY.beta2**c), rtol=1e-5)
    # The two betas are told apart: their steps differ by 67x the tolerance above.
    assert abs(by_hand(1.0, TINY.beta2**c) / by_hand(1.0, TINY.beta2) - 1) > 10 * 1e-5


def test_ema_beta_ramps_up():
    cfg = TrainConfig(batch=32, ema_kimg=10, ema_rampup=0.05)
    assert cfg.ema_beta(0) == 0.0  # nothing to average yet
    assert cfg.ema_beta(100_000) == pytest.approx(0.5 ** (32 / 5000))
    assert cfg.ema_beta(10**7) == pytest.approx(0.5 ** (32 / 10000))  # capped at the half-life
    no_ramp = dataclasses.replace(cfg, ema_rampup=None)
    assert no_ramp.ema_beta(0) == pytest.approx(0.5 ** (32 / 10000))


def test_reals_are_deterministic_per_step():
    a, b = real_images(TINY, 3), real_images(TINY, 3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 16, 16, 3) and a.dtype == np.float32
    assert -1.01 <= a.min() and a.max() <= 1.0
    assert not np.array_equal(a, real_images(TINY, 4))
