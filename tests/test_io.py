"""Atomic writes: all or nothing, no temporary files left, ordinary permissions."""

import os
import stat

import pytest

from stylejax.io import atomic_write, write_json, write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_get_the_umask_permissions(tmp_path, mask, mode):
    # Not mkstemp's 0600: results are meant to be shared like any file the user creates.
    old = os.umask(mask)
    try:
        write_json(tmp_path / "m.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == mode
