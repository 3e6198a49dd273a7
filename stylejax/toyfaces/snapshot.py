"""Training checkpoints: the whole `TrainState` plus progress, written atomically.

Layout under a run's `checkpoints/` folder:

    ckpt-00001234/state.npz    every state array, keyed by its pytree path
    ckpt-00001234/train.json   {"format", "version", "config", "step", "images_seen", "train_seconds"}

Each checkpoint is written into a temporary folder and renamed into place, so a
crash mid-write leaves only a hidden temporary folder; the previous checkpoints
stay complete. All randomness of a run derives from (config.seed, step), so the
step counter is the whole RNG state.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import jax
import numpy as np

from stylejax.checkpoint import atomic_directory
from stylejax.toyfaces.training import TrainConfig, Trainer, TrainState

FORMAT = "stylejax-toyfaces-train"
VERSION = 1
STATE_FILE = "state.npz"
META_FILE = "train.json"
_NAME = re.compile(r"^ckpt-(\d{8})$")


class SnapshotError(ValueError):
    """A training checkpoint that is damaged or belongs to a different configuration."""


@dataclasses.dataclass(frozen=True)
class Progress:
    step: int = 0
    images_seen: int = 0
    train_seconds: float = 0.0  # wall time spent in training loops, over all runs


def _flat(state) -> tuple[list[str], list, jax.tree_util.PyTreeDef]:
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    return [jax.tree_util.keystr(p) for p, _ in leaves], [v for _, v in leaves], treedef


def save(root: str | Path, config: TrainConfig, state: TrainState, progress: Progress, keep: int = 2) -> Path:
    """Write `root/ckpt-<step>` atomically, then delete all but the `keep` newest.

    SnapshotError if any array holds NaN or inf (nothing is written then).
    """
    root = Path(root)
    keys, values, _ = _flat(state)
    values = jax.device_get(values)
    bad = [k for k, v in zip(keys, values) if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v))]
    if bad:
        # A diverged state must never displace the last good checkpoint.
        raise SnapshotError(f"refusing to checkpoint non-finite values in {bad[:3]} ({len(bad)} arrays)")
    meta = {"format": FORMAT, "version": VERSION, "config": dataclasses.asdict(config),
            **dataclasses.asdict(progress)}
    path = root / f"ckpt-{progress.step:08d}"
    with atomic_directory(path, force=True) as tmp:
        np.savez(tmp / STATE_FILE, **dict(zip(keys, values)))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under root, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _NAME.match(p.name) and (p / META_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def _meta(path: Path) -> dict:
    try:
        meta = json.loads((path / META_FILE).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SnapshotError(f"{path}: unreadable {META_FILE} ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise SnapshotError(f"{path}: not a {FORMAT} v{VERSION} checkpoint")
    return meta


def read_config(path: str | Path) -> TrainConfig:
    """The TrainConfig a checkpoint was written with."""
    path = Path(path)
    try:
        return TrainConfig(**_meta(path)["config"])
    except TypeError as e:
        raise SnapshotError(f"{path}: config not understood ({e})") from None


def load(path: str | Path, trainer: Trainer) -> tuple[TrainState, Progress]:
    """Restore a checkpoint written with the trainer's config; refuse any other config."""
    path = Path(path)
    meta = _meta(path)
    stored = meta["config"]
    current = dataclasses.asdict(trainer.config)
    # JSON turns tuples into lists; compare through the same encoding.
    current = json.loads(json.dumps(current))
    if stored != current:
        diff = {k: (stored.get(k), current.get(k)) for k in sorted(set(stored) | set(current))
                if stored.get(k) != current.get(k)}
        raise SnapshotError(
            f"{path} was trained with a different config (field: checkpoint vs requested): {diff}; "
            "use a new output folder or the original settings"
        )
    keys, template, treedef = _flat(jax.eval_shape(trainer.init))
    try:
        with np.load(path / STATE_FILE) as npz:
            values = [npz[k] for k in keys]
    except Exception as e:  # zip, key and pickle errors all mean a damaged file
        raise SnapshotError(f"{path}: {STATE_FILE} is damaged ({type(e).__name__}: {e})") from None
    for k, v, t in zip(keys, values, template):
        if v.shape != t.shape or v.dtype != t.dtype:
            raise SnapshotError(f"{path}: {k} has {v.shape} {v.dtype}, expected {t.shape} {t.dtype}")
    progress = Progress(**{f.name: meta[f.name] for f in dataclasses.fields(Progress)})
    return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(v) for v in values]), progress
