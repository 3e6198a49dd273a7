"""Round trips through every container variant the fixtures do not cover: other configs, storage
dtypes, strided views, legacy torch streams, big-endian records, conditional TensorFlow networks."""

import argparse
import json

import numpy as np
import pytest
from _paths import fixture
from _synthetic import rosinality_checkpoint, tf_networks
from _writers import Tensor, ada_generator, ada_snapshot, dumps, legacy_stream, torch_zip
from test_fixtures import assert_consistent_kwargs, assert_same_state_dict

from stylejax.formats import fill_defaults, read_network


def load(name: str):
    weights = fixture('stylegan2-ada', name, 'weights.npz')
    kwargs = json.loads(weights.with_name('config.json').read_text())['init_kwargs']
    return np.load(weights), kwargs


def write(tmp_path, data: bytes, name='net.bin'):
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


@pytest.mark.parametrize('name', ['cond', 'tiny-clamp', 'small256'])
@pytest.mark.parametrize('protocol', [3, 4])
def test_ada_pickle_other_configs(tmp_path, name, protocol):
    npz, kwargs = load(name)
    result = read_network(write(tmp_path, ada_snapshot(dict(npz), kwargs, protocol)))
    assert_same_state_dict(result.state_dict, npz)
    assert result.init_kwargs == fill_defaults(kwargs)


def test_ada_pickle_strided_views(tmp_path):
    npz, kwargs = load('cond')
    views = ada_snapshot(dict(npz), kwargs, tensor=lambda a: Tensor.view(a) if a.ndim else Tensor.of(a))
    assert_same_state_dict(read_network(write(tmp_path, views)).state_dict, npz)


@pytest.mark.parametrize('tag, dtype', [('HalfStorage', np.float16), ('DoubleStorage', np.float64)])
def test_ada_pickle_storage_dtypes(tmp_path, tag, dtype):
    npz, kwargs = load('tiny-clamp')
    result = read_network(write(tmp_path, ada_snapshot(dict(npz), kwargs, tensor=lambda a: Tensor.of(a, tag, dtype))))
    for key in npz.files:
        assert np.array_equal(result.state_dict[key], npz[key].astype(dtype).astype(np.float32)), key
        assert result.state_dict[key].dtype == np.float32
    assert any(f'{len(npz.files)} {np.dtype(dtype)} entries' in note for note in result.notes)


def test_ada_pickle_bfloat16(tmp_path):
    npz, kwargs = load('tiny-clamp')
    bits = {k: (npz[k].view(np.uint32) >> 16).astype(np.uint16) for k in npz.files}
    data = ada_snapshot(bits, kwargs, tensor=lambda a: Tensor.of(a, 'BFloat16Storage', np.uint16))
    result = read_network(write(tmp_path, data))
    for key in npz.files:
        want = (bits[key].astype(np.uint32) << 16).view(np.float32)
        assert np.array_equal(result.state_dict[key], want), key
        assert np.allclose(result.state_dict[key], npz[key], rtol=1e-2, atol=1e-6)


@pytest.mark.parametrize('name', ['tiny', 'small256'])
@pytest.mark.parametrize('container', ['zip', 'zip-big-endian', 'legacy'])
def test_rosinality_containers(tmp_path, name, container):
    npz, kwargs = load(name)
    checkpoint = rosinality_checkpoint(dict(npz))
    data = {'zip': lambda: torch_zip(checkpoint, root='550000'),
            'zip-big-endian': lambda: torch_zip(checkpoint, byteorder='big'),
            'legacy': lambda: legacy_stream(checkpoint)}[container]()
    result = read_network(write(tmp_path, data, 'model.pkl'))
    assert result.format == 'rosinality'
    assert_same_state_dict(result.state_dict, npz)
    # rosinality never clamps, so small256's conv_clamp=256 cannot be recovered.
    unclamped = {**kwargs, 'synthesis_kwargs': {**kwargs['synthesis_kwargs'], 'conv_clamp': None}}
    assert result.init_kwargs == fill_defaults(unclamped)


def test_rosinality_train_checkpoint_layout(tmp_path):
    npz, _ = load('tiny')
    checkpoint = rosinality_checkpoint(dict(npz))
    checkpoint = {'g': checkpoint['g_ema'], 'd': {}, 'g_ema': checkpoint['g_ema'], 'g_optim': {}, 'd_optim': {},
                  'args': argparse.Namespace(size=32, n_mlp=2), 'ada_aug_p': 0.1,
                  'latent_avg': checkpoint['latent_avg']}
    result = read_network(write(tmp_path, torch_zip(checkpoint)), 'G')
    assert_same_state_dict(result.state_dict, npz)
    assert any('ignored: d, g_ema, g_optim, d_optim, args, ada_aug_p' in note for note in result.notes)


@pytest.mark.parametrize('name', ['tiny', 'cond', 'small256'])
def test_tf_pickle_other_configs(tmp_path, name):
    npz, kwargs = load(name)
    sk = kwargs['synthesis_kwargs']
    static = {'num_channels': 3, 'resolution': kwargs['img_resolution'], 'label_size': kwargs['c_dim'],
              'latent_size': kwargs['z_dim'], 'dlatent_size': kwargs['w_dim'],
              'mapping_layers': kwargs['mapping_kwargs']['num_layers'],
              'fmap_base': sk['channel_base'] // 2, 'fmap_max': sk['channel_max'], 'conv_clamp': sk['conv_clamp']}
    result = read_network(write(tmp_path, dumps(tf_networks(dict(npz), static), protocol=3)))
    assert result.format == 'tf-pickle'
    assert_same_state_dict(result.state_dict, npz)
    assert_consistent_kwargs(result.init_kwargs, kwargs)


def test_stylegan3_stylegan2_config_pickle(tmp_path):
    """stylegan3 passes synthesis kwargs flat, its w_avg_beta default is 0.998, and modules may hold
    non-persistent buffers (absent from state_dict)."""
    npz, kwargs = load('tiny')
    flat = {k: v for k, v in kwargs.items() if k != 'synthesis_kwargs'}
    flat.update(kwargs['synthesis_kwargs'], fused_modconv_default='inference_only')
    g = ada_generator(dict(npz), flat)
    mapping = g.state['_modules']['mapping'].state
    mapping['w_avg_beta'] = 0.998
    mapping['_buffers']['scratch'] = Tensor.of(np.zeros(3))
    mapping['_non_persistent_buffers_set'] = {'scratch'}
    result = read_network(write(tmp_path, dumps({'G': g, 'D': None, 'G_ema': g, 'augment_pipe': None})))
    assert_same_state_dict(result.state_dict, npz)
    assert result.init_kwargs['mapping_kwargs']['w_avg_beta'] == 0.998
    assert result.init_kwargs['synthesis_kwargs']['fused_modconv_default'] == 'inference_only'
    assert result.init_kwargs['synthesis_kwargs']['channel_base'] == 1024
