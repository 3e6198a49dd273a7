"""Conversion of every fixture format into a checkpoint that renders the reference images."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import stylejax as sj
from parity import IMG_ATOL, WS_ATOL, nhwc
from stylejax.checkpoint import CheckpointError
from stylejax.convert import convert
from stylejax.official import load_official

ADA_FILES = ["network-snapshot.pkl", "network-snapshot-legacy.pkl", "network-tf.pkl", "weights.npz"]


@pytest.mark.parametrize("name", ADA_FILES)
def test_converted_checkpoint_renders_reference(fixtures, tmp_path, name):
    src = fixtures("stylegan2-ada/tiny") / name
    prov = convert(src, tmp_path / "ckpt")
    assert prov["source_file"] == name and len(prov["source_sha256"]) == 64
    G = sj.load(tmp_path / "ckpt")
    ref = np.load(fixtures("stylegan2-ada/tiny") / "reference.npz")
    z = jnp.asarray(ref["z"])
    np.testing.assert_allclose(G.mapping(z), ref["ws"], atol=WS_ATOL, rtol=0)
    np.testing.assert_allclose(G(z), nhwc(ref["img_const"]), atol=IMG_ATOL["tiny"], rtol=0)
    np.testing.assert_allclose(G(z, psi=0.7), nhwc(ref["img_const_psi0.7"]), atol=IMG_ATOL["tiny"], rtol=0)
    np.testing.assert_allclose(G(z, noise_mode="none"), nhwc(ref["img_none"]), atol=IMG_ATOL["tiny"], rtol=0)


def test_rosinality_checkpoint_renders_its_reference(fixtures, tmp_path):
    convert(fixtures("rosinality/tiny") / "checkpoint.pt", tmp_path / "ckpt")
    G = sj.load(tmp_path / "ckpt")
    ref = np.load(fixtures("rosinality/tiny") / "reference.npz")
    z = jnp.asarray(ref["z"])
    np.testing.assert_allclose(G.mapping(z)[:, 0], ref["w"], atol=WS_ATOL, rtol=0)
    s = G.space.unflatten(G.styles(G.mapping(z)))
    ros_names = {"b4.conv1": "conv1", "b4.torgb": "to_rgb1", "b8.conv0": "convs.0", "b32.torgb": "to_rgbs.2"}
    for ours, theirs in ros_names.items():
        np.testing.assert_allclose(s[ours], ref[f"styles/{theirs}"], atol=WS_ATOL, rtol=0)
    np.testing.assert_allclose(G(z), nhwc(ref["img_fixed_noise"]), atol=1e-4, rtol=0)
    np.testing.assert_allclose(G(z, psi=0.7), nhwc(ref["img_trunc0.7_fixed_noise"]), atol=1e-4, rtol=0)
    np.testing.assert_allclose(G(z, noise_mode="none"), nhwc(ref["img_zero_noise"]), atol=1e-4, rtol=0)
    mixed = sj.mix_styles(G.mapping(z), G.mapping(jnp.asarray(ref["mix_z2"])), 3)
    np.testing.assert_allclose(G.render(G.styles(mixed)), nhwc(ref["mix_img_inject3"]), atol=1e-4, rtol=0)


def test_save_load_round_trip_is_bit_exact(fixtures, tmp_path):
    G = load_official(fixtures("stylegan2-ada/cond") / "weights.npz")
    sj.save(tmp_path / "c", G, {"why": "test"})
    H = sj.load(tmp_path / "c")
    assert H.config == G.config
    a, b = nnx.to_pure_dict(nnx.state(G)), nnx.to_pure_dict(nnx.state(H))
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    assert sj.checkpoint.read_metadata(tmp_path / "c")["provenance"] == {"why": "test"}


def test_existing_destination_is_kept(fixtures, tmp_path):
    src = fixtures("stylegan2-ada/tiny") / "network-snapshot.pkl"
    dst = tmp_path / "ckpt"
    dst.mkdir()
    (dst / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        convert(src, dst)
    assert (dst / "precious.txt").read_text() == "keep me"
    convert(src, dst, force=True)
    assert not (dst / "precious.txt").exists() and sj.load(dst).config.img_resolution == 32


def test_failed_conversion_leaves_nothing(fixtures, tmp_path, monkeypatch):
    import orbax.checkpoint as ocp

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ocp.StandardCheckpointer, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        convert(fixtures("stylegan2-ada/tiny") / "network-snapshot.pkl", tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a stylejax checkpoint"):
        sj.load(tmp_path)
    (tmp_path / "stylejax.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        sj.load(tmp_path)


def test_damaged_parameters(fixtures, tmp_path):
    convert(fixtures("stylegan2-ada/tiny") / "network-snapshot.pkl", tmp_path / "c")
    for f in (tmp_path / "c" / "params").rglob("*"):
        if f.is_file() and f.stat().st_size > 1000:
            f.write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError, match="could not be restored"):
        sj.load(tmp_path / "c")


class _Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "stylejax.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_cli_refuses_malicious_pickle_in_one_line(tmp_path):
    sentinel = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": _Evil(f"touch {sentinel}")}, protocol=4))
    out = _cli("convert", evil, tmp_path / "ckpt")
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0
    assert "posix.system" in out.stderr or "os.system" in out.stderr
    assert not sentinel.exists() and not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("content, match", [
    (b"", "empty"), (b"hello world, not weights", "pickle"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "pickle"),
])
def test_cli_bad_files(tmp_path, content, match):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(content)
    out = _cli("convert", bad, tmp_path / "ckpt")
    assert out.returncode == 1 and out.stderr.startswith("stylejax: error:")
    assert match in out.stderr.lower(), out.stderr
    assert not (tmp_path / "ckpt").exists()


def test_cli_truncated_pickle(fixtures, tmp_path):
    data = (fixtures("stylegan2-ada/tiny") / "network-snapshot.pkl").read_bytes()
    bad = tmp_path / "cut.pkl"
    bad.write_bytes(data[: len(data) // 2])
    out = _cli("convert", bad, tmp_path / "ckpt")
    assert out.returncode == 1 and "trunc" in out.stderr.lower(), out.stderr
    assert not (tmp_path / "ckpt").exists()


def test_convert_script_is_the_same_command(fixtures, tmp_path):
    script = Path(__file__).resolve().parents[1] / "convert" / "convert_weights.py"
    src = fixtures("rosinality/tiny") / "checkpoint.pt"
    out = subprocess.run([sys.executable, script, src, tmp_path / "ckpt"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert sj.checkpoint.read_metadata(tmp_path / "ckpt")["provenance"]["source_format"] == "rosinality"
