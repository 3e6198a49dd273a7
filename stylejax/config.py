"""Generator configuration: a frozen mirror of the official StyleGAN2 kwargs.

`GeneratorConfig.from_official_kwargs` takes the `init_kwargs` of a
stylegan2-ada-pytorch `Generator` (as stored in network pickles and in the
fixtures' `config.json`) and refuses anything this port cannot represent.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

# Keyword arguments that only steer how the official code *runs* (memory
# format, fused kernels); they do not change the function the network
# computes, so they are accepted and dropped. (num_fp16_res is kept, as a record.)
_RUNTIME_ONLY_SYNTHESIS_KWARGS = frozenset({"channels_last", "fp16_channels_last", "fused_modconv_default"})
_SUPPORTED_FILTER = (1, 3, 3, 1)


class ConfigError(ValueError):
    """The official kwargs describe a network this port does not support."""


@dataclasses.dataclass(frozen=True)
class MappingConfig:
    num_layers: int = 8
    lr_multiplier: float = 0.01
    layer_features: int | None = None  # None: w_dim
    embed_features: int | None = None  # None: w_dim (conditional models only)
    w_avg_beta: float = 0.995  # training only; kept for round trips


@dataclasses.dataclass(frozen=True)
class SynthesisConfig:
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    architecture: str = "skip"
    num_fp16_res: int = 0  # recorded only: stylejax runs these layers in fp32


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping: MappingConfig = MappingConfig()
    synthesis: SynthesisConfig = SynthesisConfig()

    def __post_init__(self):
        r = self.img_resolution
        if r < 4 or r & (r - 1):
            raise ConfigError(f"img_resolution must be a power of two >= 4, got {r}")
        for name in ("z_dim", "w_dim", "img_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.c_dim < 0:
            raise ConfigError(f"c_dim must be >= 0, got {self.c_dim}")
        if self.mapping.num_layers < 1:
            raise ConfigError("mapping.num_layers must be >= 1")
        # Spell the defaults out so equal networks have equal configs.
        if self.mapping.layer_features is None or (self.c_dim and self.mapping.embed_features is None):
            filled = dataclasses.replace(
                self.mapping,
                layer_features=self.mapping.layer_features or self.w_dim,
                embed_features=(self.mapping.embed_features or self.w_dim) if self.c_dim else None,
            )
            object.__setattr__(self, "mapping", filled)
        if self.synthesis.architecture != "skip":
            raise ConfigError(
                f"synthesis architecture {self.synthesis.architecture!r} is not supported "
                "(only 'skip', the StyleGAN2 config-e/f default)"
            )

    # ---- derived structure -------------------------------------------------
    @property
    def resolution_log2(self) -> int:
        return int(math.log2(self.img_resolution))

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(2, self.resolution_log2 + 1))

    @property
    def num_ws(self) -> int:
        # One w per conv plus one for the last toRGB (official convention).
        return 2 * self.resolution_log2 - 2

    def channels(self, resolution: int) -> int:
        """Feature channels at a block resolution (ada's rule)."""
        return min(self.synthesis.channel_base // resolution, self.synthesis.channel_max)

    # ---- official kwargs -----------------------------------------------------
    @classmethod
    def from_official_kwargs(cls, kwargs: Mapping[str, Any]) -> "GeneratorConfig":
        """Build from a stylegan2-ada-pytorch `Generator` `init_kwargs` dict."""
        kwargs = dict(kwargs)
        mapping_kw = dict(kwargs.pop("mapping_kwargs", None) or {})
        synthesis_kw = dict(kwargs.pop("synthesis_kwargs", None) or {})
        top = {}
        for name in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
            if name not in kwargs:
                raise ConfigError(f"official kwargs lack {name!r}")
            top[name] = int(kwargs.pop(name))
        if kwargs:
            raise ConfigError(f"unsupported generator kwargs: {sorted(kwargs)}")

        _expect(mapping_kw, "activation", "lrelu", "mapping")
        mapping_kw.pop("num_ws", None)  # derived from img_resolution
        mapping = _build(MappingConfig, mapping_kw, "mapping_kwargs")

        _expect(synthesis_kw, "activation", "lrelu", "synthesis")
        _expect(synthesis_kw, "use_noise", True, "synthesis")
        _expect(synthesis_kw, "kernel_size", 3, "synthesis")
        filt = synthesis_kw.pop("resample_filter", None)
        if filt is not None and tuple(int(v) for v in filt) != _SUPPORTED_FILTER:
            raise ConfigError(f"resample_filter {list(filt)} is not supported (only [1, 3, 3, 1])")
        for name in _RUNTIME_ONLY_SYNTHESIS_KWARGS:
            synthesis_kw.pop(name, None)
        if synthesis_kw.get("conv_clamp") is not None:
            synthesis_kw["conv_clamp"] = float(synthesis_kw["conv_clamp"])
        synthesis = _build(SynthesisConfig, synthesis_kw, "synthesis_kwargs")
        return cls(**top, mapping=mapping, synthesis=synthesis)

    def to_official_kwargs(self) -> dict[str, Any]:
        """The inverse of `from_official_kwargs` (JSON-serialisable)."""
        out = {
            name: getattr(self, name)
            for name in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
        }
        out["mapping_kwargs"] = dataclasses.asdict(self.mapping)
        out["synthesis_kwargs"] = dataclasses.asdict(self.synthesis)
        return out


def _expect(kw: dict, name: str, value: Any, where: str) -> None:
    if name in kw:
        got = kw.pop(name)
        if got != value:
            raise ConfigError(f"{where} {name}={got!r} is not supported (only {value!r})")


def _build(cls, kw: dict, where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(kw) - names)
    if unknown:
        raise ConfigError(f"unsupported {where}: {unknown}")
    return cls(**kw)
