"""`stylejax demo` and `stylejax evaluate` on the bundled toyfaces model.

The demo samples and scores codes, fits a direction in S and in Z (hair colour by
default: the attribute whose directions this small model keeps cleanest), edits
a batch of faces three ways and writes a picture and a metrics table. Should
the bundled model be missing or damaged, it runs the same steps on a small
random-weight generator with a synthetic redness scorer, and says so: its
pictures are not faces.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
from flax import nnx

from .directions import FitConfig
from .evaluation import EvalConfig, evaluate
from .images import grid, save_png, to_uint8, upscale
from .io import write_json, write_text

DEMO = EvalConfig(n_codes=10_000, n_faces=8, batch=8)
# Attributes with a region, and the mask threshold for that region's mean map.
REGIONAL = {"smile": ("mouth", 0.25), "eyeglasses": ("eyes", 0.25), "hair_color": ("hair", 0.5)}


@dataclasses.dataclass
class World:
    """A generator, an attribute scorer and region masks to evaluate against."""

    G: object
    scorer: Callable
    names: list[str]
    masks: dict[str, np.ndarray]  # attribute -> binary [R, R]
    description: str
    fit: FitConfig  # how its scores become labels: a threshold for classifier logits, else top/bottom ratio


def toyfaces_world(attributes=("smile",)) -> World:
    from .toyfaces import bundle

    G = bundle.load_generator()
    clf = bundle.load_classifier()
    masks = {}
    for a in attributes:
        if a not in REGIONAL:
            raise ValueError(f"attribute {a!r} has no region; choose from {sorted(REGIONAL)}")
        region, threshold = REGIONAL[a]
        masks[a] = bundle.region_mask(region, threshold).astype(np.float32)
    # Logits of binary attributes: every sampled code is labelled by the classifier's decision.
    fit = FitConfig(threshold=0.0, sparsity=0.05)
    return World(G, clf.score, list(clf.attributes), masks, "the bundled toyfaces StyleGAN2 (trained here)", fit)


def random_world(attributes=("smile",)) -> World:
    from .config import GeneratorConfig, MappingConfig, SynthesisConfig
    from .generator import Generator

    if len(attributes) != 1:
        raise ValueError("without the bundled toyfaces model the demo edits one (synthetic) attribute at a time")
    (name,) = attributes
    cfg = GeneratorConfig(z_dim=64, w_dim=64, img_resolution=32, mapping=MappingConfig(num_layers=2),
                          synthesis=SynthesisConfig(channel_base=1024, channel_max=64))
    G = Generator(cfg, rngs=nnx.Rngs(0))
    mask = np.zeros((32, 32), np.float32)
    mask[18:28, 8:24] = 1
    scorer = lambda img: img[:, 18:28, 8:24, 0].mean(axis=(1, 2))[:, None]
    return World(G, scorer, [name], {name: mask},
                 "RANDOM WEIGHTS (no bundled toyfaces model found): the pictures are not faces, "
                 f"and '{name}' is a synthetic redness score of the lower centre", FitConfig(ratio=0.05, sparsity=0.05))


def default_world(attributes=("smile",)) -> World:
    from .toyfaces.bundle import BundleError

    try:
        return toyfaces_world(attributes)
    except BundleError:
        return random_world(attributes)


def comparison_grid(results: dict, mask: np.ndarray, n: int = 8) -> np.ndarray:
    """Rows of faces: original | Z translation | S translation | intervention | mask over original."""
    orig = to_uint8(results["z"].original[:n])
    tint = orig.copy()
    tint[..., 0] = np.where(mask > 0, 255, tint[..., 0])
    cols = [orig, to_uint8(results["z"].images[:n]), to_uint8(results["s"].images[:n]),
            to_uint8(results["intervention"].images[:n]), tint]
    tiles = np.stack(cols, axis=1).reshape(-1, *orig.shape[1:])  # row-major: face by face
    return grid(tiles, ncol=len(cols))


def markdown_table(rows: list[dict]) -> str:
    head = ("| attribute | method | attribute change | outside-region change | inside-region change | cos(ds, ds_n) |\n"
            "|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        for key, label in (("z", "Z translation (lam = 0)"), ("s", "S translation (lam = 1)"),
                           ("intervention", "intervention (lam*)")):
            lines.append(f"| {r['attribute']} | {label} | {r[key + '_attribute_change']:.3f} | "
                         f"{r[key + '_outside_change']:.4f} | {r[key + '_inside_change']:.4f} | "
                         f"{r[key + '_cos_ds_dsn']:.3f} |")
    lines.append("")
    for r in rows:
        lines.append(f"- {r['attribute']}: intervention keeps {100 * r['keep_ratio']:.0f}% of the Z translation's "
                     f"attribute change (claim: >= 80%) with {100 * r['outside_ratio']:.0f}% of its outside-region "
                     f"change (claim: <= 50%): claim {'holds' if r['claim_holds'] else 'does not hold'}.")
    return "\n".join(lines)


def run(out: str | Path, world: World, cfg: EvalConfig, progress=None) -> list[dict]:
    """Evaluate, then write grid_<attribute>.png, metrics.md and metrics.json into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, results = evaluate(world.G, world.scorer, world.names, world.masks, cfg, progress)
    # Small models' faces are enlarged to at least 128 px so that the edits can be seen.
    factor = max(1, 128 // world.G.config.img_resolution)
    for attribute, res in results.items():
        save_png(out / f"grid_{attribute}.png", upscale(comparison_grid(res, world.masks[attribute]), factor))
    text = f"Model: {world.description}\n\n" + markdown_table(rows) + "\n"
    write_text(out / "metrics.md", text)
    write_json(out / "metrics.json", {"model": world.description, "config": repr(cfg), "rows": rows})
    return rows
