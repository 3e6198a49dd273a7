"""The stylegan2-ada-pytorch Generator layout: default kwargs, state_dict keys and shapes, channel rule."""

import math
import numbers

import numpy as np

from .errors import FormatError, UnsupportedNetworkError

# Constructor defaults of ada's Generator, MappingNetwork and SynthesisNetwork (formats.md §3.3).
MAPPING_DEFAULTS = {'num_layers': 8, 'lr_multiplier': 0.01, 'w_avg_beta': 0.995}
SYNTHESIS_DEFAULTS = {'channel_base': 32768, 'channel_max': 512, 'num_fp16_res': 0,
                      'conv_clamp': None, 'architecture': 'skip'}
GENERATOR_ARGS = ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels')
DEFAULT_RESAMPLE_TAPS = (1, 3, 3, 1)


def fill_defaults(init_kwargs: dict) -> dict:
    """Copy of `init_kwargs` with absent mapping/synthesis entries set to ada's constructor defaults."""
    missing = [k for k in GENERATOR_ARGS if k not in init_kwargs]
    if missing:
        raise FormatError(f'init_kwargs lack {", ".join(missing)}')
    for group in ('mapping_kwargs', 'synthesis_kwargs'):
        if not isinstance(init_kwargs.get(group, {}), dict):
            raise FormatError(f'init_kwargs {group} is a {type(init_kwargs[group]).__name__}, not a dict')
    return {**init_kwargs,
            'mapping_kwargs': {**MAPPING_DEFAULTS, **init_kwargs.get('mapping_kwargs', {})},
            'synthesis_kwargs': {**SYNTHESIS_DEFAULTS, **init_kwargs.get('synthesis_kwargs', {})}}


def resample_filter(taps=DEFAULT_RESAMPLE_TAPS) -> np.ndarray:
    """ada's `resample_filter` buffer: outer(taps, taps) / sum(taps)**2, float32 [len(taps), len(taps)]."""
    f = np.asarray(taps, dtype=np.float32)
    return np.outer(f, f) / np.float32(f.sum() ** 2)


def block_resolutions(img_resolution: int) -> list[int]:
    """[4, 8, ..., img_resolution]."""
    return [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]


