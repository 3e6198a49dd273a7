"""NVIDIA TensorFlow network pickles `(G, D, Gs)`: stylegan2 and stylegan2-ada TF (formats.md §5, §6)."""

import numbers

import numpy as np

from .errors import FormatError, NoGeneratorError, UnknownKwargError, UnsupportedNetworkError
from .layout import expected_state_dict_shapes, fill_defaults, fp16_notes, noise_index, resample_filter
from .rules import DROP_AXES01, DROP_AXIS0, TRANSPOSE, Rule, Transform, apply_rules
from .safe_pickle import TFNetwork
from .source_network import SourceNetwork

VERSIONS = (4, 5)
NETWORKS = {'G_ema': 2, 'Gs': 2, 'G': 0}  # position in the (G, D, Gs) tuple

# TF static kwarg -> (ada kwarg group, ada kwarg, default assumed when absent), formats.md §5.4.
KWARGS = {
    'latent_size': (None, 'z_dim', 512),
    'label_size': (None, 'c_dim', 0),
    'dlatent_size': (None, 'w_dim', 512),
    'resolution': (None, 'img_resolution', 1024),
    'num_channels': (None, 'img_channels', 3),
    'mapping_layers': ('mapping_kwargs', 'num_layers', 8),
    'label_fmaps': ('mapping_kwargs', 'embed_features', None),
    'mapping_fmaps': ('mapping_kwargs', 'layer_features', None),
    'mapping_nonlinearity': ('mapping_kwargs', 'activation', 'lrelu'),
    'mapping_lrmul': ('mapping_kwargs', 'lr_multiplier', 0.01),
    'w_avg_beta': ('mapping_kwargs', 'w_avg_beta', 0.995),
    'fmap_base': ('synthesis_kwargs', 'channel_base', 16384),
    'fmap_max': ('synthesis_kwargs', 'channel_max', 512),
    'num_fp16_res': ('synthesis_kwargs', 'num_fp16_res', 0),
    'conv_clamp': ('synthesis_kwargs', 'conv_clamp', None),
    'architecture': ('synthesis_kwargs', 'architecture', 'skip'),
    'resample_kernel': ('synthesis_kwargs', 'resample_filter', [1, 3, 3, 1]),
    'use_noise': ('synthesis_kwargs', 'use_noise', True),
    'nonlinearity': ('synthesis_kwargs', 'activation', 'lrelu'),
}
IGNORED_KWARGS = ('truncation_psi', 'truncation_cutoff', 'style_mixing_prob', 'structure')

_LAYER = r'synthesis\.b(?P<res>\d+)\.(?P<layer>conv0|conv1|torgb)\.'
_SCOPES = {'conv0': 'Conv0_up', 'conv1': 'Conv1', 'torgb': 'ToRGB'}


def _scope(m) -> str:
    res, layer = int(m['res']), m['layer']
    name = 'Conv' if (res, layer) == (4, 'conv1') else _SCOPES[layer]
    return f'synthesis/{res}x{res}/{name}'


# TF kernels are [kh, kw, in, out]; ada's are [out, in, kh, kw].
_KERNEL = Transform(lambda s: (s[2], s[3], s[1], s[0]), lambda x: x.transpose(3, 2, 0, 1))
# TF stores up-sampling kernels spatially flipped relative to ada (formats.md §6.2).
_KERNEL_UP = Transform(_KERNEL.source_shape, lambda x: x[::-1, ::-1].transpose(3, 2, 0, 1))
# TF stores mod_bias without the +1 added at run time; the reference converters add it in float32.
_PLUS_ONE = Transform(lambda s: s, lambda x: x + np.float32(1))

RULES = (
    Rule(r'mapping\.w_avg', lambda m: 'dlatent_avg'),
    Rule(r'mapping\.embed\.weight', lambda m: 'mapping/LabelEmbed/weight', TRANSPOSE),
    Rule(r'mapping\.embed\.bias', lambda m: 'mapping/LabelEmbed/bias'),
    Rule(r'mapping\.fc(\d+)\.weight', lambda m: f'mapping/Dense{m[1]}/weight', TRANSPOSE),
    Rule(r'mapping\.fc(\d+)\.bias', lambda m: f'mapping/Dense{m[1]}/bias'),
    Rule(r'synthesis\.b4\.const', lambda m: 'synthesis/4x4/Const/const', DROP_AXIS0),
    Rule(r'synthesis\.b(?P<res>\d+)\.(?P<layer>conv0)\.weight', lambda m: f'{_scope(m)}/weight', _KERNEL_UP),
    Rule(_LAYER + r'weight', lambda m: f'{_scope(m)}/weight', _KERNEL),
    Rule(_LAYER + r'affine\.weight', lambda m: f'{_scope(m)}/mod_weight', TRANSPOSE),
    Rule(_LAYER + r'affine\.bias', lambda m: f'{_scope(m)}/mod_bias', _PLUS_ONE),
    Rule(_LAYER + r'noise_strength', lambda m: f'{_scope(m)}/noise_strength'),
    Rule(_LAYER + r'noise_const', lambda m: f'synthesis/noise{noise_index(int(m["res"]), m["layer"])}', DROP_AXES01),
    Rule(_LAYER + r'bias', lambda m: f'{_scope(m)}/bias'),
)
IGNORE = (('lod', 'progressive-growing level of detail (0 in a final network)'),)


