"""Low-level StyleGAN2 operations as plain jnp functions (no Flax here).

All feature maps are channels-last, `[B, H, W, C]`.
"""

from .bias_act import LRELU_GAIN, LRELU_SLOPE, bias_act
from .dense import dense
from .fir import FIR_TAPS, upsample_2x
from .modconv import (
    DEMOD_EPS,
    modulated_conv,
    modulated_conv_reference,
    to_rgb,
    upsample_conv_kernel,
)

__all__ = [
    "DEMOD_EPS",
    "FIR_TAPS",
    "LRELU_GAIN",
    "LRELU_SLOPE",
    "bias_act",
    "dense",
    "modulated_conv",
    "modulated_conv_reference",
    "to_rgb",
    "upsample_2x",
    "upsample_conv_kernel",
]
