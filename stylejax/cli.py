"""The `stylejax` command: thin subcommands over the library.

Every subcommand prints progress, exits 0 on success and, on bad input, prints
one line `stylejax: error: ...` and exits 1 (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys

import traceback
from pathlib import Path

from . import __version__

EXAMPLES = """examples:
  stylejax convert ffhq.pkl ffhq-ckpt/
  stylejax generate --checkpoint toyfaces --seeds 0-15 --psi 0.7 --out faces/
  stylejax sample --checkpoint ffhq-ckpt --n 100000 --psi 0.7 --seed 0 --out codes/
  stylejax fit-directions --codes codes/ --labels labels.csv --space s --sparsity 0.05 --out directions.npz
  stylejax edit --checkpoint ffhq-ckpt --directions directions.npz --attribute smile --seeds 0-255 --mask mouth.png --out results/
  stylejax evaluate --checkpoint toyfaces --out eval/
  stylejax demo
  stylejax toyfaces train --out runs/toyfaces --minutes 60   (rerun to resume)
"""


def _console():
    from rich.console import Console

    return Console(stderr=True)


def cmd_convert(args) -> None:
    from .convert import convert

    prov = convert(args.src, args.dst, network=args.network, force=args.force)
    _console().print(
        f"converted {prov['source_file']} ({prov['source_format']}, {prov['network']}) -> {args.dst}"
    )
    for note in prov["notes"]:
        _console().print(f"  note: {note}")


def cmd_generate(args) -> None:
    import jax.numpy as jnp
    import numpy as np

    from .checkpoint import load
    from .images import grid, save_png, to_uint8
    from .latents import parse_seeds, z_from_seeds

    seeds = parse_seeds(args.seeds)
    G = load(args.checkpoint)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(0, len(seeds), args.batch):
        chunk = seeds[i : i + args.batch]
        img = to_uint8(G(jnp.asarray(z_from_seeds(chunk, G.config.z_dim)), psi=args.psi, noise_mode=args.noise))
        for seed, im in zip(chunk, img):
            save_png(out / f"seed{seed:04d}.png", im)
        images.append(img)
    if args.grid:
        save_png(out / "grid.png", grid(np.concatenate(images), ncol=min(8, len(seeds))))
    _console().print(f"wrote {len(seeds)} images to {out}")


def _progress(description: str):
    """A rich progress bar as a (done, total) callback; use as a context manager."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=_console())
    task = bar.add_task(description, total=None)

    class Callback:
        def __enter__(self):
            bar.start()
            return self

        def __exit__(self, *exc):
            bar.stop()

        def __call__(self, done, total):
            bar.update(task, completed=done, total=total)

    return Callback()


def cmd_sample(args) -> None:
    from .checkpoint import load
    from .sampling import sample_codes

    G = load(args.checkpoint)
    with _progress("sampling") as progress:
        sample_codes(G, args.out, args.n, psi=args.psi, cutoff=args.cutoff, seed=args.seed, chunk=args.chunk,
                     dtype=args.dtype, images=args.images, progress=progress)
    _console().print(f"{args.n} codes (D_S = {G.space.dim}) in {args.out}")


