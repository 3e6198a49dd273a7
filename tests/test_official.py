"""The official state dict rule table: exact both ways, strict about mismatches."""

import json

import numpy as np
import pytest

from stylejax import GeneratorConfig
from stylejax.official import StateDictMismatch, params_from_state_dict, state_dict_from_params


@pytest.mark.parametrize("name", ["tiny", "cond", "tiny-clamp"])
def test_round_trip_is_bit_exact(fixtures, name):
    path = fixtures(f"stylegan2-ada/{name}")
    meta = json.loads((path / "config.json").read_text())
    cfg = GeneratorConfig.from_official_kwargs(meta["init_kwargs"])
    with np.load(path / "weights.npz") as npz:
        sd = {k: npz[k] for k in npz.files}
    back = state_dict_from_params(cfg, params_from_state_dict(cfg, sd))
    assert list(back) == [k for k, _ in meta["state_dict_keys"]]  # official order
    for k, v in sd.items():
        assert back[k].dtype == np.float32 and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v, err_msg=k)


def test_mismatch_lists_every_problem(fixtures):
    path = fixtures("stylegan2-ada/tiny")
    cfg = GeneratorConfig.from_official_kwargs(json.loads((path / "config.json").read_text())["init_kwargs"])
    with np.load(path / "weights.npz") as npz:
        sd = {k: npz[k] for k in npz.files}
    del sd["mapping.fc1.bias"]
    sd["synthesis.b8.conv0.weight"] = sd["synthesis.b8.conv0.weight"][:, :5]
    sd["D.b4.fc.weight"] = np.zeros(3, np.float32)
    sd["synthesis.b16.resample_filter"] = np.ones((4, 4), np.float32)
    with pytest.raises(StateDictMismatch) as err:
        params_from_state_dict(cfg, sd)
    msg = str(err.value)
    for needle in ["mapping.fc1.bias", "synthesis.b8.conv0.weight", "D.b4.fc.weight", "b16.resample_filter"]:
        assert needle in msg
