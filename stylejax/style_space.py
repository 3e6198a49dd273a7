"""The layout of style space S: one entry per modulated layer.

S is the concatenation, in execution order, of the raw affine outputs of every
synthesis conv and every toRGB layer (method.md §1). Layers that read the same
entry of ws are adjacent in this order, so S splits into `num_ws` contiguous
segments.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax.numpy as jnp

from .config import GeneratorConfig


@dataclasses.dataclass(frozen=True)
class StyleLayer:
    name: str  # e.g. "b8.conv0", "b32.torgb"
    kind: str  # "conv" | "torgb"
    resolution: int  # output resolution of the layer
    up: int  # 2 for the up-sampling conv0 of blocks above 4x4, else 1
    ws_index: int
    offset: int  # first channel of this layer in the flat code
    width: int  # number of style channels (= the layer's input channels)
    out_channels: int

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.width)


@dataclasses.dataclass(frozen=True)
class StyleSpace:
    layers: tuple[StyleLayer, ...]
    num_ws: int

    @classmethod
    def from_config(cls, cfg: GeneratorConfig) -> "StyleSpace":
        layers = []
        offset = 0

        def add(name, kind, res, up, ws_index, width, out_channels):
            nonlocal offset
            layers.append(StyleLayer(name, kind, res, up, ws_index, offset, width, out_channels))
            offset += width

        c4 = cfg.channels(4)
        add("b4.conv1", "conv", 4, 1, 0, c4, c4)
        add("b4.torgb", "torgb", 4, 1, 1, c4, cfg.img_channels)
        for k, res in enumerate(cfg.block_resolutions[1:]):
            cin, cout = cfg.channels(res // 2), cfg.channels(res)
            add(f"b{res}.conv0", "conv", res, 2, 2 * k + 1, cin, cout)
            add(f"b{res}.conv1", "conv", res, 1, 2 * k + 2, cout, cout)
            add(f"b{res}.torgb", "torgb", res, 1, 2 * k + 3, cout, cfg.img_channels)
        return cls(tuple(layers), cfg.num_ws)

    # ---- sizes ---------------------------------------------------------------
    @property
    def dim(self) -> int:
        return sum(layer.width for layer in self.layers)

    def dim_of(self, kind: str) -> int:
        return sum(layer.width for layer in self.layers if layer.kind == kind)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer(self, name: str) -> StyleLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no style layer {name!r}; layers are {self.names}")

    def ws_segments(self) -> tuple[tuple[int, int, int], ...]:
        """(ws_index, start, stop) of the contiguous S segment each w drives."""
        segments: list[list[int]] = []
        for layer in self.layers:
            if segments and segments[-1][0] == layer.ws_index:
                segments[-1][2] = layer.offset + layer.width
            else:
                segments.append([layer.ws_index, layer.offset, layer.offset + layer.width])
        return tuple(tuple(s) for s in segments)

    # ---- flat <-> per layer --------------------------------------------------
    def check(self, s: jnp.ndarray, what: str = "s") -> None:
        if s.ndim != 2 or s.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape [B, {self.dim}], got {tuple(s.shape)}")

    def unflatten(self, s: jnp.ndarray) -> dict[str, jnp.ndarray]:
        """[..., D_S] -> {layer name: [..., width]}."""
        if s.shape[-1] != self.dim:
            raise ValueError(f"style code has {s.shape[-1]} channels, expected {self.dim}")
        return {layer.name: s[..., layer.slice] for layer in self.layers}

    def flatten(self, per_layer: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
        """{layer name: [..., width]} -> [..., D_S], in layout order."""
        missing = [n for n in self.names if n not in per_layer]
        extra = sorted(set(per_layer) - set(self.names))
        if missing or extra:
            raise ValueError(f"style layers missing {missing}, unexpected {extra}")
        for layer in self.layers:
            if per_layer[layer.name].shape[-1] != layer.width:
                raise ValueError(
                    f"style layer {layer.name} has width {per_layer[layer.name].shape[-1]}, "
                    f"expected {layer.width}"
                )
        return jnp.concatenate([per_layer[n] for n in self.names], axis=-1)

    def layer_ids(self) -> jnp.ndarray:
        """[D_S] int: the layer number of every channel (for per-layer grouping)."""
        return jnp.concatenate(
            [jnp.full((layer.width,), i, jnp.int32) for i, layer in enumerate(self.layers)]
        )
