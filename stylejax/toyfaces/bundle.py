"""The toyfaces model bundled inside the package: generator, classifier, region masks.

Layout of `stylejax/models/toyfaces/` (written by `stylejax.toyfaces.export`):

    stylejax.json, params/    the G_ema generator (a stylejax checkpoint: stylejax.load("toyfaces"))
    classifier/               the attribute classifier (stylejax.toyfaces.classifier)
    regions/<region>.npy      float32 [R, R]: fraction of rendered faces in which a pixel
                              belongs to the region (mean_region_masks), one per REGIONS name
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from stylejax.toyfaces.attributes import REGIONS

NAME = "toyfaces"
CLASSIFIER_DIR = "classifier"
REGIONS_DIR = "regions"


class BundleError(ValueError):
    """The bundled toyfaces model is missing or damaged."""


def bundle_dir() -> Path:
    """The folder of the bundled model (it may not exist in a fresh checkout)."""
    return Path(str(resources.files("stylejax") / "models" / NAME))


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise BundleError(
            f"the bundled toyfaces {what} is missing ({path}); train and export it with "
            "`stylejax toyfaces train` and `stylejax toyfaces export`"
        )
    return path


def load_generator():
    """The bundled G_ema as a stylejax.Generator."""
    from stylejax.checkpoint import CheckpointError, load

    path = _require(bundle_dir(), "generator")
    try:
        return load(path)
    except CheckpointError as e:
        raise BundleError(f"the bundled toyfaces generator is damaged: {e}") from None


def load_classifier():
    """The bundled attribute classifier (`score(images in [-1, 1]) -> logits [B, A]`)."""
    from stylejax.toyfaces.classifier import ClassifierError
    from stylejax.toyfaces.classifier import load_classifier as load

    path = _require(bundle_dir() / CLASSIFIER_DIR, "classifier")
    try:
        return load(path)
    except ClassifierError as e:
        raise BundleError(f"the bundled toyfaces classifier is damaged: {e}") from None


def region_masks() -> dict[str, np.ndarray]:
    """{region: float32 [R, R]} for every name in REGIONS: the mean region maps."""
    folder = _require(bundle_dir() / REGIONS_DIR, "region masks")
    masks = {}
    for name in REGIONS:
        path = _require(folder / f"{name}.npy", f"'{name}' region mask")
        try:
            mask = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise BundleError(f"{path} is damaged ({e})") from None
        if mask.ndim != 2 or mask.shape[0] != mask.shape[1] or mask.dtype != np.float32:
            raise BundleError(f"{path} is damaged: expected float32 [R, R], got {mask.dtype} {mask.shape}")
        if not np.all((mask >= 0) & (mask <= 1)):
            raise BundleError(f"{path} is damaged: values outside [0, 1]")
        masks[name] = mask
    return masks


def region_mask(name: str, threshold: float = 0.5) -> np.ndarray:
    """bool [R, R]: pixels inside region `name` in at least a `threshold` fraction of faces."""
    if name not in REGIONS:
        raise ValueError(f"unknown region {name!r}; choose from {REGIONS}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    return region_masks()[name] >= threshold
