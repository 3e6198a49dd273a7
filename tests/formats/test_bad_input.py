"""Damaged, foreign and unsupported files fail with a one-line FormatError, never another exception."""

import io
import json
import random
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from _paths import fixture
from _synthetic import rosinality_checkpoint
from _writers import Persistent, ada_generator, ada_snapshot, dumps, legacy_stream, tf_from_loaded, torch_zip

from stylejax.formats import (FormatError, NoGeneratorError, StateDictMismatchError, TruncatedFileError,
                              UnknownFormatError, UnknownKwargError, UnsupportedNetworkError, read_network)
from stylejax.formats.safe_pickle import unpickle

FILES = [('stylegan2-ada', 'tiny', 'network-snapshot.pkl'), ('stylegan2-ada', 'tiny', 'network-snapshot-legacy.pkl'),
         ('stylegan2-ada', 'tiny', 'network-tf.pkl'), ('rosinality', 'tiny', 'checkpoint.pt'),
         ('stylegan2-ada', 'tiny', 'weights.npz')]


def tiny():
    npz = np.load(fixture('stylegan2-ada', 'tiny', 'weights.npz'))
    kwargs = json.loads(fixture('stylegan2-ada', 'tiny', 'config.json').read_text())['init_kwargs']
    return dict(npz), kwargs


def refused(tmp_path, data: bytes, error=FormatError, match=None, network='G_ema', name='bad.bin'):
    """Write `data`, read it, and return the one-line FormatError raised."""
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error, match=match) as info:
        read_network(path, network)
    assert '\n' not in str(info.value)
    return info.value


def legacy_rosinality() -> bytes:
    return legacy_stream(rosinality_checkpoint(tiny()[0]))


@pytest.mark.parametrize('parts', FILES, ids=lambda p: p[-1])
def test_truncated_fixtures(tmp_path, parts):
    data = fixture(*parts).read_bytes()
    for cut in (1, 2, 3, 15, 100, 1000, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1):
        refused(tmp_path, data[:cut], TruncatedFileError if cut < 16 or parts[-1].endswith('.pkl') else FormatError)


