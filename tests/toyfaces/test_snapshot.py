"""Training checkpoints: exact resume, refusal of another config, crash safety."""

import dataclasses

import jax
import numpy as np
import pytest

from stylejax.toyfaces import snapshot
from stylejax.toyfaces.snapshot import Progress, SnapshotError
from stylejax.toyfaces.training import Trainer

from test_training import TINY, run


@pytest.fixture(scope="module")
def trainer():
    return Trainer(TINY)


def assert_same(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b) and len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resume_is_exact(trainer, tmp_path):
    state, _ = run(trainer, trainer.init(), 2)
    snapshot.save(tmp_path, TINY, state, Progress(step=2, images_seen=8, train_seconds=1.5))
    straight, _ = run(trainer, state, 3, start=2)

    restored, progress = snapshot.load(snapshot.latest(tmp_path), trainer)
    assert progress == Progress(step=2, images_seen=8, train_seconds=1.5)
    assert_same(restored, state)
    resumed, _ = run(trainer, restored, 3, start=progress.step)
    assert_same(resumed, straight)


def test_other_config_is_refused(trainer, tmp_path):
    state = trainer.init()
    snapshot.save(tmp_path, TINY, state, Progress())
    other = Trainer(dataclasses.replace(TINY, r1_gamma=TINY.r1_gamma * 2))
    with pytest.raises(SnapshotError, match=r"different config.*r1_gamma"):
        snapshot.load(snapshot.latest(tmp_path), other)
    assert snapshot.read_config(snapshot.latest(tmp_path)) == TINY


def test_keeps_newest_and_survives_a_failed_write(trainer, tmp_path, monkeypatch):
    state = trainer.init()
    for step in (1, 2, 3):
        snapshot.save(tmp_path, TINY, state, Progress(step=step), keep=2)
    assert [p.name for p in snapshot.list_checkpoints(tmp_path)] == ["ckpt-00000002", "ckpt-00000003"]

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(snapshot.np, "savez", crash)
    with pytest.raises(OSError, match="simulated"):
        snapshot.save(tmp_path, TINY, state, Progress(step=4))
    monkeypatch.undo()
    # Nothing half-written is left behind and the newest good checkpoint still loads.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00000002", "ckpt-00000003"]
    restored, progress = snapshot.load(snapshot.latest(tmp_path), trainer)
    assert progress.step == 3
    assert_same(restored, state)


def test_damaged_state_file_is_reported(trainer, tmp_path):
    path = snapshot.save(tmp_path, TINY, trainer.init(), Progress(step=1))
    (path / snapshot.STATE_FILE).write_bytes(b"not a zip")
    with pytest.raises(SnapshotError, match="damaged"):
        snapshot.load(path, trainer)


def test_non_finite_state_is_not_saved(trainer, tmp_path):
    state = trainer.init()
    snapshot.save(tmp_path, TINY, state, Progress(step=1))
    broken = state._replace(D=jax.tree.map(lambda a: a * np.float32(np.nan), state.D))
    with pytest.raises(SnapshotError, match="non-finite"):
        snapshot.save(tmp_path, TINY, broken, Progress(step=2))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-00000001"]