def _state(net, what: str) -> dict:
    if not isinstance(net, TFNetwork) or not isinstance(net.state, dict):
        raise FormatError(f'{what} is not a TensorFlow Network')
    version = net.state.get('version')
    if not (type(version) is int and version in VERSIONS):
        raise UnsupportedNetworkError(f'{what} has TensorFlow Network version {version!r}; only 4 and 5 are supported')
    return net.state


def _variables(state: dict, prefix: str, what: str, out: dict) -> None:
    variables = state.get('variables')
    if not isinstance(variables, list):
        raise FormatError(f'{what} has no variable list')
    for item in variables:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise FormatError(f'{what} has a malformed variable entry')
        name = prefix + item[0]
        if name in out:
            raise FormatError(f'{what} has two variables named {name!r}')
        out[name] = item[1]


def _source(gs: dict) -> dict:
    """Gs's variables under ada-converter names: own ones bare, components' as `<component>/<local name>`."""
    source = {}
    _variables(gs, '', 'Gs', source)
    components = gs.get('components')
    if not isinstance(components, dict):
        raise FormatError('Gs has no components')
    for key, component in components.items():
        _variables(_state(component, f'component {key!r}'), f'{key}/', f'component {key!r}', source)
    return source


def _refuse_unsupported(source: dict) -> None:
    for name in source:
        if name.startswith('mapping/LabelConcat/'):
            raise UnsupportedNetworkError('LabelConcat conditioning (NVIDIA stylegan2) has no ada equivalent')
        if '/ToRGB_lod' in name:
            raise UnsupportedNetworkError('progressive-growing generators (ToRGB_lod layers) are not supported')
        if name.endswith('/Skip/weight'):
            raise UnsupportedNetworkError("architecture 'resnet' is not supported (only 'skip')")


def init_kwargs_from_static(static: dict, source: dict) -> dict:
    """ada Generator kwargs from TF `static_kwargs` (formats.md §5.4); `source` supplies widths the
    kwargs leave to version-dependent code defaults."""
    unknown = [str(k) for k in static if k not in KWARGS and k not in IGNORED_KWARGS]
    if unknown:
        raise UnknownKwargError(f'Unknown TensorFlow kwarg: {", ".join(map(repr, unknown))}')
    for tf_key in ('latent_size', 'label_size', 'mapping_layers', 'fmap_base'):  # used below
        value = static.get(tf_key, KWARGS[tf_key][2])
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise FormatError(f'TensorFlow kwarg {tf_key}={value!r:.40} is not an integer')
    kw, mk, sk = {}, {}, {}
    for tf_key, (group, key, default) in KWARGS.items():
        {None: kw, 'mapping_kwargs': mk, 'synthesis_kwargs': sk}[group][key] = static.get(tf_key, default)
    sk['channel_base'] = 2 * int(sk['channel_base'])  # TF's fmap_base / 2^stage == ada's channel_base / R
    if mk['w_avg_beta'] is None:
        mk['w_avg_beta'] = 1  # TF's None (no tracking) is ada's beta 1
    if mk['embed_features'] is None and kw['c_dim']:
        mk['embed_features'] = kw['z_dim']  # TF's None means latent_size, ada's would mean w_dim
    dense0 = source.get('mapping/Dense0/weight')
    if 'mapping_fmaps' not in static and isinstance(dense0, np.ndarray) and dense0.ndim == 2 and mk['num_layers'] != 1:
        # The absent default differs between NVIDIA stylegan2 (512) and stylegan2-ada TF (dlatent_size).
        mk['layer_features'] = int(dense0.shape[1])
    return fill_defaults({**kw, 'mapping_kwargs': mk, 'synthesis_kwargs': sk})


def convert_tf_pickle(networks: tuple, network: str = 'G_ema') -> SourceNetwork:
    """SourceNetwork of `Gs` (network 'G_ema' or 'Gs') or `G` ('G') of an unpickled (G, D, Gs) tuple."""
    if network not in NETWORKS:
        raise NoGeneratorError(f'network must be one of {tuple(NETWORKS)}, not {network!r}')
    name = 'Gs' if NETWORKS[network] == 2 else 'G'
    gs = _state(networks[NETWORKS[network]], name)
    static = gs.get('static_kwargs')
    if not isinstance(static, dict):
        raise FormatError(f'{name} has no static_kwargs')
    source = _source(gs)
    _refuse_unsupported(source)
    init_kwargs = init_kwargs_from_static(static, source)
    expected = expected_state_dict_shapes(init_kwargs)
    taps = init_kwargs['synthesis_kwargs']['resample_filter']
    rules = (*RULES, Rule(r'.*\.resample_filter', value=resample_filter(taps)))
    state_dict, notes = apply_rules(expected, source, rules, IGNORE)
    notes = [f'network: {name} (TensorFlow Network version {gs["version"]})',
             f'ignored: {", ".join(n for n in ("G", "D", "Gs") if n != name)}', *notes]
    return SourceNetwork('tf-pickle', init_kwargs, state_dict, (*notes, *fp16_notes(init_kwargs)))