def cmd_fit_directions(args) -> None:
    from .directions import Directions, FitConfig, fit_directions
    from .labels import load_labels
    from .sampling import Codes

    codes = Codes(args.codes)
    names = args.attributes.split(",") if args.attributes else None
    labels = load_labels(args.labels, len(codes), names if args.labels.endswith(".npy") else None)
    attributes = names or labels.names
    for a in attributes:
        labels.column(a)  # unknown names fail here, before any compute
    out = Directions.open_or_new(args.out, codes.meta["generator"])
    table = tuple(float(f) for f in args.sparsity_table.split(",")) if args.sparsity_table else ()
    config = FitConfig(ratio=args.ratio, threshold=args.threshold, sparsity=args.sparsity,
                       sparse_method=args.sparse_method, sparsity_table=table, seed=args.seed)
    _console().print(f"fitting {len(attributes)} attribute(s) in {args.space.upper()} on {len(codes)} codes")
    provenance = {"codes": str(Path(args.codes).absolute()), "labels": str(Path(args.labels).absolute()),
                  "psi": codes.meta.get("psi"), "n_codes": len(codes), "stylejax": __version__,
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    fitted = fit_directions(codes, labels, args.space, attributes, config, provenance)
    for d in fitted:
        out.add(d)
    out.save(args.out)
    from rich.table import Table

    table = Table("attribute", "space", "train acc", "val acc", "dense val acc", "non-zero", "C")
    for d in fitted:
        r = d.report
        table.add_row(d.attribute, d.space, f"{r['train_acc']:.3f}", f"{r['val_acc']:.3f}",
                      f"{r['dense_val_acc']:.3f}", f"{r['nnz']}/{r['dim']}", f"{r['C']:g}")
    _console().print(table)
    for d in fitted:
        for row in d.report.get("sparsity_table", []):
            _console().print(f"{d.attribute}: {row['nnz']} channels ({100 * row['fraction']:g}%): val acc "
                             f"top-k {row['topk']:.3f}, top-k refit {row['topk_refit']:.3f}, L1 {row['l1']:.3f}")
    _console().print(f"saved to {args.out}")


def cmd_edit(args) -> None:
    import jax

    from .checkpoint import load
    from .directions import Directions
    from .edit_job import EditJob, EditSpec, faces_from_latents, faces_from_seeds, faces_from_z
    from .intervention import InterventionConfig
    from .latents import load_latents, load_z, parse_seeds

    if sum(x is not None for x in (args.seeds, args.z, args.latents)) != 1:
        raise ValueError("give exactly one of --seeds, --z and --latents")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    pid, count = 0, 1
    if args.distributed:
        # Without explicit values JAX detects the cluster (SLURM, Cloud TPU, ...).
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
        pid, count = jax.process_index(), jax.process_count()
    G = load(args.checkpoint)
    directions = Directions.load(args.directions)
    if seeds is not None:
        faces = faces_from_seeds(seeds, G.config.z_dim)
    elif args.z is not None:
        faces = faces_from_z(load_z(args.z, G.config.z_dim))
    else:
        faces = faces_from_latents(load_latents(args.latents, G.config.w_dim, G.num_ws))
    spec = EditSpec(args.attribute, alpha=args.alpha, alpha_z=args.alpha_z, translation=args.translation,
                    psi=args.psi)
    weights = _loss_weights(args)
    config = InterventionConfig(steps=args.steps, learning_rate=args.lr, granularity=args.granularity,
                                project=args.project, remat=args.remat, **weights)
    job = EditJob(G, directions, spec, faces, args.mask, args.out, config, batch=args.batch,
                  process_index=pid, process_count=count)
    skipped = len(range(pid, len(faces.keys), count)) - len(job.todo)
    if skipped:
        _console().print(f"resuming: {skipped} faces already done")
    if args.cpu_devices is not None and jax.default_backend() != "cpu":
        _console().print(f"note: --cpu-devices splits the CPU only; this host computes on {jax.default_backend()}")
    devices = jax.local_device_count()
    _console().print(f"{len(job.todo)} faces to edit on {devices} device{'s' if devices > 1 else ''}")
    with _progress(f"editing {args.attribute}") as progress:
        summary = job.run(progress)
    if summary:
        means = ", ".join(f"{k} {v:.4g}" for k, v in summary["metrics_mean"].items())
        _console().print(f"{summary['faces_done']}/{summary['faces_total']} faces in {args.out}; "
                         f"flagged {len(summary['flagged'])}; mean {means}")


def _run_study(args, cfg) -> None:
    from . import demo

    if getattr(args, "checkpoint", None) not in (None, "toyfaces"):
        raise ValueError("evaluate needs an attribute scorer and region masks: only the bundled toyfaces model has them")
    world = demo.default_world(tuple(args.attributes.split(",")))
    # The CLI has no fit options: label codes by the world's rule (toyfaces: the classifier's decision).
    cfg = dataclasses.replace(cfg, fit=world.fit)
    _console().print(f"model: {world.description}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    tasks = {}
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console()) as bar:

        def progress(task, done, total):
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done)

        rows = demo.run(args.out, world, cfg, progress=progress)
    print(demo.markdown_table(rows))
    _console().print(f"pictures and metrics in {args.out}/")


