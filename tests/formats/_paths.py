"""Fixture files for the format tests, found through the suite's shared lookup (tests/fixture_paths.py)."""

from pathlib import Path

import pytest

from fixture_paths import fixture_dir


def fixture(*parts: str) -> Path:
    """Path of a fixture file (e.g. 'stylegan2-ada', 'tiny', 'weights.npz'); skips the test if absent."""
    folder = fixture_dir("/".join(parts[:-1]))
    if folder is None or not (folder / parts[-1]).exists():
        pytest.skip(f'fixture {"/".join(parts)} not available')
    return folder / parts[-1]
