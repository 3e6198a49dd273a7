"""Style intervention (method.md §3-4): per face, optimise the mixing coefficients lam.

    ds(lam) = ds_z + lam * (ds_n - ds_z)       s* = s + ds(lam)
    L = w_pix L_pix + w_attr L_attr + w_reg L_reg

lam = 0 is the realistic but entangled Z (or W) translation, lam = 1 the sparse
S translation. All faces of a batch are optimised together: the loss of one
face is vmapped over the batch with the generator parameters shared, and
one jitted step updates every face. By default a Python loop drives that
step: on the 2-core CPU it ran 2.5-2.9x faster than the same steps under
`lax.scan` (benchmarks/bench_intervention.py), whose while-loop body XLA's
CPU backend executes less efficiently; `loop="scan"` selects the single-program
variant.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .generator import Generator, GeneratorFn, functional, jitted

GRANULARITIES = ("channel", "layer", "scalar")
FACES_AXIS = "faces"


@dataclasses.dataclass(frozen=True)
class InterventionConfig:
    """How lam is optimised. Hashable: one compiled step per distinct config."""

    steps: int = 100
    learning_rate: float = 1e-2
    optimizer: optax.GradientTransformation | None = None  # None: Adam(learning_rate)
    w_pix: float = 3.0  # of 1, 3, 10 the best on an earlier toyfaces checkpoint (README: the claim)
    w_attr: float = 1.0
    w_reg: float = 0.01
    granularity: str = "channel"  # "channel" | "layer" | "scalar"
    init: float = 0.0
    project: bool = False  # clip lam to [0, 1] after every step
    noise_mode: str = "const"  # the same noise for original and edit: "const" or "none"
    remat: bool = False  # rematerialise synthesis blocks in the backward pass
    loop: str = "python"  # "python": a loop over one jitted step; "scan": lax.scan over steps

    def __post_init__(self):
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if self.noise_mode not in ("const", "none"):
            raise ValueError(f"noise_mode must be 'const' or 'none', got {self.noise_mode!r}")
        if self.loop not in ("python", "scan"):
            raise ValueError(f"loop must be 'python' or 'scan', got {self.loop!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")

    def transform(self) -> optax.GradientTransformation:
        return self.optimizer if self.optimizer is not None else optax.adam(self.learning_rate)


class Faces(NamedTuple):
    """One batch of faces; every field has a leading face axis B."""

    s: jnp.ndarray  # [B, D] original style codes
    ds_z: jnp.ndarray  # [B, D] Z (or W) translation in S
    ds_n: jnp.ndarray  # [B, D] sparse S translation
    mask: jnp.ndarray  # [B, H, W] 1 inside the region to edit
    original: jnp.ndarray  # [B, H, W, C] render(s)


@dataclasses.dataclass
class Result:
    lam: np.ndarray  # [B, P] the optimised coefficients (P = D, layers or 1)
    s_edit: np.ndarray  # [B, D] s*
    images: np.ndarray  # [B, H, W, C] render(s*)
    original: np.ndarray  # [B, H, W, C] render(s)
    loss_history: np.ndarray  # [steps, B]
    flagged: np.ndarray  # [B] bool: the loss became non-finite; lam is the last finite one
    metrics: dict[str, np.ndarray]  # name -> [B], see `edit_metrics`


# ---- the per-face maths ---------------------------------------------------------


def num_coefficients(granularity: str, dim: int, num_layers: int) -> int:
    return {"channel": dim, "layer": num_layers, "scalar": 1}[granularity]


def expand_lam(lam: jnp.ndarray, granularity: str, layer_ids: jnp.ndarray) -> jnp.ndarray:
    """lam [..., P] -> [..., D]: one coefficient per style channel."""
    if granularity == "channel":
        return lam
    if granularity == "layer":
        return jnp.take(lam, layer_ids, axis=-1)
    return jnp.broadcast_to(lam, (*lam.shape[:-1], layer_ids.shape[0]))


def mix(lam_full: jnp.ndarray, ds_z: jnp.ndarray, ds_n: jnp.ndarray) -> jnp.ndarray:
    """ds(lam) = ds_z + lam (ds_n - ds_z); all [..., D]."""
    return ds_z + lam_full * (ds_n - ds_z)


def cosine(a: jnp.ndarray, b: jnp.ndarray, eps: float = 1e-12) -> jnp.ndarray:
    """Cosine similarity over the last axis."""
    return jnp.sum(a * b, -1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1) + eps)


def masked_change(a: jnp.ndarray, b: jnp.ndarray, weight: jnp.ndarray) -> jnp.ndarray:
    """Mean squared change of images [..., H, W, C] over pixels weighted by [..., H, W]."""
    sq = jnp.mean(jnp.square(a - b), axis=-1)
    return jnp.sum(sq * weight, axis=(-2, -1)) / jnp.maximum(jnp.sum(weight, axis=(-2, -1)), 1.0)


def face_loss(lam, params, face: Faces, sigma, layer_ids, fn: GeneratorFn, cfg: InterventionConfig):
    """The loss of one face (no batch axis on `face` fields or lam [P])."""
    ds = mix(expand_lam(lam, cfg.granularity, layer_ids), face.ds_z, face.ds_n)
    img = fn.render(params, (face.s + ds)[None], noise_mode=cfg.noise_mode, remat=cfg.remat)[0]
    outside = (1.0 - face.mask)[..., None]
    l_pix = jnp.mean(jnp.square(outside * (img - face.original))) / jnp.mean(outside)
    l_attr = 1.0 - cosine(ds / sigma, face.ds_n / sigma)
    l_reg = jnp.mean(jnp.square(lam))
    return cfg.w_pix * l_pix + cfg.w_attr * l_attr + cfg.w_reg * l_reg


class _Carry(NamedTuple):
    lam: jnp.ndarray  # [B, P] the next lam to evaluate
    opt_state: optax.OptState
    last_good: jnp.ndarray  # [B, P] the last lam whose loss and gradient were finite
    flagged: jnp.ndarray  # [B] bool


def _step(carry: _Carry, params, faces, sigma, layer_ids, fn, cfg, opt) -> tuple[_Carry, jnp.ndarray]:
    loss_and_grad = jax.value_and_grad(face_loss)
    # Only lam and the face data are mapped; the generator parameters are shared.
    loss, grads = jax.vmap(lambda lam, face: loss_and_grad(lam, params, face, sigma, layer_ids, fn, cfg))(
        carry.lam, faces
    )
    # optax mixes its int32 step count with floats: allow that even when the
    # caller runs with strict dtype promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = jax.vmap(opt.update)(grads, carry.opt_state, carry.lam)
    lam = optax.apply_updates(carry.lam, updates)
    if cfg.project:
        lam = jnp.clip(lam, 0.0, 1.0)
    # A face whose loss (or update) is not finite goes back to its last lam with
    # a finite loss and is frozen from then on; the other faces are untouched.
    active = ~carry.flagged
    evaluated_ok = jnp.isfinite(loss) & jnp.all(jnp.isfinite(grads), axis=-1)
    step_ok = active & evaluated_ok & jnp.all(jnp.isfinite(lam), axis=-1)
    revert = active & ~evaluated_ok
    pick = lambda cond: lambda new, old: jnp.where(cond.reshape(cond.shape + (1,) * (new.ndim - 1)), new, old)
    good = pick(step_ok)(carry.lam, carry.last_good)
    lam = pick(revert)(carry.last_good, pick(step_ok)(lam, carry.lam))
    # A flagged face never steps again, so its optimiser state needs no restoring.
    opt_state = jax.tree.map(pick(step_ok), opt_state, carry.opt_state)
    return _Carry(lam, opt_state, good, carry.flagged | (active & ~step_ok)), loss


def _initial_carry(opt: optax.GradientTransformation, lam0: jnp.ndarray) -> _Carry:
    with jax.numpy_dtype_promotion("standard"):
        opt_state = jax.vmap(opt.init)(lam0)
    return _Carry(lam0, opt_state, lam0, jnp.zeros(lam0.shape[0], bool))


def init_carry(opt: optax.GradientTransformation, lam0: jnp.ndarray) -> _Carry:
    """The carry before the first step, every leaf placed like lam0 [B, P] on the face axis."""
    carry = _initial_carry(opt, lam0)
    sharding = getattr(lam0, "sharding", None)  # numpy input has none
    if isinstance(sharding, NamedSharding):
        # Eagerly created leaves land on one device while the step returns them
        # sharded; left there, the second step would compile a second program.
        spec = lambda a: PartitionSpec(*sharding.spec[: min(1, a.ndim)], *([None] * (a.ndim - 1)))
        carry = jax.tree.map(lambda a: jax.device_put(a, NamedSharding(sharding.mesh, spec(a))), carry)
    return carry


@functools.lru_cache(maxsize=16)
def compiled_optimise(fn: GeneratorFn, cfg: InterventionConfig) -> Callable:
    """The whole optimisation of one batch as one jitted function (cached per fn, cfg).

    (params, faces, sigma, layer_ids, lam0) -> (lam, last_good, flagged, loss_history [steps, B])
    """
    opt = cfg.transform()

    def run(params, faces, sigma, layer_ids, lam0):
        step = lambda c, _: _step(c, params, faces, sigma, layer_ids, fn, cfg, opt)
        carry, history = jax.lax.scan(step, _initial_carry(opt, lam0), None, length=cfg.steps)
        return carry.lam, carry.last_good, carry.flagged, history

    return jax.jit(run)


@functools.lru_cache(maxsize=16)
def compiled_step(fn: GeneratorFn, cfg: InterventionConfig) -> Callable:
    """One optimisation step as a jitted function, for driving steps from Python.

    (carry, params, faces, sigma, layer_ids) -> (carry, loss [B]); start from
    `init_carry(cfg.transform(), lam0)`. `compiled_optimise` is the same loop
    under lax.scan.
    """
    opt = cfg.transform()
    return jax.jit(lambda c, params, faces, sigma, layer_ids: _step(c, params, faces, sigma, layer_ids, fn, cfg, opt))


def optimise(fn, cfg: InterventionConfig, params, faces, sigma, layer_ids, lam0):
    """Run cfg.steps steps -> (lam [B, P], last_good [B, P], flagged [B], loss_history [steps, B]).

    `lam` is the result of the last update (not yet evaluated); `last_good` the
    last lam whose loss was finite, the fallback if `lam` renders non-finite.
    """
    if cfg.loop == "scan":
        return compiled_optimise(fn, cfg)(params, faces, sigma, layer_ids, lam0)
    step = compiled_step(fn, cfg)
    carry, history = init_carry(cfg.transform(), lam0), []
    for _ in range(cfg.steps):
        carry, loss = step(carry, params, faces, sigma, layer_ids)
        history.append(loss)
    return carry.lam, carry.last_good, carry.flagged, jnp.stack(history)


# ---- batch API ----------------------------------------------------------------------


def edit_metrics(edited, original, mask, ds, ds_n, sigma) -> dict[str, jnp.ndarray]:
    """method.md §4 for a batch: images [B, H, W, C], mask [B, H, W], deltas [B, D]."""
    return {
        "outside_change": masked_change(edited, original, 1.0 - mask),
        "inside_change": masked_change(edited, original, mask),
        "cos_ds_dsn": cosine(ds / sigma, ds_n / sigma),
    }


def even_batches(n: int, batch: int) -> list[range]:
    """Positions 0..n-1 in ceil(n / batch) batches of one size <= batch, so a job compiles
    one optimisation step however n and batch relate; positions >= n in the last batch
    are padding (callers repeat their last item there)."""
    if n == 0:
        return []
    count = -(-n // batch)
    size = -(-n // count)
    return [range(i * size, (i + 1) * size) for i in range(count)]


def intervene(
    generator: Generator | tuple[GeneratorFn, object],
    s,
    ds_z,
    ds_n,
    mask,
    config: InterventionConfig = InterventionConfig(),
    *,
    sigma=None,
    scorer: Callable[[jnp.ndarray], jnp.ndarray] | None = None,
    mesh: Mesh | None | str = "auto",
) -> Result:
    """Optimise lam for a batch of faces.

    s, ds_z [B, D]; ds_n [D] (shared) or [B, D]; mask [H, W] (shared) or
    [B, H, W], binary, 1 inside the region to edit; sigma [D] per-channel std
    of S (standardises the cosine; default 1). scorer: images [B, H, W, C] ->
    attribute scores [B], adds "attribute_change". mesh: a 1-D device mesh to
    shard the faces over; "auto" (default) uses all local devices when there
    are several, None keeps everything on the default device.
    """
    fn, params = functional(generator) if isinstance(generator, Generator) else generator
    space = fn.module(params).space
    faces_in, sigma = _check_inputs(space.dim, s, ds_z, ds_n, mask, sigma)
    b = faces_in[0].shape[0]
    render = jitted(fn, "render")
    original = render(params, faces_in[0], noise_mode=config.noise_mode)
    if original.shape[1:3] != faces_in[3].shape[1:]:
        raise ValueError(f"mask must be {original.shape[1:3]} (the image size), got {faces_in[3].shape[1:]}")
    faces = Faces(*faces_in, original)
    layer_ids = space.layer_ids()
    p = num_coefficients(config.granularity, space.dim, len(space.layers))
    lam0 = jnp.full((b, p), config.init, jnp.float32)

    mesh = default_mesh() if isinstance(mesh, str) and mesh == "auto" else mesh
    if mesh is not None:
        faces, lam0 = shard_faces(mesh, faces, lam0)
        params, sigma, layer_ids = replicate(mesh, (params, sigma, layer_ids))
    lam, last_good, flagged, history = optimise(fn, config, params, faces, sigma, layer_ids, lam0)
    faces, lam, last_good, flagged, history = jax.tree.map(
        lambda a: a[:b], (faces, lam, last_good, flagged, history.T)
    )
    result = _finish(fn, params, faces, sigma, layer_ids, lam, config, scorer)
    broken = ~np.all(np.isfinite(result.images.reshape(b, -1)), axis=1)
    if broken.any():  # the final update went astray: fall back to the last finite lam
        lam = jnp.where(jnp.asarray(broken)[:, None], last_good, lam)
        result = _finish(fn, params, faces, sigma, layer_ids, lam, config, scorer)
        flagged = flagged | broken
    result.loss_history = np.asarray(history).T
    result.flagged = np.asarray(flagged)
    return result


def translate(generator, s, ds_z, ds_n, mask, lam: float, *, sigma=None, scorer=None,
              config: InterventionConfig = InterventionConfig()) -> Result:
    """Apply a fixed lam to every channel (0: Z translation, 1: S translation), no optimisation."""
    fn, params = functional(generator) if isinstance(generator, Generator) else generator
    space = fn.module(params).space
    (s, ds_z, ds_n, mask), sigma = _check_inputs(space.dim, s, ds_z, ds_n, mask, sigma)
    original = jitted(fn, "render")(params, s, noise_mode=config.noise_mode)
    faces = Faces(s, ds_z, ds_n, mask, original)
    cfg = dataclasses.replace(config, granularity="scalar")
    lam_arr = jnp.full((s.shape[0], 1), lam, jnp.float32)
    result = _finish(fn, params, faces, sigma, space.layer_ids(), lam_arr, cfg, scorer)
    result.loss_history = np.zeros((0, s.shape[0]), np.float32)
    result.flagged = np.zeros(s.shape[0], bool)
    return result


def _finish(fn, params, faces: Faces, sigma, layer_ids, lam, config, scorer) -> Result:
    """Render the edits and measure them."""
    ds = mix(expand_lam(lam, config.granularity, layer_ids), faces.ds_z, faces.ds_n)
    s_edit = faces.s + ds
    edited = jitted(fn, "render")(params, s_edit, noise_mode=config.noise_mode)
    metrics = edit_metrics(edited, faces.original, faces.mask, ds, faces.ds_n, sigma)
    if scorer is not None:
        metrics["attribute_change"] = scorer(edited) - scorer(faces.original)
    to_np = lambda a: np.asarray(jax.device_get(a))
    return Result(
        lam=to_np(lam), s_edit=to_np(s_edit), images=to_np(edited), original=to_np(faces.original),
        loss_history=None, flagged=None, metrics={k: to_np(v) for k, v in metrics.items()},
    )


def _check_inputs(dim, s, ds_z, ds_n, mask, sigma):
    s, ds_z, ds_n, mask = (jnp.asarray(a, jnp.float32) for a in (s, ds_z, ds_n, mask))
    if s.ndim != 2 or s.shape[1] != dim:
        raise ValueError(f"s must have shape [B, {dim}], got {tuple(s.shape)}")
    b = s.shape[0]
    if ds_z.shape != s.shape:
        raise ValueError(f"ds_z must have shape {tuple(s.shape)}, got {tuple(ds_z.shape)}")
    if ds_n.shape == (dim,):
        ds_n = jnp.broadcast_to(ds_n, s.shape)
    if ds_n.shape != s.shape:
        raise ValueError(f"ds_n must have shape [{dim}] or {tuple(s.shape)}, got {tuple(ds_n.shape)}")
    if mask.ndim == 2:
        mask = jnp.broadcast_to(mask, (b, *mask.shape))
    if mask.ndim != 3 or mask.shape[0] != b:
        raise ValueError(f"mask must have shape [H, W] or [{b}, H, W], got {tuple(mask.shape)}")
    if not bool(jnp.all((mask == 0) | (mask == 1))):
        raise ValueError("mask must be binary (0 outside, 1 inside the region to edit)")
    sigma = jnp.ones((dim,), jnp.float32) if sigma is None else jnp.asarray(sigma, jnp.float32)
    if sigma.shape != (dim,) or not bool(jnp.all(sigma > 0)):
        raise ValueError(f"sigma must be a positive array of shape [{dim}]")
    return (s, ds_z, ds_n, mask), sigma


# ---- devices --------------------------------------------------------------------------


def default_mesh() -> Mesh | None:
    """A 1-D mesh over all local devices, or None with a single device."""
    devices = jax.local_devices()
    return Mesh(np.array(devices), (FACES_AXIS,)) if len(devices) > 1 else None


def shard_faces(mesh: Mesh, faces: Faces, lam0):
    """Pad the face axis to a multiple of the mesh size and shard it over the mesh."""
    n = mesh.devices.size
    b = lam0.shape[0]
    pad = -b % n
    # Padding repeats the last face; its results are dropped afterwards.
    grow = lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]) if pad else a
    sharding = lambda a: NamedSharding(mesh, PartitionSpec(FACES_AXIS, *([None] * (a.ndim - 1))))
    put = lambda a: jax.device_put(grow(a), sharding(a))
    return jax.tree.map(put, faces), put(lam0)


def replicate(mesh: Mesh, tree):
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
