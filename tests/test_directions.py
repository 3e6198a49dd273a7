"""Directions: fitting from sampled codes, the directions file, its errors."""

import numpy as np
import pytest

from parity import load
from stylejax.directions import Direction, Directions, FitConfig, fit_directions
from stylejax.labels import Labels
from stylejax.generator import identity
from stylejax.sampling import Codes, sample_codes


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from fixture_paths import fixture_dir

    G = load(lambda rel: fixture_dir(rel), "tiny")[0]
    folder = tmp_path_factory.mktemp("codes")
    sample_codes(G, folder, 3000, chunk=1000)
    codes = Codes(folder)
    rng = np.random.default_rng(0)
    n_z = rng.standard_normal(64)
    n_z /= np.linalg.norm(n_z)
    scores = np.stack([codes.z @ n_z + 0.05 * rng.standard_normal(len(codes)), rng.standard_normal(len(codes))], 1)
    return G, codes, Labels(["planted", "noise"], np.arange(len(codes)), scores), n_z


def test_planted_z_direction_is_recovered(world):
    G, codes, labels, n_z = world
    (d,) = fit_directions(codes, labels, "z", ["planted"], FitConfig(ratio=0.1))
    assert d.space == "z" and d.normal.shape == (64,)
    assert float(d.normal @ n_z) >= 0.95
    assert d.report["val_acc"] >= 0.95 and d.report["n_train"] + d.report["n_val"] == 600


def test_sparse_s_directions_for_many_attributes(world):
    G, codes, labels, _ = world
    fitted = fit_directions(codes, labels, "s", config=FitConfig(ratio=0.1, sparsity=0.05))
    planted, noise = fitted
    assert planted.nnz == noise.nnz == 32
    assert planted.report["val_acc"] >= 0.8 > 0.7 > noise.report["val_acc"]
    np.testing.assert_allclose(np.linalg.norm(planted.normal), 1.0, rtol=1e-5)
    # The S direction moves the planted attribute: its z-score rises along it.
    assert planted.report["dense_val_acc"] >= planted.report["val_acc"] - 0.05


def test_file_round_trip_and_merge(world, tmp_path):
    G, codes, labels, _ = world
    path = tmp_path / "d.npz"
    dirs = Directions.open_or_new(path, identity(G))
    for d in fit_directions(codes, labels, "z", config=FitConfig(ratio=0.1)):
        dirs.add(d)
    dirs.save(path)
    merged = Directions.open_or_new(path, identity(G))
    merged.add(Direction("planted", "s", np.eye(640)[0], 0.5, {"val_acc": 1.0}, codes.mean, codes.std))
    merged.save(path)
    back = Directions.load(path)
    assert sorted(back.entries) == [("noise", "z"), ("planted", "s"), ("planted", "z")]
    np.testing.assert_array_equal(back.get("planted", "z").normal, dirs.get("planted", "z").normal)
    np.testing.assert_array_equal(back.get("planted", "s").std, codes.std)
    np.testing.assert_array_equal(back.get("planted", "s").mean, codes.mean)
    assert back.get("planted", "z").std is None
    assert back.get("planted", "s").bias == 0.5


def test_errors(world, tmp_path):
    G, codes, labels, _ = world
    dirs = Directions(identity(G))
    dirs.add(Direction("smile", "z", np.ones(64), 0.0, {}))
    with pytest.raises(ValueError, match="not in the directions file"):
        dirs.get("glasses", "z")
    with pytest.raises(ValueError, match="has no 's' direction"):
        dirs.get("smile", "s")
    other = dict(identity(G), dim_s=9088)
    with pytest.raises(ValueError, match="another model"):
        dirs.check_generator(other)
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a stylejax directions file"):
        Directions.load(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="single class|one class|class"):
        constant = Labels(["c"], np.arange(len(codes)), np.zeros((len(codes), 1)))
        fit_directions(codes, constant, "z", config=FitConfig(threshold=1.0))
    with pytest.raises(ValueError, match="sparsity"):
        fit_directions(codes, labels, "z", config=FitConfig(sparsity=0.1))
