"""Fixture location: the repo's copies in tests/fixtures first, then the shared set beside the repo
(which alone holds the larger fixtures, small256 and ffhq-shape)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = [p for p in (REPO / 'tests' / 'fixtures', REPO.parent / 'shared' / 'fixtures') if p.is_dir()]
FIXTURES = ROOTS[0] if ROOTS else REPO / 'tests' / 'fixtures'


def fixture(*parts: str) -> Path:
    """Path of a fixture file (e.g. 'stylegan2-ada', 'tiny', 'weights.npz'); skips the test if absent."""
    for root in ROOTS:
        if (path := root.joinpath(*parts)).exists():
            return path
    pytest.skip(f'fixture {"/".join(parts)} not available')
