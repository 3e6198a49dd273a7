"""The batch edit job and the CLI around it, on a converted fixture generator."""

import numpy as np
import pytest
from PIL import Image

import stylejax as sj
from stylejax.cli import main
from stylejax.convert import convert
from stylejax.directions import Directions
from stylejax.edit_job import EditJob, EditSpec, faces_from_seeds
from stylejax.intervention import InterventionConfig

EDIT = ["--steps", "3", "--batch", "2", "--psi", "0.7"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from fixture_paths import fixture_dir

    root = tmp_path_factory.mktemp("edit")
    ckpt = root / "ckpt"
    convert(fixture_dir("stylegan2-ada/tiny") / "network-snapshot.pkl", ckpt)
    assert main(["sample", "--checkpoint", str(ckpt), "--n", "600", "--chunk", "300", "--out", str(root / "codes")]) == 0
    z = np.load(root / "codes" / "z.npy")
    rng = np.random.default_rng(0)
    scores = z @ rng.standard_normal(z.shape[1])
    (root / "labels.csv").write_text("index,smile\n" + "".join(f"{i},{v}\n" for i, v in enumerate(scores)))
    for space in ("s", "z", "w"):
        args = ["fit-directions", "--codes", str(root / "codes"), "--labels", str(root / "labels.csv"),
                "--space", space, "--ratio", "0.2", "--out", str(root / "dirs.npz")]
        assert main(args + (["--sparsity", "0.05"] if space == "s" else [])) == 0
    mask = np.zeros((32, 32), np.uint8)
    mask[18:28, 8:24] = 255
    Image.fromarray(mask).save(root / "mouth.png")
    return root, ckpt


def edit(world, out, *extra):
    root, ckpt = world
    return main(["edit", "--checkpoint", str(ckpt), "--directions", str(root / "dirs.npz"),
                 "--attribute", "smile", "--mask", str(root / "mouth.png"), "--out", str(out), *EDIT, *extra])


def test_edit_writes_everything_and_resumes(world, tmp_path, capsys):
    out = tmp_path / "res"
    assert edit(world, out, "--seeds", "0-4") == 0
    for seed in range(5):
        for suffix in ("_original.png", "_edited.png", ".npz"):
            assert (out / f"seed{seed:05d}{suffix}").exists()
    assert (out / "grid.png").exists() and (out / "summary.json").exists()
    with np.load(out / "seed00003.npz") as r:
        assert r["lam"].shape == r["s"].shape == r["s_edit"].shape == (640,)
        assert r["loss_history"].shape == (3,) and not bool(r["flagged"])
        assert {"metric_outside_change", "metric_inside_change", "metric_cos_ds_dsn"} <= set(r.files)
    stamp = (out / "seed00000.npz").stat().st_mtime_ns
    capsys.readouterr()
    assert edit(world, out, "--seeds", "0-6") == 0
    assert "5 faces already done" in capsys.readouterr().err
    assert (out / "seed00000.npz").stat().st_mtime_ns == stamp  # not redone
    assert (out / "seed00006.npz").exists()
    assert not list(out.glob(".*"))  # no temporary leftovers


def test_interrupted_job_loses_only_the_batch_in_flight(world, tmp_path):
    root, ckpt = world
    G = sj.load(ckpt)
    job = lambda: EditJob(G, Directions.load(root / "dirs.npz"), EditSpec("smile"), faces_from_seeds(list(range(6)), 64),
                          root / "mouth.png", tmp_path / "r", InterventionConfig(steps=2), batch=2)

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job().run(progress=stop)
    assert sorted(p.name for p in (tmp_path / "r").glob("*.npz")) == ["seed00000.npz", "seed00001.npz"]
    assert len(job().todo) == 4
    job().run()
    assert len(list((tmp_path / "r").glob("*.npz"))) == 6


def test_latents_and_auto_mask(world, tmp_path):
    root, ckpt = world
    G = sj.load(ckpt)
    ws = np.asarray(G.mapping(np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32), psi=0.7))
    np.save(tmp_path / "wplus.npy", ws)
    args = ["edit", "--checkpoint", str(ckpt), "--directions", str(root / "dirs.npz"), "--attribute", "smile",
            "--latents", str(tmp_path / "wplus.npy"), "--translation", "w", "--mask", "auto",
            "--out", str(tmp_path / "lat"), *EDIT]
    assert main(args) == 0
    with np.load(tmp_path / "lat" / "latent00002.npz") as r:
        assert 0 < r["mask"].mean() < 1
        np.testing.assert_allclose(r["s"], np.asarray(G.styles(ws[2:3]))[0], atol=1e-5)


