"""stylejax: StyleGAN2 in JAX/Flax NNX with style space S as the interface."""

__version__ = "0.1.0"

from .config import ConfigError, GeneratorConfig, MappingConfig, SynthesisConfig
from .generator import Generator, GeneratorFn, abstract_generator, functional
from .mapping import mix_styles, truncate
from .style_space import StyleLayer, StyleSpace
from .checkpoint import load, save

__all__ = [
    "ConfigError",
    "Generator",
    "GeneratorConfig",
    "GeneratorFn",
    "MappingConfig",
    "StyleLayer",
    "StyleSpace",
    "SynthesisConfig",
    "abstract_generator",
    "functional",
    "load",
    "save",
    "mix_styles",
    "truncate",
]
