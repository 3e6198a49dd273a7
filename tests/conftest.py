import jax
import pytest

from fixture_paths import fixture_dir

# Fail on implicit dtype promotion: it hides float64/float16 leaks in the maths.
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def fixtures():
    """fixtures('stylegan2-ada/tiny') -> Path, skipping when it is unavailable."""

    def get(rel: str):
        path = fixture_dir(rel)
        if path is None:
            pytest.skip(f"fixture {rel} not available (needs ../shared/fixtures)")
        return path

    return get
