"""Helpers shared by the parity tests: load a fixture network and its references."""

import numpy as np

from stylejax.official import load_official

# Tolerances (fixtures README): ws and styles 1e-5; images 1e-4, 2e-4 for the
# deep configs whose images reach |11|.
WS_ATOL = 1e-5
IMG_ATOL = {"tiny": 1e-4, "cond": 1e-4, "tiny-clamp": 1e-4, "small256": 2e-4, "ffhq-shape": 2e-4}


def load(fixtures, name):
    path = fixtures(f"stylegan2-ada/{name}")
    G = load_official(path / "weights.npz")
    with np.load(path / "reference.npz") as npz:
        ref = {k: npz[k] for k in npz.files}
    return G, ref


def nhwc(img_nchw):
    return np.transpose(img_nchw, (0, 2, 3, 1))