def test_truncated_legacy_torch_stream(tmp_path):
    data = legacy_rosinality()
    for cut in (1, 14, 200, len(data) // 2, len(data) - 1):
        refused(tmp_path, data[:cut], TruncatedFileError)


@pytest.mark.parametrize('parts', FILES, ids=lambda p: p[-1])
def test_corrupted_fixtures_fail_cleanly(tmp_path, parts):
    data = bytearray(fixture(*parts).read_bytes())
    rng = random.Random(0)
    path = tmp_path / 'corrupt.bin'
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(rng.choice([1, 8])):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path.write_bytes(damaged)
        try:
            read_network(path)
        except FormatError as e:
            assert '\n' not in str(e)


@pytest.mark.parametrize('data, match', [
    (b'', 'empty'),
    (bytes(random.Random(1).randrange(256) for _ in range(4096)), 'not a StyleGAN2 weight file'),
    (b'\x89PNG\r\n\x1a\n' + bytes(100), 'not a StyleGAN2 weight file'),
    (b'StyleGAN2 weights, honest!\n' * 10, 'not a StyleGAN2 weight file'),
])
def test_foreign_files(tmp_path, data, match):
    refused(tmp_path, data, UnknownFormatError, match)


def test_other_pickles_and_zips(tmp_path):
    refused(tmp_path, dumps([1, 2, 3]), UnknownFormatError, 'list')
    refused(tmp_path, b'\x80\x04K\x01.', UnknownFormatError, 'int')
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr('readme.txt', 'hello')
    refused(tmp_path, archive.getvalue(), UnknownFormatError, 'neither')


def test_pickle_without_generator(tmp_path):
    d = Persistent('Discriminator', {'_parameters': {}, '_buffers': {}, '_modules': {}})
    refused(tmp_path, dumps({'D': d, 'augment_pipe': None}), NoGeneratorError, 'no generator.*D, augment_pipe')


def test_requested_network_missing(tmp_path):
    sd, kwargs = tiny()
    refused(tmp_path, dumps({'G_ema': ada_generator(sd, kwargs)}), NoGeneratorError, "no 'G' network", 'G')
    refused(tmp_path, fixture('rosinality', 'tiny', 'checkpoint.pt').read_bytes(), NoGeneratorError, "'g'", 'G')
    refused(tmp_path, fixture('stylegan2-ada', 'tiny', 'network-snapshot.pkl').read_bytes(), FormatError, 'D', 'D')


def test_stylegan3_generator(tmp_path):
    sd, kwargs = tiny()
    g = ada_generator(sd, kwargs)
    synthesis = g.state['_modules']['synthesis'].state['_modules']
    g.state['_modules']['synthesis'].state['_modules'] = {
        'input': Persistent('SynthesisInput', {}), 'L0_36_512': Persistent('SynthesisLayer', {}), **synthesis}
    refused(tmp_path, dumps({'G_ema': g}), UnsupportedNetworkError, 'StyleGAN3')


@pytest.mark.parametrize('architecture', ['resnet', 'orig'])
def test_other_architectures(tmp_path, architecture):
    sd, kwargs = tiny()
    kwargs = {**kwargs, 'synthesis_kwargs': {**kwargs['synthesis_kwargs'], 'architecture': architecture}}
    refused(tmp_path, ada_snapshot(sd, kwargs), UnsupportedNetworkError, architecture)


def test_state_dict_mismatch_lists_everything(tmp_path):
    sd, kwargs = tiny()
    del sd['synthesis.b8.conv0.bias']
    sd['synthesis.b8.conv0.extra'] = np.zeros(2, np.float32)
    sd['mapping.fc1.weight'] = sd['mapping.fc1.weight'][:, :10]
    error = refused(tmp_path, ada_snapshot(sd, kwargs), StateDictMismatchError)
    for text in ('missing [synthesis.b8.conv0.bias]', 'unexpected [synthesis.b8.conv0.extra]',
                 'mapping.fc1.weight (64, 10) (expected (64, 64))'):
        assert text in str(error)


def test_rosinality_without_latent_avg(tmp_path):
    checkpoint = rosinality_checkpoint(tiny()[0])
    del checkpoint['latent_avg']
    refused(tmp_path, torch_zip(checkpoint), FormatError, 'w_avg is unknown')


def test_torch_checkpoint_without_g_ema(tmp_path):
    refused(tmp_path, torch_zip({'model': {}}), NoGeneratorError, "'g_ema'")


def test_rosinality_unusual_blur_kernel(tmp_path):
    checkpoint = rosinality_checkpoint(tiny()[0])
    checkpoint['g_ema']['convs.0.conv.blur.kernel'].storage.flat[0] = 1
    refused(tmp_path, torch_zip(checkpoint), UnsupportedNetworkError, 'blur')


def test_npz_without_init_kwargs(tmp_path):
    data = fixture('stylegan2-ada', 'tiny', 'weights.npz').read_bytes()
    refused(tmp_path, data, FormatError, 'config.json', name='weights.npz')
    (tmp_path / 'weights.npz').write_bytes(data)
    assert read_network(tmp_path / 'weights.npz', init_kwargs=tiny()[1]).notes[0] == 'init_kwargs given by the caller'


def tf_fixture():
    with open(fixture('stylegan2-ada', 'tiny', 'network-tf.pkl'), 'rb') as f:
        return [tf_from_loaded(net) for net in unpickle(f)]


def test_tf_unknown_static_kwarg(tmp_path):
    G, D, Gs = tf_fixture()
    Gs.static_kwargs = {**Gs.static_kwargs, 'fmap_decay': 0.5}
    refused(tmp_path, dumps((G, D, Gs)), UnknownKwargError, "Unknown TensorFlow kwarg: 'fmap_decay'")


def test_tf_unsupported_variants(tmp_path):
    G, D, Gs = tf_fixture()
    Gs.version = 3
    refused(tmp_path, dumps((G, D, Gs)), UnsupportedNetworkError, 'version 3')
    cases = [('mapping', 'LabelConcat/weight', 'LabelConcat'), ('synthesis', '32x32/ToRGB_lod0/weight', 'ToRGB_lod'),
             ('synthesis', '8x8/Skip/weight', 'resnet')]
    for component, variable, match in cases:
        G, D, Gs = tf_fixture()
        net = Gs.components[component]
        net.variables = [*net.variables, (variable, np.zeros((1, 1), np.float32))]
        refused(tmp_path, dumps((G, D, Gs)), UnsupportedNetworkError, match)


def test_tf_shape_mismatch_with_static_kwargs(tmp_path):
    G, D, Gs = tf_fixture()
    Gs.static_kwargs = {**Gs.static_kwargs, 'fmap_max': 32}
    refused(tmp_path, dumps((G, D, Gs)), StateDictMismatchError, 'mis-shaped')


@pytest.mark.parametrize('key, value', [
    ('resolution', 'big'), ('resolution', 48), ('mapping_layers', np.arange(2)), ('use_noise', np.arange(2)),
    ('architecture', np.arange(2)), ('num_fp16_res', np.arange(2)), ('conv_clamp', 'high'),
    ('resample_kernel', 'abc'), ('fmap_base', 2.5), ('label_size', None)])
def test_tf_malformed_static_kwargs(tmp_path, key, value):
    G, D, Gs = tf_fixture()
    Gs.static_kwargs = {**Gs.static_kwargs, key: value}
    refused(tmp_path, dumps((G, D, Gs)), FormatError)


@pytest.mark.parametrize('shape', [(np.arange(2),), (1, 64, 4, 4), 'abc'])
def test_objects_posing_as_tensors(tmp_path, shape):
    fake = OrderedDict()
    fake.shape = shape
    checkpoint = rosinality_checkpoint(tiny()[0])
    checkpoint['g_ema']['input.input'] = fake
    refused(tmp_path, torch_zip(checkpoint), FormatError)
    sd, kwargs = tiny()
    g = ada_generator(sd, kwargs)
    g.state['_modules']['synthesis'].state['_modules']['b4'].state['_parameters']['const'] = fake
    refused(tmp_path, dumps({'G_ema': g}), FormatError)
