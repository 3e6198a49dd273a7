"""rosinality stylegan2-pytorch checkpoints (`.pt`: torch zip container or legacy stream), formats.md §4, §6."""

import math
import re

import numpy as np

from .errors import FormatError, NoGeneratorError, UnsupportedNetworkError
from .layout import expected_state_dict_shapes, fill_defaults, fit_channel_kwargs, noise_index, resample_filter
from .rules import DROP_AXES01, DROP_AXIS0, Rule, Transform, apply_rules
from .source_network import SourceNetwork

NETWORKS = {'G_ema': 'g_ema', 'G': 'g'}
# rosinality does not store lr_mlp; its Generator's default.
LR_MLP = 0.01

_LAYER = r'synthesis\.b(?P<res>\d+)\.(?P<layer>conv0|conv1|torgb)\.'


def _module(m) -> str:
    """rosinality module of an ada layer: conv1/to_rgb1 at 4x4, then convs.{2k}, convs.{2k+1}, to_rgbs.{k}."""
    res, layer = int(m['res']), m['layer']
    if res == 4:
        return 'conv1' if layer == 'conv1' else 'to_rgb1'
    k = int(math.log2(res)) - 3
    return {'conv0': f'convs.{2 * k}', 'conv1': f'convs.{2 * k + 1}', 'torgb': f'to_rgbs.{k}'}[layer]


_NOISE_STRENGTH = Transform(lambda s: (1,), lambda x: x.reshape(()))  # [1] -> 0-d
_RGB_BIAS = Transform(lambda s: (1, *s, 1, 1), lambda x: x.reshape(x.shape[1]))  # [1, C, 1, 1] -> [C]

RULES = (
    Rule(r'mapping\.w_avg', lambda m: 'latent_avg'),
    Rule(r'mapping\.fc(\d+)\.(weight|bias)', lambda m: f'style.{int(m[1]) + 1}.{m[2]}'),
    Rule(r'synthesis\.b4\.const', lambda m: 'input.input', DROP_AXIS0),
    # Modulated conv kernels carry a leading batch axis; no flip, also for up-sampling convs.
    Rule(_LAYER + r'weight', lambda m: f'{_module(m)}.conv.weight', DROP_AXIS0),
    Rule(_LAYER + r'affine\.(?P<p>weight|bias)', lambda m: f'{_module(m)}.conv.modulation.{m["p"]}'),
    Rule(_LAYER + r'noise_strength', lambda m: f'{_module(m)}.noise.weight', _NOISE_STRENGTH),
    Rule(_LAYER + r'noise_const', lambda m: f'noises.noise_{noise_index(int(m["res"]), m["layer"])}', DROP_AXES01),
    Rule(r'synthesis\.b(?P<res>\d+)\.(?P<layer>torgb)\.bias', lambda m: f'{_module(m)}.bias', _RGB_BIAS),
    Rule(_LAYER + r'bias', lambda m: f'{_module(m)}.activate.bias'),
)
KERNELS = r'convs\.\d+\.conv\.blur\.kernel|to_rgbs\.\d+\.upsample\.kernel'
IGNORE = ((KERNELS, 'rosinality FIR kernels (checked equal to ada resample_filter x 4)'),)


def _dims(g: dict, name: str, ndim: int) -> tuple[int, ...]:
    shape = getattr(g.get(name), 'shape', None)
    if not (isinstance(shape, tuple) and len(shape) == ndim and all(type(d) is int for d in shape)):
        raise FormatError(f'rosinality checkpoint lacks {name} with {ndim} dimensions')
    return tuple(shape)


def infer_init_kwargs(g: dict) -> dict:
    """ada Generator kwargs of a rosinality `g_ema` state dict; every width comes from tensor shapes
    (rosinality's own width table is not stored and cannot be trusted, formats.md §4.3)."""
    style_dim = _dims(g, 'style.1.weight', 2)[1]
    n_mlp = sum(1 for k in g if re.fullmatch(r'style\.\d+\.weight', str(k)))
    n_up = len({m[1] for k in g if (m := re.fullmatch(r'to_rgbs\.(\d+)\.conv\.weight', str(k)))})
    widths = {4: _dims(g, 'input.input', 4)[1]}
    widths.update({8 << k: _dims(g, f'convs.{2 * k}.conv.weight', 5)[1] for k in range(n_up)})
    channel_base, channel_max = fit_channel_kwargs(widths)
    return fill_defaults({
        'z_dim': style_dim, 'c_dim': 0, 'w_dim': style_dim, 'img_resolution': 4 << n_up,
        'img_channels': _dims(g, 'to_rgb1.conv.weight', 5)[1],
        'mapping_kwargs': {'num_layers': n_mlp, 'lr_multiplier': LR_MLP},
        'synthesis_kwargs': {'channel_base': channel_base, 'channel_max': channel_max,
                             'num_fp16_res': 0, 'conv_clamp': None},
    })


def _check_kernels(g: dict) -> None:
    """rosinality stores the effective up-sampling filter (ada's filter x 4); only [1,3,3,1] is supported."""
    want = resample_filter() * np.float32(4)
    for name in g:
        if re.fullmatch(KERNELS, str(name)):
            shape = getattr(g[name], 'shape', None)
            if not (isinstance(shape, tuple) and shape == want.shape and np.array_equal(np.asarray(g[name]), want)):
                raise UnsupportedNetworkError(f'{name} is not the [1,3,3,1] filter; other kernels are not supported')


def convert_rosinality(top, network: str = 'G_ema') -> SourceNetwork:
    """SourceNetwork of a loaded rosinality checkpoint: `g_ema` ('G_ema') or `g` ('G'), with
    `latent_avg` as mapping.w_avg."""
    if network not in NETWORKS:
        raise NoGeneratorError(f'network must be one of {tuple(NETWORKS)}, not {network!r}')
    key = NETWORKS[network]
    if not isinstance(top, dict) or not isinstance(top.get('g_ema'), dict):
        keys = ', '.join(map(str, top)) if isinstance(top, dict) else type(top).__name__
        raise NoGeneratorError(f"torch checkpoint holds no rosinality generator 'g_ema' ({keys})")
    if not isinstance(top.get(key), dict):
        raise NoGeneratorError(f'rosinality checkpoint has no {key!r} generator')
    if 'latent_avg' not in top:
        raise FormatError('rosinality checkpoint has no latent_avg (a train.py checkpoint?), so mapping.w_avg is '
                          'unknown; rosinality only estimates it at run time by sampling')
    g = top[key]
    if 'latent_avg' in g:
        raise FormatError(f'{key} has an entry named latent_avg')
    _check_kernels(g)
    init_kwargs = infer_init_kwargs(g)
    rules = (*RULES, Rule(r'.*\.resample_filter', value=resample_filter()))
    state_dict, notes = apply_rules(expected_state_dict_shapes(init_kwargs), {**g, 'latent_avg': top['latent_avg']},
                                    rules, IGNORE)
    others = [str(k) for k in top if k not in (key, 'latent_avg')]
    return SourceNetwork('rosinality', init_kwargs, state_dict, (
        f'network: {key}', 'mapping.w_avg from latent_avg',
        f'lr_multiplier not stored: assumed rosinality default lr_mlp={LR_MLP}',
        'w_avg_beta not stored: ada default assumed', *([f'ignored: {", ".join(others)}'] if others else []), *notes))
