"""Quality gate: does the generator reproduce the attribute statistics of its training data?

For every binary attribute, the classifier's positive rate on generated samples
(psi 1) must lie within `tolerance` (15 points) of its positive rate on freshly
rendered training faces. Comparing classifier against classifier cancels the
classifier's own bias; the ground-truth rate of the rendered faces is listed too.

    stylejax toyfaces quality            # the bundled model
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from stylejax.images import to_uint8
from stylejax.toyfaces.attributes import BINARY_ATTRIBUTES, binary_labels, sample_attributes
from stylejax.toyfaces.render import render

TOLERANCE = 0.15


class QualityError(RuntimeError):
    """Generated samples do not reproduce the training data's attribute rates."""


@dataclasses.dataclass(frozen=True)
class QualityRow:
    attribute: str
    generated: float  # classifier positive rate on generated samples
    rendered: float  # classifier positive rate on rendered faces
    truth: float  # ground-truth positive rate of the rendered faces

    @property
    def gap(self) -> float:
        return abs(self.generated - self.rendered)


@dataclasses.dataclass(frozen=True)
class QualityTable:
    rows: tuple[QualityRow, ...]
    n: int
    psi: float
    tolerance: float = TOLERANCE
    # (attribute, attribute, correlation of predicted labels on generated, on rendered faces),
    # largest generated |correlation| first. Not gated: the marginals are; this is for the reader.
    correlations: tuple[tuple[str, str, float, float], ...] = ()

    @property
    def passed(self) -> bool:
        return all(row.gap <= self.tolerance for row in self.rows)

    def format(self) -> str:
        lines = [f"{'attribute':<12} {'generated':>9} {'rendered':>9} {'truth':>7} {'gap':>6}  ok",
                 "-" * 50]
        for r in self.rows:
            ok = "yes" if r.gap <= self.tolerance else "NO"
            lines.append(f"{r.attribute:<12} {r.generated:9.3f} {r.rendered:9.3f} {r.truth:7.3f} {r.gap:6.3f}  {ok}")
        if self.correlations:
            lines.append("largest label correlations (generated | rendered; rendered attributes are independent):")
            lines += [f"  {a} ~ {b}: {g:+.2f} | {r:+.2f}" for a, b, g, r in self.correlations]
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{verdict}: n={self.n} per side, psi={self.psi}, tolerance {self.tolerance:.2f}")
        return "\n".join(lines)


def quality_table(G, clf, n: int = 1000, psi: float = 1.0, seed: int = 0, batch: int = 250,
                  tolerance: float = TOLERANCE) -> QualityTable:
    """Classifier positive rates on n generated and n rendered faces, per attribute.

    Generated images go through uint8 (as saved images would) before scoring.
    """
    if clf.config.resolution != G.config.img_resolution:
        raise ValueError(f"classifier resolution {clf.config.resolution} != generator {G.config.img_resolution}")
    key = jax.random.key(seed)
    generated = []
    for i, start in enumerate(range(0, n, batch)):
        z = jax.random.normal(jax.random.fold_in(key, i), (min(batch, n - start), G.config.z_dim))
        images = to_uint8(G(z, psi=psi))
        generated.append(clf.predict((images.astype(np.float32) - 128.0) / 127.5))
    attrs = sample_attributes(np.random.default_rng([seed, 3]), n)
    images, _ = render(attrs, G.config.img_resolution)
    rendered = np.concatenate([
        clf.predict((images[s:s + batch].astype(np.float32) - 128.0) / 127.5) for s in range(0, n, batch)
    ])
    columns = [list(BINARY_ATTRIBUTES).index(a) for a in clf.attributes]
    truth = binary_labels(attrs)[:, columns].mean(0)
    generated = np.concatenate(generated)
    gen_rate, ren_rate = generated.mean(0), rendered.mean(0)
    rows = tuple(
        QualityRow(a, float(g), float(r), float(t))
        for a, g, r, t in zip(clf.attributes, gen_rate, ren_rate, truth)
    )
    return QualityTable(rows, n, psi, tolerance, _top_correlations(clf.attributes, generated, rendered))


def _top_correlations(names, generated: np.ndarray, rendered: np.ndarray, top: int = 3):
    """The `top` attribute pairs with the largest |correlation| of generated labels [n, A] (bool)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant column has no correlation
        cg = np.nan_to_num(np.corrcoef(generated.T.astype(np.float64)))
        cr = np.nan_to_num(np.corrcoef(rendered.T.astype(np.float64)))
    i, j = np.triu_indices(len(names), k=1)
    order = np.argsort(-np.abs(cg[i, j]))[:top]
    return tuple((names[i[k]], names[j[k]], float(cg[i[k], j[k]]), float(cr[i[k], j[k]])) for k in order)


def add_arguments(ap) -> None:
    """The options of `stylejax toyfaces quality`."""
    ap.add_argument("--checkpoint", default=None, help="generator checkpoint (default: the bundled toyfaces)")
    ap.add_argument("--classifier", default=None, help="classifier folder (default: the bundled one)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--psi", type=float, default=1.0)


def run(args) -> QualityTable:
    """Print the table; raise QualityError if the gate fails."""
    from stylejax.checkpoint import load
    from stylejax.toyfaces import bundle
    from stylejax.toyfaces.classifier import load_classifier

    G = load(args.checkpoint) if args.checkpoint else bundle.load_generator()
    clf = load_classifier(args.classifier) if args.classifier else bundle.load_classifier()
    table = quality_table(G, clf, n=args.n, psi=args.psi)
    print(table.format())
    if not table.passed:
        raise QualityError("the quality gate failed: " + ", ".join(
            r.attribute for r in table.rows if r.gap > table.tolerance))
    return table
