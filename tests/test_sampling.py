"""Sampling codes: deterministic, chunk-invariant, resumable; labels files."""

import json

import numpy as np
import pytest

from parity import load
from stylejax.labels import Labels, load_labels, score_codes
from stylejax.sampling import Codes, sample_codes


@pytest.fixture(scope="module")
def G():
    from fixture_paths import fixture_dir

    return load(lambda rel: fixture_dir(rel), "tiny")[0]


def test_chunk_invariant_and_deterministic(G, tmp_path):
    sample_codes(G, tmp_path / "a", 50, chunk=7, seed=3)
    sample_codes(G, tmp_path / "b", 50, chunk=13, seed=3)
    sample_codes(G, tmp_path / "c", 50, chunk=50, seed=4)
    a, b, c = Codes(tmp_path / "a"), Codes(tmp_path / "b"), Codes(tmp_path / "c")
    np.testing.assert_array_equal(a.z, b.z)
    np.testing.assert_allclose(a.w, b.w, atol=1e-6)
    np.testing.assert_allclose(a.s, b.s, atol=1e-5)
    assert not np.allclose(a.z, c.z)
    # The stored S codes are the generator's styles of the stored latents.
    s = G.styles(G.truncate(np.asarray(a.w[:5]), 0.7))
    np.testing.assert_allclose(a.s[:5], s, atol=1e-5)
    np.testing.assert_allclose(a.mean, np.mean(a.s, axis=0), atol=1e-5)
    np.testing.assert_allclose(a.std, np.std(a.s, axis=0), atol=1e-5)


def test_resume_after_interruption(G, tmp_path):
    calls = []

    def interrupt_after_two(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample_codes(G, tmp_path / "r", 40, chunk=10, progress=interrupt_after_two)
    assert json.loads((tmp_path / "r" / "progress.json").read_text())["chunks_done"] == 2
    with pytest.raises(ValueError, match="unfinished"):
        Codes(tmp_path / "r")
    resumed = []
    sample_codes(G, tmp_path / "r", 40, chunk=10, progress=lambda d, t: resumed.append(d))
    assert resumed == [30, 40]  # only the missing chunks ran
    sample_codes(G, tmp_path / "full", 40, chunk=10)
    np.testing.assert_array_equal(Codes(tmp_path / "r").s, Codes(tmp_path / "full").s)


def test_other_arguments_refused_and_nothing_lost(G, tmp_path):
    sample_codes(G, tmp_path / "x", 20, chunk=10)
    before = (tmp_path / "x" / "s.npy").read_bytes()
    with pytest.raises(ValueError, match=r"other settings \(they differ in \['psi'\]\)"):
        sample_codes(G, tmp_path / "x", 20, chunk=10, psi=0.5)
    assert (tmp_path / "x" / "s.npy").read_bytes() == before


def test_float16_storage_and_thumbnails(G, tmp_path):
    sample_codes(G, tmp_path / "h", 12, chunk=5, dtype="float16", images=16)
    codes = Codes(tmp_path / "h")
    assert codes.s.dtype == np.float16 and codes.z.dtype == np.float32
    assert sorted(p.name for p in (tmp_path / "h" / "images").iterdir())[:2] == ["0.png", "1.png"]
    assert len(list((tmp_path / "h" / "images").iterdir())) == 12


def test_labels_from_csv(tmp_path):
    (tmp_path / "l.csv").write_text("index,smile,glasses\n0,0.5,true\n2,-1,false\n")
    labels = load_labels(tmp_path / "l.csv", n_codes=3)
    assert labels.names == ["smile", "glasses"] and labels.index.tolist() == [0, 2]
    np.testing.assert_array_equal(labels.column("glasses"), [1.0, 0.0])
    with pytest.raises(ValueError, match="unknown attribute 'smyle'"):
        labels.column("smyle")
    with pytest.raises(ValueError, match="only 2 codes"):
        load_labels(tmp_path / "l.csv", n_codes=2)


@pytest.mark.parametrize("text, match", [
    ("index,a\n0,nan\n", "NaN or inf"),
    ("index,a\n0,1,2\n", "fields"),
    ("index,a\n0,x\n", "not numbers"),
    ("index,a\n0,1\n0,2\n", "twice"),
    ("index,a\n", "at least one row"),
])
def test_bad_csv(tmp_path, text, match):
    (tmp_path / "l.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_labels(tmp_path / "l.csv", n_codes=5)


def test_labels_from_npy_must_match_codes(tmp_path):
    np.save(tmp_path / "l.npy", np.zeros((4, 2)))
    assert load_labels(tmp_path / "l.npy", 4, ["a", "b"]).names == ["a", "b"]
    with pytest.raises(ValueError, match="must have 5 rows"):
        load_labels(tmp_path / "l.npy", 5)


def test_score_codes_with_a_jax_scorer(G, tmp_path):
    sample_codes(G, tmp_path / "c", 10, chunk=10)
    codes = Codes(tmp_path / "c")
    labels = score_codes(G, codes.s, lambda img: img.mean(axis=(1, 2)), ["r", "g", "b"], batch=4)
    assert isinstance(labels, Labels) and labels.scores.shape == (10, 3)
    want = np.asarray(G.render(np.asarray(codes.s[:4]))).mean(axis=(1, 2))
    np.testing.assert_allclose(labels.scores[:4], want, atol=1e-5)
