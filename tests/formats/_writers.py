"""Test-only writers of the torch / NVIDIA pickle layouts, without torch or NVIDIA code.

Stand-in classes and functions carry the real module names and are put into `sys.modules` only
while pickling (`registered()`), so that `pickle` emits exactly the globals real files use.
"""

import contextlib
import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from unittest import mock

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _named(module: str, name: str, obj):
    obj.__module__, obj.__qualname__, obj.__name__ = module, name, name
    return obj


def _never(*args):
    raise AssertionError('writer stand-ins are never called')


rebuild_tensor_v2 = _named('torch._utils', '_rebuild_tensor_v2', lambda *a: _never())
rebuild_parameter = _named('torch._utils', '_rebuild_parameter', lambda *a: _never())
load_from_bytes = _named('torch.storage', '_load_from_bytes', lambda *a: _never())
reconstruct_persistent_obj = _named('torch_utils.persistence', '_reconstruct_persistent_obj', lambda *a: _never())
STORAGE_CLASSES = {name: type(name, (), {'__module__': 'torch'}) for name in
                   ('FloatStorage', 'HalfStorage', 'DoubleStorage', 'BFloat16Storage', 'LongStorage')}
EasyDict = type('EasyDict', (dict,), {'__module__': 'dnnlib.util'})
Network = type('Network', (), {'__module__': 'dnnlib.tflib.network'})


def _modules() -> dict:
    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        return m
    return {
        'torch': module('torch', **STORAGE_CLASSES),
        'torch._utils': module('torch._utils', _rebuild_tensor_v2=rebuild_tensor_v2,
                               _rebuild_parameter=rebuild_parameter),
        'torch.storage': module('torch.storage', _load_from_bytes=load_from_bytes),
        'torch_utils': module('torch_utils'),
        'torch_utils.persistence': module('torch_utils.persistence',
                                          _reconstruct_persistent_obj=reconstruct_persistent_obj),
        'dnnlib': module('dnnlib'),
        'dnnlib.util': module('dnnlib.util', EasyDict=EasyDict),
        'dnnlib.tflib': module('dnnlib.tflib'),
        'dnnlib.tflib.network': module('dnnlib.tflib.network', Network=Network),
    }


@contextlib.contextmanager
def registered():
    with mock.patch.dict(sys.modules, _modules()):
        yield


class Storage:
    """A flat array saved as a torch storage: a persistent id in containers, a blob in ada pickles.
    `tag` 'BFloat16Storage' expects uint16 bit patterns."""

    def __init__(self, flat: np.ndarray, tag: str = 'FloatStorage'):
        self.flat, self.tag = flat.ravel(), tag

    def __reduce__(self):
        return load_from_bytes, (legacy_stream(self),)


def _c_strides(shape) -> tuple:
    strides, n = [], 1
    for d in reversed(shape):
        strides.append(n)
        n *= d
    return tuple(reversed(strides))


