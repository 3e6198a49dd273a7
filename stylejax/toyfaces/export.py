"""Ship a trained run as the bundled toyfaces model (see stylejax.toyfaces.bundle).

    stylejax toyfaces export --run runs/toyfaces --classifier runs/classifier/v1 \\
        --out stylejax/models/toyfaces --samples docs/toyfaces_samples.png

The whole bundle is assembled in a temporary folder and renamed into place, so
an existing bundle is replaced only by a complete new one.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import jax
import numpy as np

from stylejax import checkpoint
from stylejax.images import grid, save_png, to_uint8, upscale
from stylejax.toyfaces import snapshot
from stylejax.toyfaces.bundle import CLASSIFIER_DIR, REGIONS_DIR
from stylejax.toyfaces.render import mean_region_masks
from stylejax.toyfaces.training import Trainer

RECIPE = (
    "StyleGAN2 (config F without path-length regularisation) trained from scratch by "
    "stylejax.toyfaces.train on faces rendered on the fly by stylejax.toyfaces.render"
)


def load_run(run_dir: str | Path, name: str | None = None):
    """(Trainer, state, progress) of checkpoint `name` (e.g. "ckpt-00009162") of a training
    run folder; None: the newest."""
    root = Path(run_dir) / "checkpoints"
    kept = snapshot.list_checkpoints(root)
    chosen = kept[-1] if kept and name is None else next((p for p in kept if p.name == name), None)
    if chosen is None:
        raise FileNotFoundError(f"no training checkpoint {name or ''} under {root} "
                                f"(kept: {', '.join(p.name for p in kept) or 'none'})")
    trainer = Trainer(snapshot.read_config(chosen))
    state, progress = snapshot.load(chosen, trainer)
    return trainer, state, progress


def export_bundle(run_dir: str | Path, classifier_dir: str | Path, out: str | Path,
                  mask_faces: int = 2000, force: bool = False, checkpoint_name: str | None = None) -> Path:
    """Write G_ema of a checkpoint of the run (default: the newest), the classifier and the
    region masks into `out`."""
    trainer, state, progress = load_run(run_dir, checkpoint_name)
    G = trainer.generator(state, ema=True)
    provenance = {
        "recipe": RECIPE,
        "train_config": dataclasses.asdict(trainer.config),
        "kimg": round(progress.images_seen / 1000, 2),
        "steps": progress.step,
        "train_wall_minutes": round(progress.train_seconds / 60, 1),
        "hardware": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "date": time.strftime("%Y-%m-%d"),
        "network": "G_ema",
    }
    masks = mean_region_masks(trainer.config.resolution, n=mask_faces, seed=0)
    with checkpoint.atomic_directory(out, force=force) as tmp:
        checkpoint.save(tmp, G, provenance, force=True)
        shutil.copytree(classifier_dir, tmp / CLASSIFIER_DIR)
        (tmp / REGIONS_DIR).mkdir()
        for name, mask in masks.items():
            np.save(tmp / REGIONS_DIR / f"{name}.npy", mask.astype(np.float32))
    return Path(out)


def sample_sheet(G, path: str | Path, side: int = 8, scale: int = 2, seed: int = 0) -> None:
    """A side x side grid of psi-1 samples, each upscaled `scale` x (nearest), as a PNG."""
    z = jax.random.normal(jax.random.key(seed), (side * side, G.config.z_dim))
    save_png(path, upscale(grid(to_uint8(G(z)), ncol=side), scale))


def add_arguments(ap) -> None:
    """The options of `stylejax toyfaces export`."""
    ap.add_argument("--run", required=True, help="training run folder")
    ap.add_argument("--checkpoint", help="which of the run's checkpoints, e.g. ckpt-00009162 (default: the newest)")
    ap.add_argument("--classifier", required=True, help="classifier folder (stylejax.toyfaces.classifier)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples", help="also write a sample sheet PNG here")
    ap.add_argument("--force", action="store_true", help="replace an existing bundle")


def run(args) -> None:
    out = export_bundle(args.run, args.classifier, args.out, force=args.force, checkpoint_name=args.checkpoint)
    print(f"exported {out}")
    if args.samples:
        sample_sheet(checkpoint.load(out), args.samples)
        print(f"wrote {args.samples}")
