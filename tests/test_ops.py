import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from stylejax import ops
from stylejax.ops.fir import official_resample_filter


def _rand(seed, *shapes):
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return [jax.random.normal(k, s) for k, s in zip(keys, shapes)]


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("hw", [(4, 4), (5, 7)])
def test_fast_modconv_equals_literal_official_form(up, demodulate, hw):
    x, w, s = _rand(up + 2 * demodulate, (3, *hw, 6), (3, 3, 6, 5), (3, 6))
    fast = ops.modulated_conv(x, w, s, up=up, demodulate=demodulate)
    ref = ops.modulated_conv_reference(x, w, s, up=up, demodulate=demodulate)
    assert fast.shape == (3, up * hw[0], up * hw[1], 5)
    np.testing.assert_allclose(fast, ref, atol=1e-5, rtol=1e-5)


def test_demodulated_output_has_unit_norm_weights():
    # With a delta input at the centre, the conv output is the modulated kernel
    # itself; after demodulation each output channel's kernel has norm 1.
    w, s = _rand(3, (3, 3, 4, 2), (1, 4))
    x = jnp.zeros((1, 3, 3, 4))
    norms = []
    for i in range(4):
        xi = x.at[0, 1, 1, i].set(1.0)
        norms.append(ops.modulated_conv(xi, w, s)[0] ** 2)
    total = sum(n.sum(axis=(0, 1)) for n in norms)
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)


def test_upsample_2x_equals_zero_stuffed_fir():
    (x,) = _rand(4, (2, 5, 6, 3))
    got = ops.upsample_2x(x)
    # Official definition: zero-stuff, pad (2, 1), 4x4 filter with gain 4.
    stuffed = jnp.zeros((2, 10, 12, 3)).at[:, ::2, ::2].set(x)
    padded = jnp.pad(stuffed, ((0, 0), (2, 1), (2, 1), (0, 0)))
    f = jnp.asarray(official_resample_filter() * 4)[::-1, ::-1, None, None]
    want = lax.conv_general_dilated(
        padded, jnp.tile(f, (1, 1, 1, 3)), (1, 1), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=3,
    )
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_resample_filter_is_official_buffer():
    f = official_resample_filter()
    assert f.shape == (4, 4) and f.dtype == np.float32
    assert f.sum() == 1.0 and f[0, 0] == 1 / 64 and f[1, 1] == 9 / 64


def test_bias_act():
    x = jnp.array([[-2.0, -0.5, 0.5, 2.0]])
    b = jnp.array([0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(ops.bias_act(x, b), [[-2.0, -0.5, 0.5, 3.0]])
    lrelu = ops.bias_act(x, b, act="lrelu")
    np.testing.assert_allclose(lrelu, np.sqrt(2) * np.array([[-0.4, -0.1, 0.5, 3.0]]), rtol=1e-6)
    np.testing.assert_allclose(ops.bias_act(x, b, act="lrelu", clamp=1.0), [[-0.4 * np.sqrt(2), -0.1 * np.sqrt(2), 0.5 * np.sqrt(2), 1.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="activation"):
        ops.bias_act(x, b, act="gelu")


def test_dense_equalised_lr():
    x, w, b = _rand(5, (2, 8), (8, 3), (3,))
    got = ops.dense(x, w, b, lr_multiplier=0.01)
    np.testing.assert_allclose(got, x @ (w * 0.01 / np.sqrt(8)) + b * 0.01, rtol=1e-5, atol=1e-7)
