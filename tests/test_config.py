import json

import pytest

from stylejax import ConfigError, GeneratorConfig, StyleSpace

ADA = ["tiny", "cond", "tiny-clamp", "small256", "ffhq-shape"]


def load_config(fixtures, name):
    return json.loads((fixtures(f"stylegan2-ada/{name}") / "config.json").read_text())


@pytest.mark.parametrize("name", ADA)
def test_layout_matches_official(fixtures, name):
    meta = load_config(fixtures, name)
    cfg = GeneratorConfig.from_official_kwargs(meta["init_kwargs"])
    assert cfg.num_ws == meta["num_ws"]
    assert list(cfg.block_resolutions) == meta["block_resolutions"]
    space = StyleSpace.from_config(cfg)
    got = [(f"synthesis.{l.name}", l.kind, l.resolution, l.up, l.ws_index, l.offset, l.width, l.out_channels)
           for l in space.layers]
    want = [(l["name"], l["kind"], l["resolution"], l["up"], l["ws_index"], l["style_offset"],
             l["affine_out_features"], l["out_channels"]) for l in meta["style_layers"]]
    assert got == want
    assert space.dim == meta["style_space"]["dim_total"]
    assert space.dim_of("conv") == meta["style_space"]["dim_conv"]


def test_ffhq_config_f_style_space():
    space = StyleSpace.from_config(GeneratorConfig())
    assert (len(space.layers), space.dim, space.dim_of("conv"), space.dim_of("torgb")) == (26, 9088, 6048, 3040)
    assert space.num_ws == 18
    # Adjacent layers sharing a w form contiguous segments covering S exactly once.
    segments = space.ws_segments()
    assert [s[0] for s in segments] == list(range(18))
    assert segments[0][1] == 0 and segments[-1][2] == 9088
    assert all(a[2] == b[1] for a, b in zip(segments, segments[1:]))


def test_round_trip_official_kwargs(fixtures):
    cfg = GeneratorConfig.from_official_kwargs(load_config(fixtures, "cond")["init_kwargs"])
    assert GeneratorConfig.from_official_kwargs(cfg.to_official_kwargs()) == cfg


BASE = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"synthesis_kwargs": {"architecture": "resnet"}}, "architecture"),
        ({"synthesis_kwargs": {"resample_filter": [1, 2, 1]}}, "resample_filter"),
        ({"synthesis_kwargs": {"use_noise": False}}, "use_noise"),
        ({"synthesis_kwargs": {"foo": 1}}, "foo"),
        ({"mapping_kwargs": {"activation": "relu"}}, "activation"),
        ({"img_resolution": 48}, "power of two"),
        ({"extra_kwarg": 1}, "extra_kwarg"),
    ],
)
def test_refuses_what_it_cannot_represent(change, message):
    with pytest.raises(ConfigError, match=message):
        GeneratorConfig.from_official_kwargs({**BASE, **change})


def test_runtime_only_kwargs_accepted():
    cfg = GeneratorConfig.from_official_kwargs(
        {**BASE, "synthesis_kwargs": {"num_fp16_res": 4, "conv_clamp": 256, "channels_last": False}}
    )
    assert cfg.synthesis.num_fp16_res == 4 and cfg.synthesis.conv_clamp == 256.0
