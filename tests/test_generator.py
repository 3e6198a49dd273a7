"""Behaviour of the generator API: equivalences, noise, inputs, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stylejax as sj
from parity import load
from stylejax.images import grid, to_pil, to_uint8


@pytest.fixture(scope="module")
def tiny():
    from fixture_paths import fixture_dir

    G, ref = load(lambda rel: fixture_dir(rel), "tiny")
    return G, ref


@pytest.fixture(scope="module")
def cond():
    from fixture_paths import fixture_dir

    G, ref = load(lambda rel: fixture_dir(rel), "cond")
    return G, ref


def codes(G, n=4, seed=0):
    z = jax.random.normal(jax.random.key(seed), (n, G.config.z_dim))
    return z, G.styles(G.mapping(z))


def test_jit_equals_eager(tiny):
    G, _ = tiny
    fn, params = sj.functional(G)
    z, s = codes(G, 2)
    with jax.disable_jit():  # op-by-op execution of the same pure functions
        eager_ws = fn.mapping(params, z, psi=0.5)
        eager_s = fn.styles(params, eager_ws)
        eager_img = fn.render(params, eager_s)
    np.testing.assert_allclose(jax.jit(fn.mapping)(params, z, psi=0.5), eager_ws, atol=1e-6)
    np.testing.assert_allclose(jax.jit(fn.styles)(params, eager_ws), eager_s, atol=1e-5)
    np.testing.assert_allclose(jax.jit(fn.render)(params, eager_s), eager_img, atol=1e-5)
    np.testing.assert_allclose(G(z, psi=0.5), eager_img, atol=1e-4)


def test_vmap_equals_loop(tiny):
    G, _ = tiny
    fn, params = sj.functional(G)
    _, s = codes(G, 3)
    one = jax.jit(lambda si: fn.render(params, si[None])[0])
    batched = jax.jit(jax.vmap(one))(s)
    looped = jnp.stack([one(si) for si in s])
    np.testing.assert_allclose(batched, looped, atol=1e-5)


def test_independent_of_batch_composition(tiny):
    G, _ = tiny
    _, s = codes(G, 4)
    full = G.render(s)
    np.testing.assert_allclose(G.render(s[:1]), full[:1], atol=1e-5)
    perm = jnp.array([2, 0, 3, 1])
    np.testing.assert_allclose(G.render(s[perm]), full[perm], atol=1e-5)


def test_no_recompilation_for_same_shapes(tiny):
    G, _ = tiny
    fn, params = sj.functional(G)
    traces = []

    def render(p, s):
        traces.append(1)
        return fn.render(p, s)

    f = jax.jit(render)
    _, s1 = codes(G, 2, seed=1)
    _, s2 = codes(G, 2, seed=2)
    a, b = f(params, s1), f(params, s2)
    assert len(traces) == 1
    assert not np.allclose(a, b)
    f(params, codes(G, 3)[1])  # a new batch size compiles once more
    assert len(traces) == 2


def test_gradient_wrt_styles(tiny):
    G, _ = tiny
    fn, params = sj.functional(G)
    _, s = codes(G, 2)
    loss = jax.jit(lambda s: jnp.mean(fn.render(params, s) ** 2))
    g = jax.jit(jax.grad(loss))(s)
    assert g.shape == s.shape and bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0
    # Directional derivative matches a finite difference.
    d = jax.random.normal(jax.random.key(9), s.shape)
    f = lambda t: float(loss(s + t * d))
    fd = (f(1e-2) - f(-1e-2)) / 2e-2
    np.testing.assert_allclose(float(jnp.sum(g * d)), fd, rtol=2e-2)


def test_noise_modes(tiny):
    G, _ = tiny
    _, s = codes(G, 2)
    k1, k2 = jax.random.key(1), jax.random.key(2)
    r1 = G.render(s, "random", key=k1)
    np.testing.assert_array_equal(r1, G.render(s, "random", key=k1))
    assert not np.allclose(r1, G.render(s, "random", key=k2))
    const = {l.name: G.synthesis_network.layer(l.name).noise_const[...] for l in G.space.layers if l.kind == "conv"}
    np.testing.assert_allclose(G.render(s, "explicit", noise=const), G.render(s, "const"), atol=2e-5)
    zeros = {k: jnp.zeros((2, *v.shape)) for k, v in const.items()}
    np.testing.assert_allclose(G.render(s, "explicit", noise=zeros), G.render(s, "none"), atol=2e-5)
    assert not np.allclose(G.render(s, "none"), G.render(s, "const"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(noise_mode="random"), "PRNG key"),
        (dict(noise_mode="const", key=jax.random.key(0)), "PRNG key"),
        (dict(noise_mode="explicit"), "noise arrays"),
        (dict(noise_mode="blur"), "noise_mode"),
    ],
)
def test_noise_errors(tiny, kwargs, match):
    G, _ = tiny
    with pytest.raises(ValueError, match=match):
        G.render(codes(G, 1)[1], **kwargs)


def test_explicit_noise_shape_error(tiny):
    G, _ = tiny
    noise = {l.name: jnp.zeros((3, l.resolution, l.resolution)) for l in G.space.layers if l.kind == "conv"}
    with pytest.raises(ValueError, match=r"\[2, 4, 4\]"):
        G.render(codes(G, 2)[1], "explicit", noise=noise)


def test_w_and_w_plus_inputs(tiny):
    G, _ = tiny
    z, _ = codes(G, 2)
    w = G.mapping_network.features(z)[-1]  # [B, w_dim]
    np.testing.assert_allclose(G.styles(w), G.styles(G.mapping(z)), atol=1e-5)
    wplus = G.mapping(z)
    np.testing.assert_allclose(G.truncate(w, 0.5), G.mapping(z, psi=0.5), atol=1e-5)
    assert G.truncate(wplus).shape == (2, G.num_ws, G.config.w_dim)


def test_truncation_cutoff_and_mixing(tiny):
    G, _ = tiny
    z, _ = codes(G, 2)
    full, cut = G.mapping(z), G.mapping(z, psi=0.5, cutoff=3)
    np.testing.assert_allclose(cut[:, 3:], full[:, 3:], atol=1e-6)
    assert not np.allclose(cut[:, :3], full[:, :3])
    exact = sj.truncate(full, G.w_avg, 0.5, cutoff=3)
    np.testing.assert_array_equal(exact[:, 3:], full[:, 3:])
    np.testing.assert_allclose(exact[:, :3], G.w_avg + 0.5 * (full[:, :3] - G.w_avg), atol=1e-6)
    np.testing.assert_allclose(G.mapping(z, psi=0.0)[0, 0], G.w_avg, atol=1e-5)
    a, b = G.mapping(z[:1]), G.mapping(z[1:])
    mixed = sj.mix_styles(a, b, 4)
    np.testing.assert_array_equal(mixed[:, :4], a[:, :4])
    np.testing.assert_array_equal(mixed[:, 4:], b[:, 4:])


def test_flatten_unflatten_round_trip(tiny):
    G, _ = tiny
    _, s = codes(G, 2)
    per_layer = G.space.unflatten(s)
    assert [v.shape[-1] for v in per_layer.values()] == [l.width for l in G.space.layers]
    np.testing.assert_array_equal(G.space.flatten(per_layer), s)
    ids = G.space.layer_ids()
    assert ids.shape == (G.space.dim,) and int(ids[-1]) == len(G.space.layers) - 1
    with pytest.raises(ValueError, match="missing"):
        G.space.flatten({k: v for k, v in list(per_layer.items())[1:]})


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda G: G.mapping(jnp.zeros((2, 63))), r"\[B, 64\]"),
        (lambda G: G.mapping(jnp.zeros((64,))), r"\[B, 64\]"),
        (lambda G: G.mapping(jnp.zeros((2, 64)), jnp.zeros((2, 5))), "unconditional"),
        (lambda G: G.mapping(jnp.zeros((2, 64)), psi=5.0), "psi"),
        (lambda G: G.mapping(jnp.zeros((2, 64)), psi=0.5, cutoff=99), "cutoff"),
        (lambda G: G.styles(jnp.zeros((2, 7, 64))), r"W\+ \[B, 8, 64\]"),
        (lambda G: G.render(jnp.zeros((2, 639))), r"\[B, 640\]"),
        (lambda G: G.render(jnp.zeros((640,))), r"\[B, 640\]"),
    ],
)
def test_bad_input_names_expected_shape(tiny, call, match):
    G, _ = tiny
    with pytest.raises(ValueError, match=match):
        call(G)


def test_conditional_label_checks(cond):
    G, ref = cond
    z = jnp.asarray(ref["z"])
    with pytest.raises(ValueError, match="conditional"):
        G.mapping(z)
    with pytest.raises(ValueError, match=r"\[4, 5\]"):
        G.mapping(z, jnp.zeros((4, 4)))


def test_image_helpers():
    img = np.array([[[[-1.0, 0.0, 1.0], [2.0, -2.0, 0.5]]]], np.float32)  # [1, 1, 2, 3]
    u8 = to_uint8(img)
    np.testing.assert_array_equal(u8[0, 0], [[0, 128, 255], [255, 0, 191]])  # 191.75 truncates, as official
    pil = to_pil(img)
    assert isinstance(pil, list) and pil[0].size == (2, 1)
    g = grid(np.zeros((5, 4, 4, 3), np.uint8), ncol=3, pad=1)
    assert g.shape == (9, 14, 3)
