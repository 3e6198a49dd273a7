"""The bundled toyfaces model (committed with the package) and bundle error handling."""

import numpy as np
import pytest

import stylejax
from stylejax.toyfaces import bundle
from stylejax.toyfaces.attributes import REGIONS
from stylejax.toyfaces.classifier import accuracy

def test_bundled_generator_loads_and_renders():
    G = stylejax.load("toyfaces")
    meta = stylejax.checkpoint.read_metadata("toyfaces")
    assert {"recipe", "kimg", "train_wall_minutes", "date"} <= set(meta["provenance"])
    z = np.random.default_rng(0).standard_normal((4, G.config.z_dim)).astype(np.float32)
    images = np.asarray(G(z))
    assert images.shape == (4, G.config.img_resolution, G.config.img_resolution, 3)
    assert np.all(np.isfinite(images)) and np.abs(images).max() < 3
    assert images.std(axis=0).mean() > 0.05  # different latents give different faces


def test_bundled_classifier_accuracy_on_fresh_faces():
    clf = bundle.load_classifier()
    acc = accuracy(clf, n=500, seed=2024)
    assert all(a >= 0.95 for a in acc.values()), acc


def test_bundled_region_masks():
    masks = bundle.region_masks()
    assert set(masks) == set(REGIONS)
    total = sum(masks.values())
    np.testing.assert_allclose(total, 1.0, atol=1e-5)  # every pixel is in exactly one region
    eyes = bundle.region_mask("eyes", 0.3)
    assert eyes.dtype == bool and 0 < eyes.sum() < eyes.size
    with pytest.raises(ValueError, match="unknown region"):
        bundle.region_mask("nose")


def test_evaluation_on_the_bundle_small(tmp_path):
    """The evaluation behind `stylejax evaluate` (demo.run, as the CLI calls it) on the shipped model, at a CI-sized N."""
    from stylejax.demo import run, toyfaces_world
    from stylejax.evaluation import EvalConfig
    from stylejax.intervention import InterventionConfig

    world = toyfaces_world(("smile",))
    cfg = EvalConfig(n_codes=1000, n_faces=8, batch=8, fit=world.fit,
                     intervention=InterventionConfig(steps=20))
    (row,) = run(tmp_path, world, cfg)
    assert (tmp_path / "grid_smile.png").is_file() and (tmp_path / "metrics.md").is_file()
    # Directions well above chance (at N = 10,000: S 0.86, Z 0.76; here N = 1,000) that make
    # faces smile by the classifier, each method on the same faces.
    assert row["s_val_acc"] > 0.75 and row["z_val_acc"] > 0.6
    assert row["z_attribute_change"] > 0 and row["s_attribute_change"] > 0
    assert row["intervention_outside_change"] < row["z_outside_change"]


def test_missing_or_damaged_bundle_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "bundle_dir", lambda: tmp_path / "toyfaces")
    for load in (bundle.load_generator, bundle.load_classifier, bundle.region_masks):
        with pytest.raises(bundle.BundleError, match="missing"):
            load()
    regions = tmp_path / "toyfaces" / bundle.REGIONS_DIR
    regions.mkdir(parents=True)
    for name in REGIONS:
        np.save(regions / f"{name}.npy", np.full((4, 4), 0.2, np.float32))
    assert bundle.region_mask("hair", 0.1).all()
    (regions / "hair.npy").write_bytes(b"garbage")
    with pytest.raises(bundle.BundleError, match="damaged"):
        bundle.region_masks()
    np.save(regions / "hair.npy", np.zeros((4, 4), np.float64))
    with pytest.raises(bundle.BundleError, match="float32"):
        bundle.region_masks()
    (tmp_path / "toyfaces" / "stylejax.json").write_text("{")
    with pytest.raises(bundle.BundleError, match="damaged"):
        bundle.load_generator()