class Tensor:
    def __init__(self, storage: Storage, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    @classmethod
    def of(cls, array, tag='FloatStorage', dtype=np.float32) -> 'Tensor':
        array = np.asarray(array, dtype=dtype)
        return cls(Storage(array.copy(), tag), 0, array.shape, _c_strides(array.shape))

    @classmethod
    def view(cls, array, perm=None, pad=3) -> 'Tensor':
        """A non-contiguous view: the base is `array` transposed by `perm`, stored after `pad` junk elements."""
        array = np.asarray(array, dtype=np.float32)
        perm = tuple(reversed(range(array.ndim))) if perm is None else perm
        base = np.ascontiguousarray(array.transpose(perm))
        base_strides = _c_strides(base.shape)
        stride = tuple(base_strides[perm.index(k)] for k in range(array.ndim))
        flat = np.concatenate([np.full(pad, 7, np.float32), base.ravel(), np.full(pad, 7, np.float32)])
        return cls(Storage(flat), pad, array.shape, stride)

    def __reduce__(self):
        return rebuild_tensor_v2, (self.storage, self.offset, self.shape, self.stride, False, OrderedDict())


class Parameter:
    def __init__(self, tensor: Tensor):
        self.tensor = tensor

    def __reduce__(self):
        return rebuild_parameter, (self.tensor, False, OrderedDict())


class Persistent:
    """An NVIDIA persistent module: pickled as `_reconstruct_persistent_obj(meta)`."""

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        meta = {'type': 'class', 'version': 6, 'module_src': '# test',
                'class_name': self.class_name, 'state': self.state}
        return reconstruct_persistent_obj, (meta,)


class _ContainerPickler(pickle.Pickler):
    """Writes storages as persistent ids (torch containers), remembering them by key."""

    def __init__(self, file, six_fields: bool):
        super().__init__(file, protocol=2)
        self.storages, self.six_fields = {}, six_fields

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        key = next((k for k, s in self.storages.items() if s is obj), str(len(self.storages)))
        self.storages[key] = obj
        pid = ('storage', STORAGE_CLASSES[obj.tag], key, 'cpu', obj.flat.size)
        return pid + (None,) if self.six_fields else pid


def legacy_stream(obj) -> bytes:
    """A legacy `torch.save` stream of `obj` (formats.md §3.4, §4.4)."""
    out = io.BytesIO()
    for part in (LEGACY_MAGIC, 1001, {'protocol_version': 1001, 'little_endian': True,
                                      'type_sizes': {'short': 2, 'int': 4, 'long': 4}}):
        pickle.dump(part, out, protocol=2)
    with registered():
        pickler = _ContainerPickler(out, six_fields=True)
        pickler.dump(obj)
    keys = sorted(pickler.storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        flat = pickler.storages[key].flat
        out.write(np.int64(flat.size).tobytes())
        out.write(flat.astype(flat.dtype.newbyteorder('<')).tobytes())
    return out.getvalue()


def torch_zip(obj, root: str = 'archive', byteorder: str = 'little') -> bytes:
    """A torch >= 1.6 zip container of `obj` (formats.md §4.1)."""
    data = io.BytesIO()
    with registered():
        pickler = _ContainerPickler(data, six_fields=False)
        pickler.dump(obj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z:
        z.writestr(f'{root}/data.pkl', data.getvalue())
        z.writestr(f'{root}/byteorder', byteorder)
        for key, storage in pickler.storages.items():
            order = '<' if byteorder == 'little' else '>'
            z.writestr(f'{root}/data/{key}', storage.flat.astype(storage.flat.dtype.newbyteorder(order)).tobytes())
        z.writestr(f'{root}/version', '3\n')
    return out.getvalue()


def dumps(obj, protocol: int = 4) -> bytes:
    with registered():
        return pickle.dumps(obj, protocol=protocol)


# --- NVIDIA PyTorch pickles -------------------------------------------------------------------

_BUFFERS = ('resample_filter', 'noise_const', 'w_avg')


def _class_name(path: tuple) -> str:
    if not path:
        return 'Generator'
    last = path[-1]
    if path == ('synthesis',):
        return 'SynthesisNetwork'
    if path == ('mapping',):
        return 'MappingNetwork'
    if len(path) == 2 and path[0] == 'synthesis':
        return 'SynthesisBlock'
    if last.startswith('conv'):
        return 'SynthesisLayer'
    return 'ToRGBLayer' if last == 'torgb' else 'FullyConnectedLayer'


def ada_generator(state_dict: dict, init_kwargs: dict, tensor=Tensor.of) -> Persistent:
    """A persistent Generator module tree holding `state_dict` (flat ada keys, in torch order)."""
    tree = {}
    for key, value in state_dict.items():
        *path, name = key.split('.')
        node = tree
        for part in path:
            node = node.setdefault(('m', part), {})
        node[('b' if name in _BUFFERS else 'p', name)] = tensor(value)

    def build(node: dict, path: tuple) -> Persistent:
        params = {n: Parameter(v) for (kind, n), v in node.items() if kind == 'p'}
        buffers = {n: v for (kind, n), v in node.items() if kind == 'b'}
        modules = {n: build(v, path + (n,)) for (kind, n), v in node.items() if kind == 'm'}
        state = {'training': False, '_parameters': params, '_buffers': buffers,
                 '_non_persistent_buffers_set': set(), '_forward_hooks': OrderedDict(), '_modules': modules}
        if not path:
            state.update(_init_args=(), _init_kwargs=EasyDict(
                {k: EasyDict(v) if isinstance(v, dict) else v for k, v in init_kwargs.items()}))
        return Persistent(_class_name(path), state)

    return build(tree, ())


def ada_snapshot(state_dict: dict, init_kwargs: dict, protocol: int = 4, tensor=Tensor.of) -> bytes:
    g = ada_generator(state_dict, init_kwargs, tensor)
    return dumps({'training_set_kwargs': EasyDict(), 'G': g, 'D': None, 'G_ema': g, 'augment_pipe': None}, protocol)


# --- NVIDIA TensorFlow pickles -----------------------------------------------------------------

def tf_network(state: dict) -> Network:
    net = Network()
    net.__dict__.update(state)
    return net


def tf_from_loaded(net) -> Network:
    """A writable copy of a TFNetwork stand-in loaded by the safe reader (components included)."""
    state = dict(net.state)
    state['components'] = {k: tf_from_loaded(v) for k, v in state.get('components', {}).items()}
    return tf_network(state)
