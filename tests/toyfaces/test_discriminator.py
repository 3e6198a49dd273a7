import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from stylejax.toyfaces.conv import conv2d
from stylejax.toyfaces.discriminator import Discriminator, DiscriminatorConfig, minibatch_std
from stylejax.toyfaces.downsample import blur, downsample_2x


def test_discriminator_shapes_and_channels():
    cfg = DiscriminatorConfig(img_resolution=16, channel_base=128, channel_max=16)
    D = Discriminator(cfg, rngs=nnx.Rngs(0))
    assert cfg.block_resolutions == (16, 8)
    assert D.fromrgb.weight.shape == (1, 1, 3, cfg.channels(16))
    assert D.b16.conv1.weight.shape == (3, 3, 8, 16)  # 128 // 16 = 8 in, channels(8) = 16 out
    assert D.conv.weight.shape == (3, 3, 16 + 1, 16)  # + the minibatch-std feature
    logits = D(jax.random.normal(jax.random.key(1), (8, 16, 16, 3)))
    assert logits.shape == (8,) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(logits)))
    with pytest.raises(ValueError, match="images must have shape"):
        D(jnp.zeros((4, 32, 32, 3)))


def test_minibatch_std_groups():
    x = jax.random.normal(jax.random.key(0), (8, 4, 4, 6))
    y = minibatch_std(x, group_size=4)
    assert y.shape == (8, 4, 4, 7)
    np.testing.assert_array_equal(y[..., :6], x)
    # Group size 4 over 8 samples: groups are {0, 2, 4, 6} and {1, 3, 5, 7}.
    for members in ([0, 2, 4, 6], [1, 3, 5, 7]):
        g = np.asarray(x)[members]
        expected = np.sqrt(g.var(axis=0) + 1e-8).mean()
        for n in members:
            np.testing.assert_allclose(y[n, ..., 6], expected, rtol=1e-5)
    # The feature is constant over pixels and differs between the two groups.
    assert float(y[0, 0, 0, 6]) != pytest.approx(float(y[1, 0, 0, 6]))


def test_minibatch_std_sees_collapse():
    same = jnp.broadcast_to(jax.random.normal(jax.random.key(0), (1, 4, 4, 8)), (4, 4, 4, 8))
    assert float(jnp.max(minibatch_std(same, 4)[..., -1])) < 1e-3  # sqrt(eps)
    assert minibatch_std(same[:2], 4).shape == (2, 4, 4, 9)  # group shrinks to the batch
    with pytest.raises(ValueError, match="divide"):
        minibatch_std(jnp.zeros((6, 4, 4, 8)), 4)


def test_fir_downsampling():
    x = jnp.ones((2, 8, 8, 3))
    d = downsample_2x(x)
    assert d.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(d[:, 1:-1, 1:-1], 1.0, rtol=1e-6)  # unit gain away from the zero padding
    assert blur(x, pad=2).shape == (2, 9, 9, 3)
    w = jax.random.normal(jax.random.key(0), (3, 3, 3, 5))
    assert conv2d(x, w, None, down=2).shape == (2, 4, 4, 5)
    # The fused down-sampling conv is the conv followed by the FIR down-sampling (away from the borders).
    r = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
    np.testing.assert_allclose(conv2d(r, w, None, down=2)[:, 1:-1, 1:-1],
                               downsample_2x(conv2d(r, w, None))[:, 1:-1, 1:-1], atol=1e-5)
    assert conv2d(x, w[:1, :1], None, down=2).shape == (2, 4, 4, 5)
    # A 2-pixel checkerboard is (almost) removed: the filter is a low-pass.
    checker = jnp.asarray(np.indices((8, 8)).sum(0) % 2, jnp.float32)[None, :, :, None]
    assert float(jnp.abs(downsample_2x(checker)[:, 1:-1, 1:-1] - 0.5).max()) < 1e-6