def cmd_demo(args) -> None:
    from .demo import DEMO

    _run_study(args, DEMO)


def cmd_evaluate(args) -> None:
    from .evaluation import EvalConfig
    from .intervention import InterventionConfig

    weights = _loss_weights(args)
    _run_study(args, EvalConfig(n_codes=args.n_codes, n_faces=args.n_faces, alpha=args.alpha, alpha_z=args.alpha_z,
                                intervention=InterventionConfig(steps=args.steps, **weights)))


def _add_loss_weights(p):
    p.add_argument("--w-pix", type=float, help="pixel loss weight (default: the library's)")
    p.add_argument("--w-attr", type=float, help="direction loss weight")
    p.add_argument("--w-reg", type=float, help="lam regulariser weight")


def _loss_weights(args) -> dict:
    """The loss weights given on the command line (the others keep the library's defaults)."""
    return {k: getattr(args, k) for k in ("w_pix", "w_attr", "w_reg") if getattr(args, k) is not None}


def _add_checkpoint(p):
    p.add_argument("--checkpoint", required=True, help="checkpoint directory or bundled model name (toyfaces)")


def _add_toyfaces(parser) -> None:
    from .toyfaces import classifier, export, quality, train

    steps = parser.add_subparsers(dest="step", required=True)
    for module, name, help_ in (
            (train, "train", "train the GAN on rendered faces (resumable: rerun to continue)"),
            (classifier, "classifier", "train the attribute classifier"),
            (export, "export", "write a training run and a classifier as the bundled model"),
            (quality, "quality", "the quality gate: attribute rates of samples vs rendered faces")):
        p = steps.add_parser(name, help=help_)
        module.add_arguments(p)
        p.set_defaults(func=module.run)


