"""The `stylejax` command: thin subcommands over the library.

Every subcommand prints progress, exits 0 on success and, on bad input, prints
one line `stylejax: error: ...` and exits 1 (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

EXAMPLES = """examples:
  stylejax convert ffhq.pkl ffhq-ckpt/
  stylejax generate --checkpoint toyfaces --seeds 0-15 --psi 0.7 --out faces/
  stylejax sample --checkpoint ffhq-ckpt --n 100000 --psi 0.7 --seed 0 --out codes/
  stylejax fit-directions --codes codes/ --labels labels.csv --space s --sparsity 0.05 --out directions.npz
  stylejax edit --checkpoint ffhq-ckpt --directions directions.npz --attribute smile --seeds 0-255 --mask mouth.png --out results/
  stylejax evaluate --checkpoint toyfaces --out eval/
  stylejax demo
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


def _add_checkpoint(p):
    p.add_argument("--checkpoint", required=True, help="checkpoint directory or bundled model name (toyfaces)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="stylejax", description="StyleGAN2 style-space editing in JAX.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
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
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
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
