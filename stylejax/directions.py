"""The directions file: per attribute and space, a unit normal with its fit report.

On disk, one `.npz` (no pickles) holding

    meta                        JSON: version, generator identity, per entry its report
    <attr>/<space>/normal       unit normal [D] (in standardised coordinates for space "s")
    <attr>/s/mean, <attr>/s/std the S statistics [D_S] that define those coordinates

Every S entry carries the statistics it was fitted with, so entries fitted on
different sampling runs can share a file. Files are written atomically;
fitting into an existing file merges (replaces the same attribute and space).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .io import write_npz

SPACES = ("s", "z", "w")
VERSION = 2


@dataclasses.dataclass(frozen=True)
class Direction:
    attribute: str
    space: str  # "s" | "z" | "w"
    normal: np.ndarray  # [D] unit norm, oriented towards the positive attribute
    bias: float  # decision function: normal . x_std + bias (x_std standardised for space "s")
    report: dict  # accuracies, C, sparsity, selection, provenance
    mean: np.ndarray | None = None  # [D] S statistics ("s" entries only)
    std: np.ndarray | None = None

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
        if "/" in self.attribute or not self.attribute:
            raise ValueError(f"attribute names must be non-empty and contain no '/': {self.attribute!r}")
        if (self.space == "s") != (self.std is not None and self.mean is not None):
            raise ValueError("S directions need the S statistics (mean, std); Z and W directions take none")

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.normal))


@dataclasses.dataclass
class Directions:
    generator: dict  # stylejax.generator.identity of the generator the codes came from
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
        for d in self.entries.values():
            prefix = f"{d.attribute}/{d.space}"
            arrays[f"{prefix}/normal"] = np.asarray(d.normal, np.float32)
            if d.space == "s":
                arrays[f"{prefix}/mean"] = np.asarray(d.mean, np.float32)
                arrays[f"{prefix}/std"] = np.asarray(d.std, np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_npz(path, **arrays)
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
        out = cls(meta["generator"])
        for e in meta["entries"]:
            prefix = f"{e['attribute']}/{e['space']}"
            needed = [f"{prefix}/normal"] + ([f"{prefix}/mean", f"{prefix}/std"] if e["space"] == "s" else [])
            missing = [k for k in needed if k not in data]
            if missing:
                raise ValueError(f"{path} is damaged: {missing} missing")
            stats = (data[f"{prefix}/mean"], data[f"{prefix}/std"]) if e["space"] == "s" else (None, None)
            out.add(Direction(e["attribute"], e["space"], data[f"{prefix}/normal"], float(e["bias"]), e["report"],
                              *stats))
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
    sparsity_table: tuple[float, ...] = ()  # S only: also report validation accuracy at these fractions
    seed: int = 0  # fixes the train/validation split


def fit_directions(codes, labels, space: str, attributes: list[str] | None = None,
                   config: FitConfig = FitConfig(), provenance: dict | None = None) -> list[Direction]:
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
    if config.sparsity_table and space != "s":  # checked before any fitting
        raise ValueError("a sparsity table applies to the 's' space only")
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
    dense = svm.fit_svm(design, C_grid=config.C_grid)
    table = None
    if config.sparsity_table:
        ks = [max(1, int(round(f * x.shape[1]))) for f in config.sparsity_table]
        table = svm.sparsity_table(design, ks, dense=dense)
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
            "provenance": dict(provenance or {}),
        }
        if table is not None:
            report["sparsity_table"] = [
                {"fraction": f, "nnz": int(kk), "topk": float(table.topk[j, k]),
                 "topk_refit": float(table.topk_refit[j, k]), "l1": float(table.l1[j, k])}
                for j, (f, kk) in enumerate(zip(config.sparsity_table, table.k))
            ]
        stats = (np.asarray(mean, np.float32), np.asarray(std, np.float32)) if space == "s" else (None, None)
        out.append(Direction(name, space, normal, float(fit.bias[k]), report, *stats))
    return out
