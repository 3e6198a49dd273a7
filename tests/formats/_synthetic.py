"""Synthetic weight files for tests: an ada state dict re-expressed in other layouts, written here
independently of the readers' rule tables (from formats.md §6)."""

import math
from collections import OrderedDict

import numpy as np
from _writers import Tensor, tf_network

KERNEL = np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32) / 16


def block_resolutions(sd: dict) -> list[int]:
    return sorted(int(k.split('.')[1][1:]) for k in sd if k.endswith('torgb.bias'))


def _layers(sd: dict):
    """(ada module, rosinality module, TF scope, noise index) of every modulated layer."""
    yield 'synthesis.b4.conv1', 'conv1', '4x4/Conv', 0
    yield 'synthesis.b4.torgb', 'to_rgb1', '4x4/ToRGB', None
    for k, r in enumerate(block_resolutions(sd)[1:]):
        yield f'synthesis.b{r}.conv0', f'convs.{2 * k}', f'{r}x{r}/Conv0_up', 2 * k + 1
        yield f'synthesis.b{r}.conv1', f'convs.{2 * k + 1}', f'{r}x{r}/Conv1', 2 * k + 2
        yield f'synthesis.b{r}.torgb', f'to_rgbs.{k}', f'{r}x{r}/ToRGB', None


def rosinality_checkpoint(sd: dict) -> dict:
    """{'g_ema': OrderedDict, 'latent_avg'} as rosinality's converter saves it, weights as strided views."""
    g = OrderedDict()
    n_mlp = sum(1 for k in sd if k.startswith('mapping.fc') and k.endswith('.weight'))
    for i in range(n_mlp):
        g[f'style.{i + 1}.weight'] = Tensor.view(sd[f'mapping.fc{i}.weight'])
        g[f'style.{i + 1}.bias'] = Tensor.of(sd[f'mapping.fc{i}.bias'])
    g['input.input'] = Tensor.of(sd['synthesis.b4.const'][None])
    for ada, ros, _, noise in _layers(sd):
        g[f'{ros}.conv.weight'] = Tensor.view(sd[f'{ada}.weight'][None], perm=(0, 2, 1, 4, 3))
        g[f'{ros}.conv.modulation.weight'] = Tensor.view(sd[f'{ada}.affine.weight'])
        g[f'{ros}.conv.modulation.bias'] = Tensor.of(sd[f'{ada}.affine.bias'])
        if noise is None:
            g[f'{ros}.bias'] = Tensor.of(sd[f'{ada}.bias'].reshape(1, -1, 1, 1))
            if ros != 'to_rgb1':
                g[f'{ros}.upsample.kernel'] = Tensor.of(KERNEL)
        else:
            g[f'{ros}.noise.weight'] = Tensor.of(sd[f'{ada}.noise_strength'].reshape(1))
            g[f'{ros}.activate.bias'] = Tensor.of(sd[f'{ada}.bias'])
            if ada.endswith('conv0'):
                g[f'{ros}.conv.blur.kernel'] = Tensor.of(KERNEL)
    for ada, _, _, noise in _layers(sd):
        if noise is not None:
            g[f'noises.noise_{noise}'] = Tensor.of(sd[f'{ada}.noise_const'][None, None])
    return {'g_ema': g, 'latent_avg': Tensor.of(sd['mapping.w_avg'])}


def tf_networks(sd: dict, static_kwargs: dict, version: int = 5) -> tuple:
    """(G, D, Gs) TensorFlow Network stand-ins holding `sd` in the TF layout."""
    mapping = []
    if 'mapping.embed.weight' in sd:
        mapping += [('LabelEmbed/weight', sd['mapping.embed.weight'].T.copy()),
                    ('LabelEmbed/bias', sd['mapping.embed.bias'])]
    n_mlp = sum(1 for k in sd if k.startswith('mapping.fc') and k.endswith('.weight'))
    for i in range(n_mlp):
        mapping += [(f'Dense{i}/weight', sd[f'mapping.fc{i}.weight'].T.copy()),
                    (f'Dense{i}/bias', sd[f'mapping.fc{i}.bias'])]
    synthesis = [(f'noise{j}', sd[f'{ada}.noise_const'][None, None]) for ada, _, _, j in _layers(sd) if j is not None]
    synthesis.append(('4x4/Const/const', sd['synthesis.b4.const'][None]))
    for ada, _, scope, noise in _layers(sd):
        kernel = sd[f'{ada}.weight'].transpose(2, 3, 1, 0)
        if scope.endswith('Conv0_up'):
            kernel = kernel[::-1, ::-1]
        synthesis += [(f'{scope}/weight', kernel.copy()), (f'{scope}/mod_weight', sd[f'{ada}.affine.weight'].T.copy()),
                      (f'{scope}/mod_bias', sd[f'{ada}.affine.bias'] - np.float32(1))]
        if noise is not None:
            synthesis.append((f'{scope}/noise_strength', np.float32(sd[f'{ada}.noise_strength'])))
        synthesis.append((f'{scope}/bias', sd[f'{ada}.bias']))

    num_ws = 2 * int(math.log2(max(block_resolutions(sd)))) - 2

    def network(name, func, variables, components=None, **extra):
        return tf_network({'version': version, 'name': name, 'static_kwargs': dict(static_kwargs, **extra),
                           'components': components or {}, 'build_module_src': '# test',
                           'build_func_name': func, 'variables': variables})

    def generator(name):
        components = {'synthesis': network('G_synthesis', 'G_synthesis', synthesis),
                      'mapping': network('G_mapping', 'G_mapping', mapping, dlatent_broadcast=num_ws)}
        return network(name, 'G_main', [('dlatent_avg', sd['mapping.w_avg'])], components)

    return generator('G'), network('D', 'D_main', [('Output/bias', np.zeros(1, np.float32))]), generator('Gs')
