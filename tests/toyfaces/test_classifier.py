"""The attribute classifier: shapes, pure form, augmentation, storage and its errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from stylejax.toyfaces.attributes import BINARY_ATTRIBUTES, binary_labels, sample_attributes
from stylejax.toyfaces.classifier import (MARGINS, Classifier, ClassifierConfig, ClassifierError, ClassifierTraining,
                                          augment, functional, labelled_batch, load_classifier,
                                          save_classifier, train_classifier)

SMALL = ClassifierConfig(resolution=16, channels=(4, 8), hidden=8)


def test_scores_every_attribute():
    clf = Classifier(SMALL, rngs=nnx.Rngs(0))
    images, labels, margins = labelled_batch(np.random.default_rng(0), 6, SMALL)
    assert images.shape == (6, 16, 16, 3) and labels.shape == margins.shape == (6, len(BINARY_ATTRIBUTES))
    assert images.min() >= -1.01 and images.max() <= 1.0
    logits = clf.score(images)
    assert logits.shape == (6, len(BINARY_ATTRIBUTES)) and logits.dtype == jnp.float32
    fn, params = functional(clf)
    np.testing.assert_allclose(jax.jit(fn)(params, images), logits, rtol=1e-5, atol=1e-6)
    halved = jax.tree.map(lambda a: 0.5 * a, params)  # the pure function reads the params it is given
    assert float(jnp.max(jnp.abs(jax.jit(fn)(halved, images) - logits))) > 1e-3
    assert clf.predict(images).dtype == bool
    with pytest.raises(ValueError, match="images must have shape"):
        clf.score(np.zeros((2, 32, 32, 3), np.float32))


def test_margins_agree_with_labels():
    attrs = sample_attributes(np.random.default_rng(0), 5000)
    labels = binary_labels(attrs)
    for i, name in enumerate(BINARY_ATTRIBUTES):
        margin = MARGINS[name](attrs)
        assert np.all((margin > 0) == labels[:, i]), name
        assert np.all(np.abs(margin) <= 0.5), name


def test_augmentation_is_mild():
    images, _, _ = labelled_batch(np.random.default_rng(0), 8, SMALL)
    out = augment(jax.random.key(0), jnp.asarray(images))
    assert out.shape == images.shape
    # Blur and noise keep every image's mean colour (edge padding aside: under one grey level, 1/127.5).
    np.testing.assert_allclose(out.mean((1, 2)), images.mean((1, 2)), atol=1 / 127.5)
    assert float(jnp.abs(out - images).max()) > 0


@pytest.mark.parametrize("max_blur", [0.0, 1.0, 2.0])
def test_blur_levels_stay_between_whole_passes(max_blur):
    from stylejax.toyfaces.classifier import _smooth

    images, _, _ = labelled_batch(np.random.default_rng(0), 16, SMALL)
    x = jnp.asarray(images)
    passes = [x]
    for _ in range(2):
        passes.append(_smooth(_smooth(passes[-1], 1), 2))
    out = augment(jax.random.key(1), x, max_blur=max_blur, max_noise=0.0)
    if max_blur == 0:
        np.testing.assert_array_equal(out, x)  # no blur, no noise: the image itself
        return
    # Each image lies on the segment between two consecutive whole passes below max_blur.
    on_segment = []
    for k in range(int(max_blur)):
        d, e = out - passes[k], passes[k + 1] - passes[k]
        t = jnp.sum(d * e, axis=(1, 2, 3)) / jnp.sum(e * e, axis=(1, 2, 3))
        resid = jnp.max(jnp.abs(d - t[:, None, None, None] * e), axis=(1, 2, 3))
        on_segment.append((resid < 1e-5) & (t >= -1e-6) & (t <= 1 + 1e-6))
    assert bool(jnp.all(jnp.any(jnp.stack(on_segment), axis=0)))
    if max_blur == 2:  # and the second pass is reached: some images lie beyond the first segment
        assert bool(jnp.any(on_segment[1] & ~on_segment[0]))


def test_train_save_load_round_trip(tmp_path):
    clf = train_classifier(SMALL, ClassifierTraining(steps=2, batch=4), log=lambda line: None)
    path = save_classifier(clf, tmp_path / "clf", {"note": "test"})
    loaded = load_classifier(path)
    assert loaded.config == SMALL
    images, _, _ = labelled_batch(np.random.default_rng(1), 4, SMALL)
    np.testing.assert_array_equal(loaded.score(images), clf.score(images))
    with pytest.raises(FileExistsError):
        save_classifier(clf, path)


def test_missing_and_damaged_files_are_reported(tmp_path):
    with pytest.raises(ClassifierError, match="no classifier"):
        load_classifier(tmp_path / "nothing")
    path = save_classifier(Classifier(SMALL, rngs=nnx.Rngs(0)), tmp_path / "clf")
    (path / "params.npz").write_bytes(b"garbage")
    with pytest.raises(ClassifierError, match="damaged"):
        load_classifier(path)
    (path / "classifier.json").write_text("{")
    with pytest.raises(ClassifierError, match="damaged"):
        load_classifier(path)
