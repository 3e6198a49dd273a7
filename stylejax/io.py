"""Atomic file writes: a temporary file in the destination's folder, then a rename.

A reader never sees a half-written file, and an interrupted or failed write
leaves the previous version (or nothing) in place, plus no temporary file.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; on success it replaces `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results should be as readable as any new file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2)


def write_text(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def write_npz(path: str | Path, **arrays) -> None:
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def check_settings(path: str | Path, settings: dict, what: str) -> bool:
    """A results folder holds one setting's results. If the JSON file `path`
    exists, every key of `settings` must match it (else a ValueError naming the
    keys that differ); returns whether it existed. Writes nothing."""
    path = Path(path)
    if not path.exists():
        return False
    old = json.loads(path.read_text())
    diff = sorted(k for k in settings if old.get(k) != settings[k])
    if diff:
        raise ValueError(f"{path.parent} holds {what} made with other settings (they differ in {diff}); "
                         "use another --out")
    return True
