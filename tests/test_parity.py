"""The port against the official network's reference outputs (fixtures)."""

import jax.numpy as jnp
import numpy as np
import pytest

from parity import IMG_ATOL, WS_ATOL, load, nhwc

CONFIGS = ["tiny", "cond", "tiny-clamp", "small256"]


@pytest.fixture(scope="module", params=CONFIGS)
def case(request):
    from fixture_paths import fixture_dir

    path = fixture_dir(f"stylegan2-ada/{request.param}")
    if path is None:
        pytest.skip(f"fixture {request.param} needs ../shared/fixtures")
    G, ref = load(lambda rel: fixture_dir(rel), request.param)
    c = jnp.asarray(ref["c"]) if "c" in ref else None
    return request.param, G, ref, jnp.asarray(ref["z"]), c


def test_mapping_layers(case):
    name, G, ref, z, c = case
    feats = G.mapping_network.features(z, c)
    for i, f in enumerate(feats):
        np.testing.assert_allclose(f, ref[f"mapping_out/mapping.fc{i}"], atol=WS_ATOL, rtol=0)


@pytest.mark.parametrize("psi, key", [(1.0, "ws"), (0.7, "ws_psi0.7")])
def test_ws(case, psi, key):
    name, G, ref, z, c = case
    np.testing.assert_allclose(G.mapping(z, c, psi=psi), ref[key], atol=WS_ATOL, rtol=0)


@pytest.mark.parametrize("key, prefix", [("ws", "styles"), ("ws_psi0.7", "styles_psi0.7")])
def test_styles_every_layer(case, key, prefix):
    name, G, ref, z, c = case
    per_layer = G.space.unflatten(G.styles(jnp.asarray(ref[key])))
    assert set(f"{prefix}/synthesis.{n}" for n in per_layer) == {k for k in ref if k.startswith(prefix + "/")}
    for layer, s in per_layer.items():
        np.testing.assert_allclose(s, ref[f"{prefix}/synthesis.{layer}"], atol=WS_ATOL, rtol=0, err_msg=layer)


@pytest.mark.parametrize(
    "ws_key, noise_mode, img_key",
    [("ws", "const", "img_const"), ("ws_psi0.7", "const", "img_const_psi0.7"), ("ws", "none", "img_none")],
)
def test_images(case, ws_key, noise_mode, img_key):
    name, G, ref, z, c = case
    img = G.render(G.styles(jnp.asarray(ref[ws_key])), noise_mode=noise_mode)
    assert img.shape == nhwc(ref[img_key]).shape and img.dtype == jnp.float32
    np.testing.assert_allclose(img, nhwc(ref[img_key]), atol=IMG_ATOL[name], rtol=0)


def test_end_to_end_call(case):
    name, G, ref, z, c = case
    np.testing.assert_allclose(G(z, c, psi=0.7), nhwc(ref["img_const_psi0.7"]), atol=IMG_ATOL[name], rtol=0)


def test_block_outputs(case):
    name, G, ref, z, c = case
    blocks = G.render_blocks(G.styles(jnp.asarray(ref["ws"])))
    checked = 0
    for res, (x, img) in zip(G.config.block_resolutions, blocks):
        if f"block_x/b{res}" not in ref:
            continue
        np.testing.assert_allclose(x, nhwc(ref[f"block_x/b{res}"]), atol=IMG_ATOL[name], rtol=0)
        np.testing.assert_allclose(img, nhwc(ref[f"block_img/b{res}"]), atol=IMG_ATOL[name], rtol=0)
        checked += 1
    assert checked >= 3
