"""The fixture files read bit-identically to the ada state dicts, and the layout reproduces every config."""

import json
import re

import numpy as np
import pytest
from _paths import fixture

from stylejax.formats import expected_state_dict_shapes, fill_defaults, read_network
from stylejax.formats import rosinality
from stylejax.formats.layout import fit_channel_kwargs
from stylejax.formats.errors import UnsupportedNetworkError

CONFIGS = ('tiny', 'cond', 'tiny-clamp', 'small256', 'ffhq-shape')
TINY_FILES = ('network-snapshot.pkl', 'network-snapshot-legacy.pkl', 'network-tf.pkl')
# Entries of ada-converted TF kwargs that the fixtures' init_kwargs leave at ada's constructor default.
ADA_DEFAULTS = {'activation': 'lrelu', 'resample_filter': [1, 3, 3, 1], 'use_noise': True}


def config(name: str) -> dict:
    return json.loads(fixture('stylegan2-ada', name, 'config.json').read_text())


def assert_same_state_dict(state_dict: dict, expected) -> None:
    assert list(state_dict) == list(expected.files)
    for key in expected.files:
        got, want = state_dict[key], expected[key]
        assert got.dtype == np.float32 and got.shape == want.shape, key
        assert got.flags.c_contiguous and got.flags.writeable, key
        assert np.array_equal(got, want), key


def assert_consistent_kwargs(got: dict, reference: dict) -> None:
    """Equal after default filling; extra entries (TF conversions spell out more) must mean the default."""
    want = fill_defaults(reference)
    for group in ('mapping_kwargs', 'synthesis_kwargs'):
        extra = {k: v for k, v in got[group].items() if k not in want[group]}
        for k, v in extra.items():
            if k in ('embed_features', 'layer_features'):  # ada's None means w_dim
                assert v in (None, want['w_dim']), (group, k, v)
            else:
                assert v == ADA_DEFAULTS[k], (group, k, v)
        assert {k: v for k, v in got[group].items() if k in want[group]} == want[group]
    assert {k: v for k, v in got.items() if not k.endswith('_kwargs')} == \
           {k: v for k, v in want.items() if not k.endswith('_kwargs')}


@pytest.mark.parametrize('filename', TINY_FILES)
@pytest.mark.parametrize('network', ['G_ema', 'G'])
def test_tiny_network_files(filename, network):
    result = read_network(fixture('stylegan2-ada', 'tiny', filename), network)
    assert result.format == ('tf-pickle' if filename == 'network-tf.pkl' else 'ada-pickle')
    assert_same_state_dict(result.state_dict, np.load(fixture('stylegan2-ada', 'tiny', 'weights.npz')))
    assert_consistent_kwargs(result.init_kwargs, config('tiny')['init_kwargs'])
    assert result.state_dict['synthesis.b4.conv1.noise_strength'].shape == ()
    assert any('ignored' in note for note in result.notes)


def test_ada_pickle_kwargs_are_exact():
    result = read_network(fixture('stylegan2-ada', 'tiny', 'network-snapshot.pkl'))
    assert result.init_kwargs == fill_defaults(config('tiny')['init_kwargs'])


def test_rosinality_checkpoint_equals_ada_tiny():
    result = read_network(fixture('rosinality', 'tiny', 'checkpoint.pt'))
    assert result.format == 'rosinality'
    assert_same_state_dict(result.state_dict, np.load(fixture('stylegan2-ada', 'tiny', 'weights.npz')))
    assert result.init_kwargs == fill_defaults(config('tiny')['init_kwargs'])
    assert any('lr_mlp=0.01' in note for note in result.notes)


def test_rosinality_rule_table_matches_fixture_key_mapping():
    mapping = json.loads(fixture('rosinality', 'tiny', 'config.json').read_text())['key_mapping']
    assert len(mapping) == 63
    for entry in mapping:
        rule, match = next((r, m) for r in rosinality.RULES if (m := re.fullmatch(r.pattern, entry['ada'])))
        assert rule.source(match) == entry['rosinality'], entry


@pytest.mark.parametrize('name', ['tiny', 'cond', 'tiny-clamp', 'small256'])
def test_npz_with_config_beside_it(name):
    path = fixture('stylegan2-ada', name, 'weights.npz')
    result = read_network(path)
    assert result.format == 'npz'
    assert_same_state_dict(result.state_dict, np.load(path))
    assert result.init_kwargs == fill_defaults(config(name)['init_kwargs'])


@pytest.mark.parametrize('name', CONFIGS)
def test_expected_shapes_reproduce_config_keys(name):
    cfg = config(name)
    listed = cfg.get('state_dict_keys') or [(e['key'], e['shape']) for e in cfg['state_dict']]
    assert [(k, tuple(s)) for k, s in listed] == list(expected_state_dict_shapes(cfg['init_kwargs']).items())


def test_fit_channel_kwargs():
    assert fit_channel_kwargs({4: 64, 8: 64, 16: 64, 32: 32}) == (1024, 64)
    ffhq = {4 << i: c for i, c in enumerate([512] * 5 + [256, 128, 64, 32])}
    assert fit_channel_kwargs(ffhq) == (32768, 512)
    with pytest.raises(UnsupportedNetworkError, match='channel_base'):
        fit_channel_kwargs({4: 64, 8: 16, 16: 32})
