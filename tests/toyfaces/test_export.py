"""Export: the bundle comes from the checkpoint asked for, not always the newest."""

import json

from stylejax.cli import main
from stylejax.toyfaces import bundle
from stylejax.toyfaces.export import export_bundle
from stylejax.toyfaces.train import train

from test_training import TINY


def test_export_takes_the_named_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    train(TINY, run, max_kimg=0.012, log_seconds=0)  # ckpt-00000003
    train(TINY, run, max_kimg=0.02, log_seconds=0)  # ckpt-00000005, the newest
    classifier = bundle.bundle_dir() / bundle.CLASSIFIER_DIR
    provenance = lambda out: json.loads((out / "stylejax.json").read_text())["provenance"]

    export_bundle(run, classifier, tmp_path / "newest", mask_faces=20)
    export_bundle(run, classifier, tmp_path / "older", mask_faces=20, checkpoint_name="ckpt-00000003")
    assert provenance(tmp_path / "newest")["steps"] == 5
    assert provenance(tmp_path / "older")["steps"] == 3

    args = ["toyfaces", "export", "--run", str(run), "--classifier", str(classifier), "--out", str(tmp_path / "x")]
    assert main(args + ["--checkpoint", "ckpt-00000004"]) == 1
    err = capsys.readouterr().err
    assert "no training checkpoint ckpt-00000004" in err and "ckpt-00000003, ckpt-00000005" in err
    assert not (tmp_path / "x").exists()
