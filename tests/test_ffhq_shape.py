"""FFHQ-1024 config-f shapes: weights regenerated from the recipe, styles and the 1024px image."""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from parity import IMG_ATOL, WS_ATOL, nhwc
from stylejax import GeneratorConfig
from stylejax.official import generator_from_params, params_from_state_dict
from stylejax.recipe import recipe_state_dict


@pytest.fixture(scope="module")
def ffhq(request):
    from fixture_paths import fixture_dir

    path = fixture_dir("stylegan2-ada/ffhq-shape")
    if path is None:
        pytest.skip("ffhq-shape needs ../shared/fixtures")
    meta = json.loads((path / "config.json").read_text())
    entries = [(e["key"], tuple(e["shape"])) for e in meta["state_dict"]]
    sd = recipe_state_dict(entries, meta["weight_seed"])
    with np.load(path / "reference.npz") as npz:
        ref = {k: npz[k] for k in npz.files}
    return meta, sd, ref


def test_recipe_reproduces_checksums(ffhq):
    meta, sd, _ = ffhq
    for e in meta["state_dict"]:
        v = sd[e["key"]]
        assert v.shape == tuple(e["shape"])
        assert float(v.astype(np.float64).sum()) == e["sum"], e["key"]
        assert float(np.abs(v.astype(np.float64)).sum()) == e["abs_sum"], e["key"]
        assert v.reshape(-1)[:3].tolist() == e["first"], e["key"]


def test_styles_and_image(ffhq):
    meta, sd, ref = ffhq
    cfg = GeneratorConfig.from_official_kwargs(meta["init_kwargs"])
    G = generator_from_params(cfg, params_from_state_dict(cfg, sd))
    z = jnp.asarray(ref["z"])
    ws = G.mapping(z)
    np.testing.assert_allclose(ws, ref["ws"], atol=WS_ATOL, rtol=0)
    s = G.styles(ws)
    assert s.shape == (1, 9088)
    for layer, v in G.space.unflatten(s).items():
        np.testing.assert_allclose(v, ref[f"styles/synthesis.{layer}"], atol=WS_ATOL, rtol=0, err_msg=layer)
    from stylejax import functional

    fn, params = functional(G)
    t0 = time.perf_counter()
    img = jax.jit(fn.render)(params, s)
    print(f"ffhq-shape jit render: {time.perf_counter() - t0:.1f} s")
    np.testing.assert_allclose(img, nhwc(ref["img_const"]), atol=IMG_ATOL["ffhq-shape"], rtol=0)
