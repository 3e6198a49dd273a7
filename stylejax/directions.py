"""The directions file: per attribute and space, a unit normal with its fit report.

On disk, one `.npz` (no pickles) holding

    meta                 JSON string: version, generator identity, per entry its report
    stats/mean, stats/std  the S statistics [D_S] used to standardise S directions
    <attr>/<space>/normal  unit normal [D] (standardised coordinates for space "s")

Files are written atomically; adding a space to an existing file merges into it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np

SPACES = ("s", "z", "w")
VERSION = 1


@dataclasses.dataclass(frozen=True)
class Direction:
    attribute: str
    space: str  # "s" | "z" | "w"
    normal: np.ndarray  # [D] unit norm, oriented towards the positive attribute
    bias: float  # decision function: normal . x_std + bias (x_std standardised for space "s")
    report: dict  # accuracies, C, sparsity, selection, provenance

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.normal))


@dataclasses.dataclass
class Directions:
    generator: dict  # stylejax.sampling.identity of the generator the codes came from
    mean: np.ndarray | None = None  # [D_S] S statistics
    std: np.ndarray | None = None
    entries: dict = dataclasses.field(default_factory=dict)  # (attribute, space) -> Direction

    @property
    def attributes(self) -> list[str]:
        return sorted({a for a, _ in self.entries})

    def get(self, attribute: str, space: str) -> Direction:
        if attribute not in self.attributes:
            raise ValueError(f"attribute {attribute!r} is not in the directions file (it has {self.attributes})")
        if (attribute, space) not in self.entries:
            have = sorted(s for a, s in self.entries if a == attribute)
            raise ValueError(f"attribute {attribute!r} has no {space!r} direction (it has {have})")
        return self.entries[(attribute, space)]

    def add(self, d: Direction) -> None:
        if d.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {d.space!r}")
        if "/" in d.attribute or not d.attribute:
            raise ValueError(f"attribute names must be non-empty and contain no '/': {d.attribute!r}")
        self.entries[(d.attribute, d.space)] = d

    def check_generator(self, identity: dict, what: str = "generator") -> None:
        if identity != self.generator:
            dim = self.generator.get("dim_s")
            raise ValueError(
                f"the directions were fitted on another model (D_S {dim}) than this {what} (D_S {identity.get('dim_s')})"
            )

    # ---- files ---------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        meta = {"version": VERSION, "generator": self.generator,
                "entries": [{"attribute": d.attribute, "space": d.space, "bias": d.bias, "report": d.report}
                            for d in self.entries.values()]}
        arrays = {"meta": np.array(json.dumps(meta))}
        if self.mean is not None:
            arrays["stats/mean"] = np.asarray(self.mean, np.float32)
            arrays["stats/std"] = np.asarray(self.std, np.float32)
        for d in self.entries.values():
            arrays[f"{d.attribute}/{d.space}/normal"] = np.asarray(d.normal, np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Directions":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
            meta = json.loads(str(data["meta"]))
        except FileNotFoundError:
            raise ValueError(f"directions file {path} not found") from None
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{path} is not a stylejax directions file ({e})") from None
        if meta.get("version") != VERSION:
            raise ValueError(f"{path}: unsupported directions file version {meta.get('version')!r}")
        out = cls(meta["generator"], data.get("stats/mean"), data.get("stats/std"))
        for e in meta["entries"]:
            key = f"{e['attribute']}/{e['space']}/normal"
            if key not in data:
                raise ValueError(f"{path} is damaged: {key} is missing")
            out.add(Direction(e["attribute"], e["space"], data[key], float(e["bias"]), e["report"]))
        return out

    @classmethod
    def open_or_new(cls, path: str | Path, generator: dict) -> "Directions":
        """The file at `path` to merge into (checked against `generator`), or a new one."""
        if Path(path).exists():
            d = cls.load(path)
            d.check_generator(generator, "codes' generator")
            return d
        return cls(generator)


# ---- fitting ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """How directions are fitted from scored codes (method.md §2)."""

    ratio: float = 0.02  # keep the top and bottom ratio of scores (InterFaceGAN)
    threshold: float | None = None  # instead label every sample: score > threshold
    train_fraction: float = 0.7
    C_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
    sparsity: float | None = None  # S only: fraction of channels kept (e.g. 0.05); None = dense
    sparse_method: str = "l1"  # "l1" (FISTA, L1 strength bisected to the target count) or "topk"
    seed: int = 0  # fixes the train/validation split


def fit_directions(codes, labels, space: str, attributes: list[str] | None = None,
                   config: FitConfig = FitConfig()) -> list[Direction]:
    """Fit one direction per attribute in `space` ("s", "z" or "w") at once.

    codes: a `stylejax.sampling.Codes`; labels: a `stylejax.labels.Labels`.
    S directions live in standardised S (the codes' statistics); Z and W
    directions are fitted on raw codes, so their normals are raw directions.
    """
    import jax

    from . import svm
    from .selection import select_labels

    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if config.sparsity is not None and (space != "s" or not 0 < config.sparsity <= 1):
        raise ValueError("sparsity is a fraction in (0, 1] and applies to the 's' space only")
    if config.sparse_method not in ("l1", "topk"):
        raise ValueError(f"sparse_method must be 'l1' or 'topk', got {config.sparse_method!r}")
    attributes = attributes or labels.names
    scores = np.stack([labels.column(a) for a in attributes])  # [K, M]
    labels.check_codes(len(codes))
    x = codes.space(space)
    if not np.array_equal(labels.index, np.arange(len(codes))):
        # Labels cover a subset: copy just those rows, in label order.
        x = np.asarray(x[labels.index])
    if space == "s":
        mean, std = codes.mean, codes.std
    else:
        mean, std = np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
    selection = select_labels(scores, jax.random.key(config.seed), ratio=config.ratio,
                              threshold=config.threshold, train_fraction=config.train_fraction)
    design = svm.prepare_design(x, selection, mean, std)
    if not all(bool(np.all(np.isfinite(np.asarray(r.x)))) for r in (design.train, design.val)):
        raise ValueError(f"the selected {space} codes contain NaN or inf")
    dense = svm.fit_svm(design, C_grid=config.C_grid)
    fit, nnz = dense, None
    if config.sparsity is not None:
        nnz = max(1, int(round(config.sparsity * x.shape[1])))
        if config.sparse_method == "l1":
            fit = svm.fit_l1(design, nnz, C=dense.C)
        else:
            fit = svm.fit_top_k(design, dense, nnz)
    selection_info = {"ratio": None, "threshold": config.threshold} if config.threshold is not None else {"ratio": config.ratio}
    out = []
    for k, name in enumerate(attributes):
        normal = np.asarray(fit.normal[k], np.float32)
        report = {
            "train_acc": float(fit.train_acc[k]), "val_acc": float(fit.val_acc[k]),
            "dense_val_acc": float(dense.val_acc[k]), "C": float(dense.C[k]),
            "nnz": int(np.count_nonzero(normal)), "dim": int(x.shape[1]),
            "sparsity": None if nnz is None else config.sparsity,
            "method": "dense" if nnz is None else config.sparse_method,
            "n_train": int(np.sum(np.asarray(selection.train[k]))),
            "n_val": int(np.sum(np.asarray(selection.val[k]))),
            "converged": bool(np.asarray(fit.converged[k])),
            "selection": selection_info, "seed": config.seed,
        }
        out.append(Direction(name, space, normal, float(fit.bias[k]), report))
    return out
