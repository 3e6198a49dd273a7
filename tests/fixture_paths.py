"""Where the reference fixtures live: the copies in tests/fixtures, else ../shared/fixtures."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = (REPO / "tests" / "fixtures", REPO.parent / "shared" / "fixtures")


def fixture_dir(rel: str) -> Path | None:
    for root in ROOTS:
        if (root / rel).is_dir():
            return root / rel
    return None
