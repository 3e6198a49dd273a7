"""The common result of every reader."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SourceNetwork:
    """A StyleGAN2 generator in the stylegan2-ada-pytorch layout.

    format: 'ada-pickle' | 'tf-pickle' | 'rosinality' | 'npz'.
    init_kwargs: ada `Generator` kwargs (z_dim, c_dim, w_dim, img_resolution, img_channels,
        mapping_kwargs, synthesis_kwargs), with the constructor defaults filled in.
    state_dict: ada `G_ema.state_dict()` keys in torch order; C-contiguous float32 arrays, 0-d for
        `noise_strength`, e.g. `synthesis.b8.conv0.weight` [C_8, C_4, 3, 3].
    notes: what was assumed, converted or ignored while reading.
    """

    format: str
    init_kwargs: dict
    state_dict: dict[str, np.ndarray]
    notes: tuple[str, ...] = ()
