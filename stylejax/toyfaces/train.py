"""Train a StyleGAN2 on procedurally rendered toy faces, resumably.

    stylejax toyfaces train --out runs/toyfaces --minutes 60

Reals are rendered on the fly (infinite data). The run folder receives
`log.txt`, `samples/` (reals.png and G_ema grids) and `checkpoints/`; a
rerun with the same folder resumes from the newest checkpoint and refuses a
different TrainConfig.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from stylejax.images import grid, save_png, to_uint8
from stylejax.toyfaces import snapshot
from stylejax.toyfaces.snapshot import Progress
from stylejax.toyfaces.training import TrainConfig, Trainer, TrainState, real_images

__all__ = ["TrainConfig", "add_arguments", "run", "sample_grid", "train"]

GRID_SIDE = 8


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last checkpoint is left as it was."""


def sample_grid(trainer: Trainer, state: TrainState, seed: int = 0) -> np.ndarray:
    """uint8 grid of GRID_SIDE^2 G_ema samples (psi 1, constant noise) for fixed latents."""
    z = jax.random.normal(jax.random.key(seed), (GRID_SIDE**2, trainer.config.latent_dim))
    images = trainer.generator(state, ema=True)(z)
    return grid(to_uint8(images), ncol=GRID_SIDE)


def _logger(path: Path) -> Callable[[str], None]:
    def log(line: str) -> None:
        stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"
        print(stamped, flush=True)
        with path.open("a") as f:
            f.write(stamped + "\n")

    return log


def train(
    config: TrainConfig = TrainConfig(),
    out_dir: str | Path = "runs/toyfaces",
    max_minutes: float | None = None,
    max_kimg: float | None = None,
    *,
    checkpoint_minutes: float = 4.0,
    sample_minutes: float = 5.0,
    log_seconds: float = 60.0,
    keep: int = 2,
) -> tuple[Trainer, TrainState, Progress]:
    """Train (or resume) in `out_dir` until max_minutes of this call or max_kimg in total.

    Returns the trainer, the final state and the progress, after a final checkpoint.
    """
    if max_minutes is None and max_kimg is None:
        raise ValueError("give max_minutes or max_kimg (training is otherwise endless)")
    out = Path(out_dir)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    ckpt_root = out / "checkpoints"
    log = _logger(out / "log.txt")
    trainer = Trainer(config)
    last = snapshot.latest(ckpt_root)
    if last is None:
        state, progress = trainer.init(), Progress()
        log(f"new run: {dataclasses.asdict(config)}")
    else:
        state, progress = snapshot.load(last, trainer)
        log(f"resumed from {last.name}: step {progress.step}, {progress.images_seen / 1000:.1f} kimg")
    if not (out / "samples" / "reals.png").exists():
        save_png(out / "samples" / "reals.png", grid(to_uint8(real_images(config, 0, GRID_SIDE**2)), GRID_SIDE))

    start = time.monotonic()
    trained_before = progress.train_seconds
    deadline = None if max_minutes is None else start + 60 * max_minutes
    kimg_limit = None if max_kimg is None else max_kimg * 1000
    base_key = jax.random.key(config.seed)
    next_log = next_sample = next_ckpt = start
    next_sample += 60 * sample_minutes
    next_ckpt += 60 * checkpoint_minutes
    window = {"t": start, "steps": 0, "stats": []}
    pending = None

    def checkpoint():
        nonlocal progress
        if snapshot.latest(ckpt_root) == ckpt_root / f"ckpt-{progress.step:08d}":
            return
        progress = dataclasses.replace(progress, train_seconds=trained_before + time.monotonic() - start)
        path = snapshot.save(ckpt_root, config, state, progress, keep=keep)
        log(f"checkpoint {path.name}")

    def samples():
        name = f"fakes{progress.images_seen // 1000:06d}.png"
        save_png(out / "samples" / name, sample_grid(trainer, state))

    try:
        while (deadline is None or time.monotonic() < deadline) and (
            kimg_limit is None or progress.images_seen < kimg_limit
        ):
            step = progress.step
            reals = jnp.asarray(real_images(config, step))
            kd, kg = jax.random.split(jax.random.fold_in(base_key, step))
            state, stats = trainer.d_step(state, reals, kd)
            if step % config.r1_interval == 0:
                state, r1 = trainer.d_reg_step(state, reals)
                stats = {**stats, **r1}
            beta = jnp.float32(config.ema_beta(progress.images_seen))
            state, g_stats = trainer.g_step(state, kg, beta)
            # Wait for the previous step only: the host renders the next reals while this
            # one computes, but never runs further ahead (timings and deadlines stay true).
            jax.block_until_ready(pending)
            pending = g_stats
            window["stats"].append({**stats, **g_stats})
            window["steps"] += 1
            progress = dataclasses.replace(progress, step=step + 1, images_seen=progress.images_seen + config.batch)

            now = time.monotonic()
            if now >= next_log:
                _log_window(log, window, progress, config, now)
                window = {"t": time.monotonic(), "steps": 0, "stats": []}
                next_log = now + log_seconds
            if now >= next_sample:
                samples()
                next_sample = now + 60 * sample_minutes
            if now >= next_ckpt:
                checkpoint()
                next_ckpt = time.monotonic() + 60 * checkpoint_minutes
    except KeyboardInterrupt:
        log("interrupted: writing a checkpoint")
        checkpoint()
        raise
    if window["steps"]:
        _log_window(log, window, progress, config, time.monotonic())
    samples()
    checkpoint()
    log(f"done: {progress.images_seen / 1000:.1f} kimg, {progress.train_seconds / 60:.1f} min of training in total")
    return trainer, state, progress


def _log_window(log, window, progress: Progress, config: TrainConfig, now: float) -> None:
    stats = jax.device_get(window["stats"])
    means = {}
    for name in sorted({k for s in stats for k in s}):
        values = [float(s[name]) for s in stats if name in s]
        means[name] = float(np.mean(values))
    if not all(np.isfinite(v) for v in means.values()):
        raise TrainingDiverged(f"non-finite losses at step {progress.step}: {means}")
    seconds = max(now - window["t"], 1e-9)
    it_s = window["steps"] / seconds
    log(
        f"kimg {progress.images_seen / 1000:8.2f}  step {progress.step:7d}  "
        f"it/s {it_s:5.2f}  img/s {it_s * config.batch:6.1f}  "
        + "  ".join(f"{k} {v:.4f}" for k, v in means.items())
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `stylejax toyfaces train`."""
    default = TrainConfig()
    parser.add_argument("--out", required=True, help="run folder (log, samples, checkpoints); resumed if present")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this many minutes of this call")
    parser.add_argument("--kimg", type=float, default=None, help="stop at this many thousand images in total")
    parser.add_argument("--checkpoint-minutes", type=float, default=4.0)
    parser.add_argument("--sample-minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument("--batch", type=int, default=default.batch)
    parser.add_argument("--gamma", type=float, default=default.r1_gamma, help="R1 weight")
    parser.add_argument("--resolution", type=int, default=default.resolution)


def run(args: argparse.Namespace) -> None:
    if args.minutes is None and args.kimg is None:
        raise ValueError("give --minutes or --kimg")
    config = TrainConfig(seed=args.seed, batch=args.batch, r1_gamma=args.gamma, resolution=args.resolution)
    train(config, args.out, max_minutes=args.minutes, max_kimg=args.kimg,
          checkpoint_minutes=args.checkpoint_minutes, sample_minutes=args.sample_minutes)
