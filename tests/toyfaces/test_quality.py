"""The quality gate's table (on tiny untrained networks: only its mechanics)."""

import numpy as np
import pytest
from flax import nnx

from stylejax.toyfaces.attributes import BINARY_ATTRIBUTES, binary_labels, sample_attributes
from stylejax.toyfaces.classifier import Classifier, ClassifierConfig
from stylejax.toyfaces.quality import QualityRow, QualityTable, quality_table
from stylejax.toyfaces.training import Trainer

from test_training import TINY


def test_quality_table_mechanics():
    trainer = Trainer(TINY)
    G = trainer.generator(trainer.init())
    clf = Classifier(ClassifierConfig(resolution=16, channels=(4, 8), hidden=8), rngs=nnx.Rngs(0))
    table = quality_table(G, clf, n=40, batch=20)
    assert [r.attribute for r in table.rows] == list(BINARY_ATTRIBUTES)
    # The truth column is the renderer's own label rate for the faces it drew (seed 0).
    truth = binary_labels(sample_attributes(np.random.default_rng([0, 3]), 40)).mean(0)
    np.testing.assert_allclose([r.truth for r in table.rows], truth)
    for r in table.rows:
        assert r.gap == pytest.approx(abs(r.generated - r.rendered))
    text = table.format()
    assert "smile" in text and ("PASS" if table.passed else "FAIL") in text
    assert len(table.correlations) == 3 and text.count(" ~ ") == 3
    with pytest.raises(ValueError, match="resolution"):
        quality_table(G, Classifier(ClassifierConfig(resolution=32), rngs=nnx.Rngs(0)), n=4)


def test_gate_tolerance():
    """Generated against rendered (not the true rate), with the 0.15 tolerance."""
    rows = (QualityRow("smile", 0.64, 0.50, 0.40), QualityRow("eyeglasses", 0.36, 0.50, 0.60))  # gaps 0.14
    assert QualityTable(rows, 100, 1.0).passed
    assert not QualityTable(rows + (QualityRow("background", 0.66, 0.50, 0.66),), 100, 1.0).passed  # 0.16


def test_cli_reports_a_missing_model_in_one_line(tmp_path, capsys):
    from stylejax.cli import main

    rc = main(["toyfaces", "quality", "--checkpoint", str(tmp_path / "nothing"), "--classifier", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("stylejax: error:") and err.count("\n") == 1, err


def test_top_correlations_finds_a_planted_pair():
    from stylejax.toyfaces.quality import _top_correlations

    rng = np.random.default_rng(0)
    gen = rng.random((2000, 4)) < 0.5
    gen[:, 3] = gen[:, 1] ^ (rng.random(2000) < 0.1)  # column 3 copies column 1, 10% flipped
    ren = rng.random((2000, 4)) < 0.5
    (a, b, g, r), *rest = _top_correlations(["p", "q", "r", "s"], gen, ren)
    assert (a, b) == ("q", "s") and 0.7 < g < 0.9 and abs(r) < 0.1
    assert len(rest) == 2 and all(abs(x[2]) < 0.1 for x in rest)