def build_parser() -> argparse.ArgumentParser:
    from .evaluation import EvalConfig
    from .edit_job import EditSpec

    ap = argparse.ArgumentParser(
        prog="stylejax", description="StyleGAN2 style-space editing in JAX.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    ap.add_argument("--cpu-devices", type=int, metavar="N",
                    help="on a CPU host, run as N XLA devices so batch edits shard faces over them "
                         "(one per core: README, benchmarks)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("convert", help="convert official weights (.pkl, .pt, .npz) into a checkpoint")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--network", default="G_ema", choices=["G_ema", "G"])
    p.add_argument("--force", action="store_true", help="overwrite an existing DST")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("generate", help="render images for seeds")
    _add_checkpoint(p)
    p.add_argument("--seeds", required=True, help="e.g. 0-15 or 1,5,9")
    p.add_argument("--psi", type=float, default=1.0)
    p.add_argument("--noise", default="const", choices=["const", "none"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--grid", action="store_true", help="also write grid.png")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("sample", help="sample z, w and style codes with S statistics (resumable)")
    _add_checkpoint(p)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--psi", type=float, default=0.7)
    p.add_argument("--cutoff", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=1000, help="samples per chunk (the unit of resumption)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="storage of S codes")
    p.add_argument("--images", type=int, default=0, metavar="PX", help="also write PX-sized thumbnails")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("fit-directions", help="fit linear SVM attribute directions (many attributes at once)")
    p.add_argument("--codes", required=True, help="folder written by `stylejax sample`")
    p.add_argument("--labels", required=True, help="CSV (index, attr...) or .npy scores")
    p.add_argument("--attributes", help="comma-separated subset (or the names of .npy columns)")
    p.add_argument("--space", default="s", choices=["s", "z", "w"])
    p.add_argument("--ratio", type=float, default=0.02, help="top/bottom fraction of scores kept")
    p.add_argument("--threshold", type=float, default=None, help="label all samples by score > threshold")
    p.add_argument("--sparsity", type=float, default=None, help="S only: fraction of channels kept, e.g. 0.05")
    p.add_argument("--sparse-method", default="l1", choices=["l1", "topk"])
    p.add_argument("--sparsity-table", help="S only: report val accuracy at these fractions, e.g. 0.01,0.05,0.2")
    p.add_argument("--seed", type=int, default=0, help="train/validation split")
    p.add_argument("--out", required=True, help="directions .npz (entries are merged into an existing file)")
    p.set_defaults(func=cmd_fit_directions)

    p = sub.add_parser("edit", help="style intervention on a batch of faces (resumable)")
    _add_checkpoint(p)
    p.add_argument("--directions", required=True)
    p.add_argument("--attribute", required=True)
    p.add_argument("--seeds", help="e.g. 0-255")
    p.add_argument("--z", help=".npy of input latents z [N, z_dim]")
    p.add_argument("--latents", help=".npy of W [N, w_dim] or W+ [N, num_ws, w_dim] (needs --translation w)")
    p.add_argument("--mask", required=True, help="PNG (shared), folder of <key>.png, .npy, or 'auto'")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--psi", type=float, default=0.7)
    p.add_argument("--alpha", type=float, default=EditSpec.alpha, help="S translation strength (std units)")
    p.add_argument("--alpha-z", type=float, default=EditSpec.alpha_z, help="Z/W translation strength")
    p.add_argument("--translation", default="z", choices=["z", "w"])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-2)
    _add_loss_weights(p)
    p.add_argument("--granularity", default="channel", choices=["channel", "layer", "scalar"])
    p.add_argument("--project", action="store_true", help="keep lam in [0, 1]")
    p.add_argument("--remat", action="store_true", help="rematerialise synthesis blocks (less memory)")
    p.add_argument("--distributed", action="store_true",
                   help="multi-host: jax.distributed.initialize(); each process edits its share of the faces")
    p.add_argument("--coordinator", help="with --distributed: HOST:PORT of process 0 (else auto-detected)")
    p.add_argument("--num-processes", type=int, help="with --distributed")
    p.add_argument("--process-id", type=int, help="with --distributed")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("evaluate", help="Z vs S translation vs intervention on toyfaces (the paper's claim)")
    p.add_argument("--checkpoint", default="toyfaces", help="only the bundled 'toyfaces' has a scorer and regions")
    p.add_argument("--attributes", default="smile,eyeglasses,hair_color")
    p.add_argument("--n-codes", type=int, default=10000)
    p.add_argument("--n-faces", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--alpha", type=float, default=EvalConfig.alpha, help="S translation strength (std units)")
    p.add_argument("--alpha-z", type=float, default=EvalConfig.alpha_z, help="Z translation strength")
    _add_loss_weights(p)
    p.add_argument("--out", default="evaluation")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("toyfaces", help="reproduce the bundled toyfaces model: train, classifier, export, quality")
    _add_toyfaces(p)

    p = sub.add_parser("demo", help="a two-minute tour on the bundled toyfaces model")
    p.add_argument("--attributes", default="hair_color", help="one or more of smile,eyeglasses,hair_color")
    p.add_argument("--out", default="stylejax-demo")
    p.set_defaults(func=cmd_demo)
    return ap


def _use_cpu_devices(n: int) -> None:
    import jax

    if n < 1:
        raise ValueError(f"--cpu-devices must be >= 1, got {n}")
    # Read when the CPU backend starts, i.e. before the first computation.
    # Nothing here may start a backend: `edit --distributed` must initialise first.
    jax.config.update("jax_num_cpu_devices", n)


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        if args.cpu_devices is not None:
            _use_cpu_devices(args.cpu_devices)
        args.func(args)
    except KeyboardInterrupt:
        print("stylejax: interrupted (completed work is kept; rerun to resume)", file=sys.stderr)
        return 130
    except Exception as e:  # one line for the user; the traceback only on request
        if args.debug:
            traceback.print_exc()
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"stylejax: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
