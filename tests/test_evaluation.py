"""The evaluation pipeline on the tiny fixture model with a synthetic regional scorer."""

import jax.numpy as jnp
import numpy as np

from parity import load
from stylejax.directions import FitConfig
from stylejax.evaluation import EvalConfig, evaluate
from stylejax.intervention import InterventionConfig


def test_evaluation_runs_and_reports_every_method():
    from fixture_paths import fixture_dir

    G = load(lambda rel: fixture_dir(rel), "tiny")[0]
    mask = np.zeros((32, 32), np.float32)
    mask[18:28, 8:24] = 1
    # A "mouth redness" attribute: the scorer looks only inside the region.
    scorer = lambda img: jnp.stack([img[:, 18:28, 8:24, 0].mean(axis=(1, 2)), img[:, :8, :, 2].mean(axis=(1, 2))], 1)
    cfg = EvalConfig(n_codes=1000, n_faces=8, batch=8, fit=FitConfig(ratio=0.1, sparsity=0.05),
                     intervention=InterventionConfig(steps=10))
    rows, results = evaluate(G, scorer, ["red", "blue"], {"red": mask}, cfg)
    (row,) = rows
    assert row["attribute"] == "red" and row["nnz"] == 32 and row["s_val_acc"] > 0.8
    for method in ("z", "s", "intervention"):
        assert results["red"][method].images.shape == (8, 32, 32, 3)
        for metric in ("outside_change", "inside_change", "attribute_change", "cos_ds_dsn"):
            assert np.isfinite(row[f"{method}_{metric}"])
    # Directions point towards the attribute: the Z translation raises the score.
    assert row["z_attribute_change"] > 0 and row["s_attribute_change"] > 0
    np.testing.assert_allclose(row["s_cos_ds_dsn"], 1.0, atol=1e-5)
    assert row["intervention_outside_change"] < row["z_outside_change"]
    # The attribute change is the scorer's column for that attribute, edited minus original.
    z = results["red"]["z"]
    want = np.asarray(scorer(jnp.asarray(z.images))[:, 0] - scorer(jnp.asarray(z.original))[:, 0])
    np.testing.assert_allclose(z.metrics["attribute_change"], want, atol=1e-5)


def test_uneven_face_count_compiles_one_step_and_returns_every_face():
    from fixture_paths import fixture_dir
    from stylejax.generator import functional
    from stylejax.intervention import compiled_step
    from stylejax.latents import z_from_seeds

    G = load(lambda rel: fixture_dir(rel), "tiny")[0]
    mask = np.zeros((32, 32), np.float32)
    mask[18:28, 8:24] = 1
    scorer = lambda img: img[:, 18:28, 8:24, :1].mean(axis=(1, 2))
    icfg = InterventionConfig(steps=3, w_reg=0.02)  # a config no other test compiles
    cfg = EvalConfig(n_codes=500, n_faces=7, batch=4, fit=FitConfig(ratio=0.1, sparsity=0.05), intervention=icfg)
    _, results = evaluate(G, scorer, ["red"], {"red": mask}, cfg)
    fn, params = functional(G)
    z = jnp.asarray(z_from_seeds(list(range(7)), G.config.z_dim))
    faces = fn.render(params, fn.styles(params, fn.mapping(params, z, psi=cfg.psi)), noise_mode="const")
    for r in results["red"].values():  # seeds 0-6 in order, the padding face dropped
        np.testing.assert_allclose(r.original, faces, atol=1e-5)
        assert r.images.shape == (7, 32, 32, 3) and r.flagged.shape == (7,)
        assert all(v.shape == (7,) for v in r.metrics.values())
    assert results["red"]["intervention"].loss_history.shape == (3, 7)  # [steps, faces]
    assert compiled_step(functional(G)[0], icfg)._cache_size() == 1  # batches of 4 and 4 (one padded), not 4 and 3
