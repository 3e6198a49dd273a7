"""Measure the paper's claim on a model with an attribute scorer and region masks.

For each attribute that lives in a region: sample and score codes, fit a sparse
S direction and a Z direction, then on the same faces compare

    Z translation (lam = 0), sparse S translation (lam = 1), intervention (lam*)

by attribute change (the scorer's logit for that attribute, edited minus
original), and mean squared pixel change outside and inside the region.
The claim (Liu et al.): the intervention keeps >= 80% of the Z translation's
attribute change while its outside-region change is <= 50% of the Z
translation's.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .directions import FitConfig, fit_directions
from .generator import Generator, functional, identity
from .intervention import InterventionConfig, Result, even_batches, intervene, translate
from .labels import score_codes
from .latents import z_from_seeds
from .sampling import Codes, sample_fn
from .translations import s_translation, z_translation

KEEP_ATTRIBUTE = 0.8  # the claim's thresholds
MAX_OUTSIDE = 0.5


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    n_codes: int = 10_000  # sampled and scored to fit the directions
    n_faces: int = 256  # edited faces (seeds 0 .. n_faces-1)
    psi: float = 0.7
    fit: FitConfig = FitConfig(sparsity=0.05)
    alpha: float = 10.0  # S translation strength: length of the unit normal in std units
    alpha_z: float = 3.0  # Z translation strength
    intervention: InterventionConfig = InterventionConfig()
    batch: int = 64
    seed: int = 0


Progress = Callable[[str, int, int], None]  # (task, done, total)


def scored_codes(G: Generator, scorer, names, n: int, psi: float, seed: int, batch: int = 1000,
                 progress: Progress | None = None):
    """Sample n codes in memory and score them -> (Codes, Labels)."""
    run, params = sample_fn(G, psi, None)
    key = jax.random.key(seed)
    parts = []
    for i in range(0, n, batch):
        parts.append(jax.device_get(run(params, key, jnp.arange(i, min(n, i + batch)))))
        if progress:
            progress("sampling codes", min(n, i + batch), n)
    z, w, s = (np.concatenate([p[k] for p in parts]) for k in range(3))
    codes = Codes.from_arrays(z, w, s, identity(G))
    return codes, score_codes(G, codes.s, scorer, list(names))


def evaluate_attribute(G, codes, labels, scorer, attribute: str, mask: np.ndarray, cfg: EvalConfig,
                       progress: Progress | None = None) -> tuple[dict, dict[str, Result]]:
    """-> (row of the results table, {"z": Result, "s": Result, "intervention": Result})."""
    d_s, = fit_directions(codes, labels, "s", [attribute], cfg.fit)
    d_z, = fit_directions(codes, labels, "z", [attribute], dataclasses.replace(cfg.fit, sparsity=None))
    column = labels.names.index(attribute)
    score = lambda img: scorer(img)[:, column]
    fn, params = functional(G)
    sigma = jnp.asarray(d_s.std)
    ds_n = s_translation(d_s.normal, sigma, cfg.alpha)  # [D], the same for every face
    results: dict[str, list[Result]] = {"z": [], "s": [], "intervention": []}
    for positions in even_batches(cfg.n_faces, cfg.batch):  # equal batches: one compiled step
        seeds = [min(p, cfg.n_faces - 1) for p in positions]  # padding repeats the last face
        z = jnp.asarray(z_from_seeds(seeds, G.config.z_dim))
        s = fn.styles(params, fn.mapping(params, z, psi=cfg.psi))
        ds_z = z_translation(fn, params, z, d_z.normal, cfg.alpha_z, psi=cfg.psi)
        common = dict(sigma=sigma, scorer=score)
        results["z"].append(translate((fn, params), s, ds_z, ds_n, mask, 0.0, **common))
        results["s"].append(translate((fn, params), s, ds_z, ds_n, mask, 1.0, **common))
        results["intervention"].append(intervene((fn, params), s, ds_z, ds_n, mask, cfg.intervention, **common))
        if progress:
            progress(f"editing {attribute}", seeds[-1] + 1, cfg.n_faces)
    merged = {k: _concat(v, cfg.n_faces) for k, v in results.items()}
    m = {k: {name: float(np.mean(v)) for name, v in r.metrics.items()} for k, r in merged.items()}
    keep = m["intervention"]["attribute_change"] / m["z"]["attribute_change"]
    outside = m["intervention"]["outside_change"] / m["z"]["outside_change"]
    row = {
        "attribute": attribute, "s_val_acc": d_s.report["val_acc"], "z_val_acc": d_z.report["val_acc"],
        "nnz": d_s.nnz, **{f"{k}_{name}": v for k, mk in m.items() for name, v in mk.items()},
        "keep_ratio": keep, "outside_ratio": outside,
        "claim_holds": bool(keep >= KEEP_ATTRIBUTE and outside <= MAX_OUTSIDE),
        "flagged": int(merged["intervention"].flagged.sum()),
    }
    return row, merged


def _concat(results: list[Result], n: int) -> Result:
    """One Result of the first n faces of `results` (the rest is padding)."""
    cat = lambda arrays, axis=0: np.concatenate(arrays, axis)[(slice(None),) * axis + (slice(n),)]
    return Result(
        lam=cat([r.lam for r in results]),
        s_edit=cat([r.s_edit for r in results]),
        images=cat([r.images for r in results]),
        original=cat([r.original for r in results]),
        loss_history=cat([r.loss_history for r in results], axis=1),
        flagged=cat([r.flagged for r in results]),
        metrics={k: cat([r.metrics[k] for r in results]) for k in results[0].metrics},
    )


def evaluate(G: Generator, scorer, names, masks: dict[str, np.ndarray], cfg: EvalConfig = EvalConfig(),
             progress: Progress | None = None):
    """Evaluate every attribute in `masks` ({attribute: binary mask [R, R]}) -> (rows, results)."""
    codes, labels = scored_codes(G, scorer, names, cfg.n_codes, cfg.psi, cfg.seed, progress=progress)
    rows, results = [], {}
    for attribute, mask in masks.items():
        row, res = evaluate_attribute(G, codes, labels, scorer, attribute, mask, cfg, progress)
        rows.append(row)
        results[attribute] = res
    return rows, results
