"""A small CNN that predicts every binary toy-face attribute from an image.

It labels generated samples (for fitting attribute directions) and scores
edits, so it reads images exactly as the generator emits them: float32 NHWC
in the raw range [-1, 1], where uint8 u corresponds to (u - 128) / 127.5
(the inverse of stylejax.images.to_uint8). It is trained on freshly rendered
faces with mild noise and blur, so that it transfers to GAN samples.

    clf = load_classifier(path)
    logits = clf.score(images)            # [B, A], columns in clf.attributes order
    fn, params = functional(clf)          # pure form for jit / grad
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from stylejax.checkpoint import atomic_directory
from stylejax.layers import Dense
from stylejax.toyfaces.attributes import BINARY_ATTRIBUTES, binary_labels, sample_attributes
from stylejax.toyfaces.conv import Conv
from stylejax.toyfaces.render import render

FORMAT = "stylejax-toyfaces-classifier"
VERSION = 1
PARAMS_FILE = "params.npz"
META_FILE = "classifier.json"


class ClassifierError(ValueError):
    """A classifier folder that is missing, damaged or of another format."""


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    resolution: int = 32
    # Channels of the stem and of each stage; every stage halves the resolution.
    channels: tuple[int, ...] = (16, 32, 64, 128)
    hidden: int = 128
    attributes: tuple[str, ...] = tuple(BINARY_ATTRIBUTES)

    def __post_init__(self):
        stages = len(self.channels) - 1
        if self.resolution % 2**stages or self.resolution // 2**stages < 1:
            raise ValueError(f"resolution {self.resolution} cannot be halved {stages} times")
        unknown = set(self.attributes) - set(BINARY_ATTRIBUTES)
        if unknown:
            raise ValueError(f"unknown attributes {sorted(unknown)}")

    @property
    def final_resolution(self) -> int:
        return self.resolution // 2 ** (len(self.channels) - 1)


class Classifier(nnx.Module):
    def __init__(self, config: ClassifierConfig, *, rngs: nnx.Rngs):
        self.config = config
        ch = config.channels
        self.stem = Conv(3, ch[0], 3, rngs=rngs)
        self.stages = nnx.List([
            nnx.List([Conv(ch[i], ch[i], 3, rngs=rngs), Conv(ch[i], ch[i + 1], 3, down=2, rngs=rngs)])
            for i in range(len(ch) - 1)
        ])
        self.fc = Dense(config.final_resolution**2 * ch[-1], config.hidden, act="lrelu", rngs=rngs)
        self.out = Dense(config.hidden, len(config.attributes), rngs=rngs)

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.config.attributes

    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        """images [B, R, R, 3] float32 in [-1, 1] -> logits [B, A] (positive: attribute present)."""
        r = self.config.resolution
        if images.ndim != 4 or images.shape[1:] != (r, r, 3):
            raise ValueError(f"images must have shape [B, {r}, {r}, 3], got {tuple(images.shape)}")
        x = self.stem(images)
        for conv, down in self.stages:
            x = down(conv(x))
        return self.out(self.fc(x.reshape(x.shape[0], -1)))

    def score(self, images) -> jnp.ndarray:
        """Compiled __call__: images [B, R, R, 3] in [-1, 1] -> logits [B, A]."""
        graphdef, state = nnx.split(self)
        return _score(graphdef, state, jnp.asarray(images, jnp.float32))

    def predict(self, images) -> np.ndarray:
        """bool [B, A]: the attributes the classifier sees."""
        return np.asarray(self.score(images)) > 0


@functools.partial(jax.jit, static_argnums=0)
def _score(graphdef, state, images):
    return nnx.merge(graphdef, state)(images)


@dataclasses.dataclass(frozen=True)
class ClassifierFn:
    """The classifier as a pure function of its parameters (hashable, static)."""

    graphdef: nnx.GraphDef

    def __call__(self, params, images):
        """params, images [B, R, R, 3] in [-1, 1] -> logits [B, A]."""
        return nnx.merge(self.graphdef, params)(images)


def functional(clf: Classifier) -> tuple[ClassifierFn, nnx.State]:
    graphdef, params = nnx.split(clf)
    return ClassifierFn(graphdef), params


# ---- data -----------------------------------------------------------------------
# Signed distance of each attribute from its label threshold, in [-0.5, 0.5]: positive
# exactly when binary_labels says True. Regressing it gives every face a graded target,
# not only a side of the threshold, which is what makes near-threshold faces learnable.
MARGINS = {
    'smile': lambda a: 0.5 * a['smile'],
    'eyeglasses': lambda a: np.where(a['eyeglasses'], 0.5, -0.5),
    'hair_color': lambda a: a['hair_color'] - 0.5,
    'hair_length': lambda a: a['hair_length'] - 0.5,
    'skin_tone': lambda a: a['skin_tone'] - 0.5,
    'eye_size': lambda a: a['eye_size'] - 0.5,
    'background': lambda a: 0.5 - a['background'],
}
# Logit per unit of margin that the regression asks for (margin 0.5 -> logit 4).
LOGIT_SCALE = 8.0


def labelled_batch(rng: np.random.Generator, n: int, config: ClassifierConfig):
    """Freshly rendered faces: images float32 [n, R, R, 3] in [-1, 1], labels float32 [n, A]
    (0 or 1) and margins float32 [n, A] (see MARGINS), columns in config.attributes order."""
    attrs = sample_attributes(rng, n)
    images, _ = render(attrs, config.resolution)
    columns = [list(BINARY_ATTRIBUTES).index(a) for a in config.attributes]
    labels = binary_labels(attrs)[:, columns]
    margins = np.stack([MARGINS[a](attrs) for a in config.attributes], axis=1)
    return (images.astype(np.float32) - 128.0) / 127.5, labels.astype(np.float32), margins.astype(np.float32)


def _smooth(x: jnp.ndarray, axis: int) -> jnp.ndarray:
    # [1, 2, 1] / 4 along one axis, edges repeated: a centred blur (no half-pixel shift).
    n = x.shape[axis]
    widths = [(0, 0)] * x.ndim
    widths[axis] = (1, 1)
    xp = jnp.pad(x, widths, mode="edge")
    take = lambda k: jax.lax.slice_in_dim(xp, k, k + n, axis=axis)
    return 0.25 * take(0) + 0.5 * take(1) + 0.25 * take(2)


def augment(key, images: jnp.ndarray, max_blur: float = 2.0, max_noise: float = 0.04) -> jnp.ndarray:
    """Per image: blur by a level b ~ U(0, max_blur), then add Gaussian noise of std
    U(0, max_noise) (raw units; 0.04 is about 5 grey levels). Level b in [k, k + 1]
    blends k and k + 1 passes of the [1, 2, 1] filter (so 2 is a blur of about 1 pixel).

    Blur and noise stand in for the softness and grain of GAN samples: blurred thin
    strokes look thicker, and the classifier must not read a soft frown as a broad
    smile. Both keep an image's local mean, which carries the colour and size cues.
    """
    kb, ks, kn = jax.random.split(key, 3)
    b = images.shape[0]
    passes = [images]
    for _ in range(int(np.ceil(max_blur))):
        passes.append(_smooth(_smooth(passes[-1], 1), 2))
    level = jax.random.uniform(kb, (b, 1, 1, 1), maxval=max_blur)
    blurred = images
    for k in range(len(passes) - 1):  # the last k <= level wins: a blend of passes k and k + 1
        blurred = jnp.where(level >= k, passes[k] + (level - k) * (passes[k + 1] - passes[k]), blurred)
    sigma = jax.random.uniform(ks, (b, 1, 1, 1), maxval=max_noise)
    return blurred + sigma * jax.random.normal(kn, images.shape)


# ---- training ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ClassifierTraining:
    steps: int = 10000
    batch: int = 64
    # Weights are stored at unit scale (equalised lr), so Adam's step is relative to
    # the weight scale: 0.01 is about what lr 1e-3 is for He-initialised weights.
    lr: float = 0.01
    warmup: int = 200
    # Weight of the margin regression next to the BCE: large enough that margin errors of
    # a few hundredths (the precision near-threshold faces need) still weigh like the BCE.
    margin_weight: float = 50.0
    seed: int = 0


def train_classifier(
    config: ClassifierConfig = ClassifierConfig(),
    training: ClassifierTraining = ClassifierTraining(),
    log: Callable[[str], None] = print,
) -> Classifier:
    """Adam (linear warm-up, cosine decay) on an endless stream of rendered, augmented faces.

    Loss: BCE on the labels plus margin_weight * MSE between logit / LOGIT_SCALE and
    the margin of each attribute.
    """
    clf = Classifier(config, rngs=nnx.Rngs(training.seed))
    graphdef, params = nnx.split(clf)
    # Warm-up never longer than a tenth of the run (short test runs have no room for 200 steps).
    warmup = min(training.warmup, training.steps // 10)
    schedule = optax.warmup_cosine_decay_schedule(0.0, training.lr, warmup, training.steps)
    opt = optax.adam(schedule)
    with jax.numpy_dtype_promotion("standard"):
        opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, images, labels, margins, key):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p)(augment(key, images))
            bce = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))
            return bce + training.margin_weight * jnp.mean(jnp.square(logits / LOGIT_SCALE - margins))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng([training.seed, 1])
    key = jax.random.key(training.seed)
    start, losses = time.monotonic(), []
    for i in range(training.steps):
        images, labels, margins = labelled_batch(rng, training.batch, config)
        params, opt_state, loss = step(params, opt_state, images, labels, margins, jax.random.fold_in(key, i))
        losses.append(loss)
        if (i + 1) % 500 == 0 or i + 1 == training.steps:
            log(f"classifier step {i + 1}/{training.steps}  loss {float(np.mean(jax.device_get(losses))):.4f}  "
                f"{time.monotonic() - start:.0f} s")
            losses = []
    return nnx.merge(graphdef, params)


def accuracy(clf: Classifier, n: int = 2000, seed: int = 12345, batch: int = 500) -> dict[str, float]:
    """Per-attribute accuracy on n fresh rendered faces (no augmentation)."""
    rng = np.random.default_rng([seed, 2])
    correct = np.zeros(len(clf.attributes))
    for start in range(0, n, batch):
        images, labels, _ = labelled_batch(rng, min(batch, n - start), clf.config)
        correct += np.sum(clf.predict(images) == labels.astype(bool), axis=0)
    return {name: float(c / n) for name, c in zip(clf.attributes, correct)}


# ---- storage -----------------------------------------------------------------------
def save_classifier(clf: Classifier, path: str | Path, provenance: dict | None = None, force: bool = False) -> Path:
    """Write params.npz (flat, pickle-free) and classifier.json into `path`, atomically."""
    params = nnx.to_pure_dict(nnx.state(clf, nnx.Param))
    flat = {"/".join(map(str, k)): np.asarray(v) for k, v in _flatten(params)}
    meta = {"format": FORMAT, "version": VERSION, "config": dataclasses.asdict(clf.config),
            "provenance": dict(provenance or {})}
    with atomic_directory(path, force=force) as tmp:
        np.savez(tmp / PARAMS_FILE, **flat)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    return Path(path)


def load_classifier(path: str | Path) -> Classifier:
    """Restore a classifier written by save_classifier; ClassifierError if missing or damaged."""
    path = Path(path)
    try:
        meta = json.loads((path / META_FILE).read_text())
    except FileNotFoundError:
        raise ClassifierError(f"{path} holds no classifier (no {META_FILE})") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ClassifierError(f"{path / META_FILE} is damaged ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ClassifierError(f"{path}: not a {FORMAT} v{VERSION} folder")
    cfg = meta["config"]
    config = ClassifierConfig(**{**cfg, "channels": tuple(cfg["channels"]), "attributes": tuple(cfg["attributes"])})
    clf = nnx.eval_shape(lambda: Classifier(config, rngs=nnx.Rngs(0)))
    graphdef, abstract = nnx.split(clf)
    target = nnx.to_pure_dict(abstract)
    try:
        with np.load(path / PARAMS_FILE, allow_pickle=False) as npz:
            values = {k: npz[k] for k in npz.files}
    except Exception as e:  # zip and format errors all mean a damaged file
        raise ClassifierError(f"{path / PARAMS_FILE} is damaged ({type(e).__name__}: {e})") from None
    expected = dict(_flatten(target))
    names = {"/".join(map(str, k)): k for k in expected}
    if set(values) != set(names):
        raise ClassifierError(f"{path / PARAMS_FILE} does not match its config "
                              f"(missing {sorted(set(names) - set(values))}, extra {sorted(set(values) - set(names))})")
    for name, key in names.items():
        if values[name].shape != expected[key].shape or values[name].dtype != expected[key].dtype:
            raise ClassifierError(f"{path / PARAMS_FILE}: {name} has shape {values[name].shape}, "
                                  f"expected {expected[key].shape}")
        _set(target, key, jnp.asarray(values[name]))
    nnx.replace_by_pure_dict(abstract, target)
    return nnx.merge(graphdef, abstract)


def _flatten(tree, prefix=()):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _flatten(v, (*prefix, k))
        else:
            yield (*prefix, k), v


def _set(tree, key, value):
    for k in key[:-1]:
        tree = tree[k]
    tree[key[-1]] = value


def add_arguments(ap) -> None:
    """The options of `stylejax toyfaces classifier`."""
    ap.add_argument("--out", required=True, help="classifier folder to write")
    ap.add_argument("--steps", type=int, default=ClassifierTraining.steps)
    ap.add_argument("--margin-weight", type=float, default=ClassifierTraining.margin_weight)
    ap.add_argument("--lr", type=float, default=ClassifierTraining.lr)
    ap.add_argument("--force", action="store_true", help="replace an existing folder")


def run(args) -> None:
    start = time.monotonic()
    training = ClassifierTraining(steps=args.steps, margin_weight=args.margin_weight, lr=args.lr)
    clf = train_classifier(training=training)
    acc = accuracy(clf)
    print("validation accuracy: " + "  ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    provenance = {"training": dataclasses.asdict(training), "validation_accuracy": acc,
                  "validation_images": 2000, "wall_seconds": round(time.monotonic() - start),
                  "date": time.strftime("%Y-%m-%d")}
    save_classifier(clf, args.out, provenance, force=args.force)
    print(f"saved {args.out}")
