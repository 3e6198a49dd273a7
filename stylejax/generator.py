"""The generator: generate = render(s) . styles(ws) . truncate . mapping.

`Generator` is the NNX module users hold; its public methods run compiled
(one cached XLA program per method and input shape). `functional(G)` returns
the same maps as pure functions of an explicit parameter state, for jax.jit,
vmap and grad in user code:

    fn, params = stylejax.functional(G)
    render = jax.jit(fn.render, static_argnames="noise_mode")
    img = render(params, s)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

import jax
import jax.numpy as jnp
from flax import nnx

from .config import GeneratorConfig
from .mapping import MappingNetwork, check_psi, truncate
from .style_space import StyleSpace
from .synthesis import SynthesisNetwork


class Generator(nnx.Module):
    def __init__(self, config: GeneratorConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.mapping_network = MappingNetwork(config, rngs=rngs)
        self.synthesis_network = SynthesisNetwork(config, rngs=rngs)

    @property
    def space(self) -> StyleSpace:
        return self.synthesis_network.space

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    @property
    def w_avg(self) -> jnp.ndarray:
        return self.mapping_network.w_avg[...]

    # ---- the four maps (compiled) ---------------------------------------------
    def mapping(self, z, c=None, psi=1.0, cutoff=None) -> jnp.ndarray:
        """z [B, z_dim], c [B, c_dim] or None -> ws [B, num_ws, w_dim]."""
        check_psi(psi)
        return self._compiled("_mapping", z, c, psi, cutoff=cutoff)

    def truncate(self, ws, psi=1.0, cutoff=None) -> jnp.ndarray:
        """Truncate external latents: W [B, w_dim] or W+ [B, num_ws, w_dim] -> W+."""
        check_psi(psi)
        return self._compiled("_truncate", ws, psi, cutoff=cutoff)

    def styles(self, ws) -> jnp.ndarray:
        """W [B, w_dim] or W+ [B, num_ws, w_dim] -> s [B, D_S] (raw affine outputs)."""
        return self._compiled("_styles", ws)

    def render(self, s, noise_mode="const", key=None, noise=None) -> jnp.ndarray:
        """s [B, D_S] -> images [B, H, W, C] (float32, raw range).

        noise_mode: "const" (the stored buffers), "random" (needs `key`),
        "none", or "explicit" (needs `noise`: conv layer name -> [B, R, R] or [R, R]).
        """
        return self._compiled("_render", s, key, noise, noise_mode=noise_mode)

    def render_blocks(self, s, noise_mode="const", key=None, noise=None):
        """s [B, D_S] -> [(x [B, R, R, C_R], img [B, R, R, C]) per block], for analyses."""
        return self._compiled("_render_blocks", s, key, noise, noise_mode=noise_mode)

    def __call__(self, z, c=None, psi=1.0, cutoff=None, noise_mode="const", key=None, noise=None):
        """z [B, z_dim] -> images [B, H, W, C]."""
        check_psi(psi)
        return self._compiled("_generate", z, c, psi, key, noise, cutoff=cutoff, noise_mode=noise_mode)

    def broadcast(self, ws) -> jnp.ndarray:
        """W [B, w_dim] -> W+ [B, num_ws, w_dim]; W+ is checked and returned."""
        w_dim = self.config.w_dim
        if ws.ndim == 2 and ws.shape[1] == w_dim:
            return jnp.broadcast_to(ws[:, None], (ws.shape[0], self.num_ws, w_dim))
        if ws.ndim == 3 and ws.shape[1:] == (self.num_ws, w_dim):
            return ws
        raise ValueError(
            f"latents must be W [B, {w_dim}] or W+ [B, {self.num_ws}, {w_dim}], got {tuple(ws.shape)}"
        )

    # ---- traceable implementations ---------------------------------------------
    def _mapping(self, z, c, psi, cutoff=None):
        return self.mapping_network(z, c, psi, cutoff)

    def _truncate(self, ws, psi, cutoff=None):
        return truncate(self.broadcast(ws), self.w_avg, psi, cutoff)

    def _styles(self, ws):
        return self.synthesis_network.styles(self.broadcast(ws))

    def _render(self, s, key, noise, noise_mode="const", remat=False):
        return self.synthesis_network(s, noise_mode, key, noise, remat)

    def _render_blocks(self, s, key, noise, noise_mode="const"):
        return self.synthesis_network.blocks(s, noise_mode, key, noise)

    def _generate(self, z, c, psi, key, noise, cutoff=None, noise_mode="const"):
        return self._render(self._styles(self._mapping(z, c, psi, cutoff)), key, noise, noise_mode)

    def _compiled(self, method, *args, **static):
        graphdef, state = nnx.split(self)
        return _apply(graphdef, method, state, *args, **static)


@functools.partial(jax.jit, static_argnums=(0, 1), static_argnames=("cutoff", "noise_mode"))
def _apply(graphdef, method, state, *args, **static):
    return getattr(nnx.merge(graphdef, state), method)(*args, **static)


@dataclasses.dataclass(frozen=True)
class GeneratorFn:
    """Pure forms of the generator's maps: each takes the parameter state first.

    Hashable and static, so it can be closed over or passed as a static argument;
    the parameters always travel as an explicit argument.
    """

    graphdef: nnx.GraphDef

    def module(self, params) -> Generator:
        return nnx.merge(self.graphdef, params)

    def mapping(self, params, z, c=None, psi=1.0, cutoff=None):
        check_psi(psi)
        return self.module(params)._mapping(z, c, psi, cutoff)

    def truncate(self, params, ws, psi=1.0, cutoff=None):
        check_psi(psi)
        return self.module(params)._truncate(ws, psi, cutoff)

    def styles(self, params, ws):
        return self.module(params)._styles(ws)

    def render(self, params, s, noise_mode="const", key=None, noise=None, remat=False):
        """remat: rematerialise block activations in the backward pass (less memory)."""
        return self.module(params)._render(s, key, noise, noise_mode, remat)

    def render_blocks(self, params, s, noise_mode="const", key=None, noise=None):
        return self.module(params)._render_blocks(s, key, noise, noise_mode)

    def generate(self, params, z, c=None, psi=1.0, cutoff=None, noise_mode="const", key=None, noise=None):
        check_psi(psi)
        return self.module(params)._generate(z, c, psi, key, noise, cutoff, noise_mode)


@functools.lru_cache(maxsize=64)
def jitted(fn: GeneratorFn, method: str):
    """`jax.jit(getattr(fn, method))`, cached per (graph, method) so that repeated
    calls reuse one compilation per input shape."""
    f = getattr(fn, method)
    names = inspect.signature(f).parameters
    return jax.jit(f, static_argnames=[n for n in ("cutoff", "noise_mode", "remat") if n in names])


def functional(G: Generator) -> tuple[GeneratorFn, nnx.State]:
    """Split a generator into its pure maps and its parameter state."""
    graphdef, params = nnx.split(G)
    return GeneratorFn(graphdef), params


def identity(G: Generator) -> dict:
    """What must match for codes or directions to belong to a generator: its config,
    D_S and a fingerprint of its weights (so two trainings of one architecture differ)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    h.update(np.asarray(G.w_avg, np.float32).tobytes())
    h.update(np.asarray(G.synthesis_network.b4.const[...], np.float32).tobytes())
    return {"config": G.config.to_official_kwargs(), "dim_s": G.space.dim, "weights_sha256": h.hexdigest()[:16]}


def abstract_generator(config: GeneratorConfig) -> Generator:
    """A generator of ShapeDtypeStructs: the parameter tree without computing it."""
    return nnx.eval_shape(lambda: Generator(config, rngs=nnx.Rngs(0)))