@pytest.mark.parametrize("change, message", [
    (["--seeds", "0-x"], "cannot parse seeds"),
    (["--seeds", "0-3", "--attribute", "glasses"], "not in the directions file"),
    (["--seeds", "0-3", "--mask", "MASKS/notimage.png"], "not a readable image"),
    (["--seeds", "0-3", "--mask", "MASKS/empty.png"], "empty"),
    (["--seeds", "0-3", "--mask", "MASKS/full.png"], "full"),
    (["--seeds", "0-3", "--directions", "MASKS/other.npz"], "another model"),
    (["--latents", "MASKS/w.npy"], "translation='w'"),
])
def test_bad_input_fails_before_compute(world, tmp_path, capsys, change, message):
    root, _ = world
    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "notimage.png").write_text("hello")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(masks / "empty.png")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(masks / "full.png")
    other = Directions.load(root / "dirs.npz")
    other.generator = dict(other.generator, dim_s=9088)
    other.save(masks / "other.npz")
    np.save(masks / "w.npy", np.zeros((2, 64), np.float32))
    change = [c.replace("MASKS", str(masks)) for c in change]
    capsys.readouterr()
    rc = edit(world, tmp_path / "out", *change)  # later flags override earlier ones
    err = capsys.readouterr().err
    assert rc == 1 and message in err and err.count("\n") == 1, err
    assert not list((tmp_path / "out").glob("*.npz"))


def test_cli_help_lists_every_command(capsys):
    """The parser's own command list (the examples below it name commands too)."""
    for argv, commands in ((["--help"], "{convert,generate,sample,fit-directions,edit,evaluate,toyfaces,demo}"),
                           (["toyfaces", "--help"], "{train,classifier,export,quality}")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        assert commands in capsys.readouterr().out


def test_two_processes_share_the_faces(world, tmp_path):
    """jax.distributed with two local CPU processes of two CPU devices each: each edits its half,
    together all faces (and --cpu-devices must not start a backend before jax.distributed)."""
    import socket
    import subprocess
    import sys

    root, ckpt = world
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "multi"
    cmd = lambda pid: [sys.executable, "-m", "stylejax.cli", "--cpu-devices", "2", "edit", "--checkpoint", str(ckpt),
                       "--directions", str(root / "dirs.npz"), "--attribute", "smile", "--seeds", "0-5",
                       "--mask", str(root / "mouth.png"), "--out", str(out), *EDIT, "--distributed",
                       "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(pid)]
    procs = [subprocess.Popen(cmd(pid), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for pid in (0, 1)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert all("faces to edit on 2 devices" in err for _, err in results), results
    assert sorted(p.name for p in out.glob("*.npz")) == [f"seed{i:05d}.npz" for i in range(6)]


def test_z_arrays_as_faces(world, tmp_path):
    root, ckpt = world
    z = np.random.default_rng(1).standard_normal((2, 64)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    assert edit(world, tmp_path / "zres", "--z", str(tmp_path / "z.npy")) == 0
    with np.load(tmp_path / "zres" / "z00001.npz") as r:
        G = sj.load(ckpt)
        np.testing.assert_allclose(r["s"], np.asarray(G.styles(G.mapping(z[1:], psi=0.7)))[0], atol=1e-5)
    np.save(tmp_path / "bad.npy", z[:, :10])
    assert edit(world, tmp_path / "zbad", "--z", str(tmp_path / "bad.npy")) == 1


def test_restart_with_other_settings_is_refused(world, tmp_path, capsys):
    out = tmp_path / "res"
    assert edit(world, out, "--seeds", "0-1") == 0
    capsys.readouterr()
    assert edit(world, out, "--seeds", "0-1", "--alpha", "5") == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "spec" in err
    assert len(list(out.glob("*.npz"))) == 2


def test_per_face_masks_must_match_the_faces(world, tmp_path, capsys):
    np.save(tmp_path / "masks.npy", np.ones((3, 32, 32), np.float32) * (np.arange(32) < 16))
    assert edit(world, tmp_path / "out", "--seeds", "0-3", "--mask", str(tmp_path / "masks.npy")) == 1
    assert "3 masks for 4 faces" in capsys.readouterr().err


def test_cpu_devices_shard_the_faces_with_one_device_results(world, tmp_path, capsys):
    """`--cpu-devices 2` needs a fresh process (the count is fixed when the backend starts)."""
    import os
    import subprocess
    import sys

    root, ckpt = world
    args = lambda out: ["edit", "--checkpoint", str(ckpt), "--directions", str(root / "dirs.npz"),
                        "--attribute", "smile", "--seeds", "0-3", "--mask", str(root / "mouth.png"),
                        "--out", str(out), *EDIT]
    assert main(args(tmp_path / "one")) == 0
    assert "4 faces to edit on 1 device" in capsys.readouterr().err
    env = dict(os.environ, JAX_PLATFORMS="cpu")  # on a GPU host the flag would not apply to the default backend
    run = subprocess.run([sys.executable, "-m", "stylejax.cli", "--cpu-devices", "2", *args(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "4 faces to edit on 2 devices" in run.stderr
    for seed in range(4):
        with np.load(tmp_path / "one" / f"seed{seed:05d}.npz") as a, np.load(tmp_path / "two" / f"seed{seed:05d}.npz") as b:
            np.testing.assert_allclose(a["lam"], b["lam"], atol=1e-4)
            np.testing.assert_allclose(a["s_edit"], b["s_edit"], atol=1e-4)


def test_cpu_devices_must_be_positive(capsys):
    assert main(["--cpu-devices", "0", "demo"]) == 1
    assert "--cpu-devices must be >= 1" in capsys.readouterr().err
