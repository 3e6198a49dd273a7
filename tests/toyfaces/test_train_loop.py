"""The training loop: outputs, resume across calls, refusal of a changed config."""

import dataclasses

import pytest

from stylejax.toyfaces import snapshot
from stylejax.toyfaces.train import add_arguments, train

from test_training import TINY


def test_train_writes_outputs_and_resumes(tmp_path):
    _, _, progress = train(TINY, tmp_path, max_kimg=0.012, log_seconds=0)
    assert progress.step == 3 and progress.images_seen == 12
    assert (tmp_path / "samples" / "reals.png").is_file()
    assert (tmp_path / "samples" / "fakes000000.png").is_file()
    log = (tmp_path / "log.txt").read_text()
    assert "new run" in log and "it/s" in log and "checkpoint ckpt-00000003" in log
    assert snapshot.latest(tmp_path / "checkpoints").name == "ckpt-00000003"

    _, _, progress = train(TINY, tmp_path, max_kimg=0.02)
    assert progress.step == 5
    assert "resumed from ckpt-00000003" in (tmp_path / "log.txt").read_text()

    with pytest.raises(snapshot.SnapshotError, match="different config"):
        train(dataclasses.replace(TINY, batch=8), tmp_path, max_kimg=0.04)


def test_needs_a_limit_and_parses_arguments(tmp_path):
    import argparse

    with pytest.raises(ValueError, match="max_minutes or max_kimg"):
        train(TINY, tmp_path)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--out", "x", "--minutes", "60"])
    assert args.minutes == 60 and args.kimg is None and args.out == "x"