def channels(channel_base: int, channel_max: int, img_resolution: int) -> dict[int, int]:
    """ada's width rule: resolution R -> min(channel_base // R, channel_max)."""
    return {r: min(channel_base // r, channel_max) for r in block_resolutions(img_resolution)}


def fit_channel_kwargs(widths: dict[int, int]) -> tuple[int, int]:
    """(channel_base, channel_max) for which `channels()` gives exactly `widths` (resolution -> width).

    channel_max = the largest width always works if anything does; channel_base is the smallest value
    satisfying every resolution's constraint (a width below the maximum pins channel_base // R).
    """
    cmax = max(widths.values())
    low = max(w * r for r, w in widths.items())
    high = min(((w + 1) * r - 1 for r, w in widths.items() if w < cmax), default=low)
    if low > high:
        raise UnsupportedNetworkError(
            f'channel widths {dict(sorted(widths.items()))} do not follow ada\'s rule '
            f'min(channel_base // R, channel_max) for any channel_base, channel_max')
    return low, cmax


def fp16_notes(init_kwargs: dict) -> list[str]:
    """A note when the network ran its top resolutions in fp16: stored weights are float32 regardless."""
    n = init_kwargs['synthesis_kwargs'].get('num_fp16_res')
    if isinstance(n, numbers.Integral) and n > 0:
        return [f'num_fp16_res={n}: weights are stored as float32, fp16 is a run-time cast only']
    return []


def noise_index(resolution: int, layer: str) -> int:
    """Index of a conv layer's noise input / TF `noise{j}`: b4.conv1 -> 0, bR.conv0 -> 2log2(R)-5, bR.conv1 -> +1."""
    return 2 * int(math.log2(resolution)) - (5 if layer == 'conv0' else 4)


def _int(kwargs: dict, key: str, minimum: int = 1) -> int:
    value = kwargs.get(key)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise FormatError(f'init_kwargs {key}={value!r:.40} is not an integer >= {minimum}')
    return int(value)


def _optional_int(kwargs: dict, key: str, default: int) -> int:
    return default if kwargs.get(key) is None else _int(kwargs, key)


def expected_state_dict_shapes(init_kwargs: dict) -> dict[str, tuple[int, ...]]:
    """ada key -> shape of `Generator(**init_kwargs).state_dict()`, in torch state_dict order.

    Synthesis first (per block: const [C4,4,4] on b4, resample_filter, conv0/conv1 layers, torgb), then
    mapping (w_avg [w_dim], embed [F, c_dim] when c_dim > 0, fc{i} [out, in]). Only the 'skip'
    architecture is described.
    """
    kw = fill_defaults(init_kwargs)
    mk, sk = kw['mapping_kwargs'], kw['synthesis_kwargs']
    z_dim, c_dim = _int(kw, 'z_dim', 0), _int(kw, 'c_dim', 0)
    w_dim, res, img_ch = _int(kw, 'w_dim'), _int(kw, 'img_resolution', 4), _int(kw, 'img_channels')
    if res & (res - 1):
        raise FormatError(f'init_kwargs img_resolution={res} is not a power of two')
    if not (isinstance(sk['architecture'], str) and sk['architecture'] == 'skip'):
        raise UnsupportedNetworkError(f"architecture {sk['architecture']!r:.40} is not supported (only 'skip')")
    taps = sk.get('resample_filter', DEFAULT_RESAMPLE_TAPS)
    if not isinstance(taps, (list, tuple)) or not taps or not all(isinstance(t, numbers.Real) for t in taps):
        raise FormatError(f'init_kwargs resample_filter={taps!r:.40} is not a list of taps')
    filt = (len(taps), len(taps))
    noise = sk.get('use_noise', True)
    if not isinstance(noise, bool):
        raise FormatError(f'init_kwargs use_noise={noise!r:.40} is not a bool')
    ch = channels(_int(sk, 'channel_base'), _int(sk, 'channel_max'), res)
    _int(sk, 'num_fp16_res', 0)  # no effect on shapes, but consumers rely on its type
    clamp = sk['conv_clamp']
    if clamp is not None and (not isinstance(clamp, numbers.Real) or isinstance(clamp, bool)):
        raise FormatError(f'init_kwargs conv_clamp={clamp!r:.40} is not a number or None')

    shapes = {}
    for r in block_resolutions(res):
        block = f'synthesis.b{r}'
        if r == 4:
            shapes[f'{block}.const'] = (ch[4], 4, 4)
        shapes[f'{block}.resample_filter'] = filt
        convs = [('conv1', ch[4], ch[4])] if r == 4 else [('conv0', ch[r // 2], ch[r]), ('conv1', ch[r], ch[r])]
        for name, cin, cout in convs:
            p = f'{block}.{name}'
            shapes[f'{p}.weight'] = (cout, cin, 3, 3)
            if noise:
                shapes[f'{p}.noise_strength'] = ()
            shapes[f'{p}.bias'] = (cout,)
            shapes[f'{p}.resample_filter'] = filt
            if noise:
                shapes[f'{p}.noise_const'] = (r, r)
            shapes[f'{p}.affine.weight'] = (cin, w_dim)
            shapes[f'{p}.affine.bias'] = (cin,)
        shapes[f'{block}.torgb.weight'] = (img_ch, ch[r], 1, 1)
        shapes[f'{block}.torgb.bias'] = (img_ch,)
        shapes[f'{block}.torgb.affine.weight'] = (ch[r], w_dim)
        shapes[f'{block}.torgb.affine.bias'] = (ch[r],)

    if mk['w_avg_beta'] is not None:
        shapes['mapping.w_avg'] = (w_dim,)
    embed = 0
    if c_dim:
        embed = _optional_int(mk, 'embed_features', w_dim)
        shapes['mapping.embed.weight'] = (embed, c_dim)
        shapes['mapping.embed.bias'] = (embed,)
    layers = _int(mk, 'num_layers')
    features = [z_dim + embed] + [_optional_int(mk, 'layer_features', w_dim)] * (layers - 1) + [w_dim]
    for i in range(layers):
        shapes[f'mapping.fc{i}.weight'] = (features[i + 1], features[i])
        shapes[f'mapping.fc{i}.bias'] = (features[i + 1],)
    return shapes
