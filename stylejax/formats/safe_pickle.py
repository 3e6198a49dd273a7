"""Unpickling with an allow-list (formats.md §2): every global a pickle names resolves to a stand-in
from the table below or is refused before anything runs; embedded source (`module_src`,
`build_module_src`) is kept as inert text. Nothing is imported on behalf of a pickle.
"""

import collections
import functools
import pickle
import types
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

import numpy as np

from . import torch_storage
from .errors import FormatError, TruncatedFileError, UnsafePickleError, describe

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray


class _Sealed(type):
    """Metaclass of the stand-in classes: a pickle's BUILD opcode can set attributes on any object it
    names, and a class altered that way would corrupt every later load in the process."""

    def __setattr__(cls, name, value):
        raise UnsafePickleError(f'pickle tried to modify stand-in class {cls.__name__}')

    def __delattr__(cls, name):
        raise UnsafePickleError(f'pickle tried to modify stand-in class {cls.__name__}')


class EasyDict(dict, metaclass=_Sealed):
    """Stand-in for `dnnlib.util.EasyDict` (filled by SETITEMS): a plain dict."""


class Namespace(dict, metaclass=_Sealed):
    """Stand-in for `argparse.Namespace` (rosinality `args`): its attributes become items."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise FormatError('argparse.Namespace with a non-dict state')
        self.update(state)


class TFNetwork(metaclass=_Sealed):
    """Stand-in for `dnnlib.tflib.network.Network`: keeps the state dict of its BUILD, runs nothing."""

    state = None

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise FormatError('TensorFlow Network with a non-dict state')
        self.state = state


@dataclass(frozen=True)
class PersistentRecord:
    """A network module of an NVIDIA PyTorch pickle: its class name and instance `__dict__`."""

    class_name: str
    state: dict


def reconstruct_persistent_obj(meta) -> PersistentRecord:
    """Stand-in for `torch_utils.persistence._reconstruct_persistent_obj`; ignores `module_src`."""
    if not (isinstance(meta, dict) and isinstance(meta.get('type'), str) and meta['type'] == 'class'
            and isinstance(meta.get('class_name'), str) and isinstance(meta.get('state'), dict)):
        raise FormatError('malformed persistent object (expected type, class_name and state)')
    return PersistentRecord(meta['class_name'], meta['state'])


def load_from_bytes(blob) -> torch_storage.Storage:
    """Stand-in for `torch.storage._load_from_bytes`: a storage blob is a legacy torch stream."""
    if not isinstance(blob, bytes):
        raise FormatError('storage blob is not bytes')
    storage = torch_storage.read_legacy_stream(blob, unpickle)
    if not isinstance(storage, torch_storage.Storage):
        raise FormatError('storage blob does not hold a storage')
    return storage


ALLOWED: dict[tuple[str, str], Any] = {
    ('torch_utils.persistence', '_reconstruct_persistent_obj'): reconstruct_persistent_obj,
    ('dnnlib.util', 'EasyDict'): EasyDict,
    ('torch._utils', '_rebuild_tensor_v2'): torch_storage.rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): torch_storage.rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): torch_storage.rebuild_parameter,
    ('torch.storage', '_load_from_bytes'): load_from_bytes,
    **{('torch', name): torch_storage.StorageTag(name) for name in torch_storage.STORAGE_DTYPES},
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('builtins', 'set'): set,
    **{(module, name): getattr(_multiarray, name)
       for module in ('numpy.core.multiarray', 'numpy._core.multiarray') for name in ('scalar', '_reconstruct')},
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('dnnlib.tflib.network', 'Network'): TFNetwork,
    ('argparse', 'Namespace'): Namespace,
}


class SafeUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves globals only through `ALLOWED` and persistent ids only
    through the container's `persistent_load` (none for plain pickles)."""

    def __init__(self, file: BinaryIO, persistent_load: Callable | None = None):
        super().__init__(file)
        self._persistent = persistent_load
        # Our Python functions get a private wrapper per load, so that BUILD on them (which can set
        # attributes such as __defaults__) cannot reach other loads; builtins and sealed classes are immune.
        self._globals = {key: functools.partial(obj) if isinstance(obj, types.FunctionType) else obj
                         for key, obj in ALLOWED.items()}

    def find_class(self, module, name):
        try:
            return self._globals[module, name]
        except KeyError:
            raise UnsafePickleError(f'refused global {module}.{name}: not on the allow-list') from None

    def persistent_load(self, pid):
        if self._persistent is None:
            raise FormatError('unexpected persistent id in a plain pickle')
        return self._persistent(pid)


def _reject_object_arrays(obj) -> None:
    """Object arrays carry a nested pickle payload that no weight file needs; refuse them anywhere."""
    stack, seen = [obj], set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, (np.ndarray, np.generic)):
            if x.dtype.hasobject:
                raise UnsafePickleError('pickle holds a numpy array of dtype object')
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend(x)
        if isinstance(getattr(x, '__dict__', None), dict):
            stack.append(x.__dict__)


def unpickle(file: BinaryIO, persistent_load: Callable | None = None):
    """Load one pickle from `file` with `SafeUnpickler`; every failure becomes a `FormatError`."""
    try:
        obj = SafeUnpickler(file, persistent_load).load()
    except FormatError:
        raise
    except EOFError:
        raise TruncatedFileError('file is truncated (pickle data ends early)') from None
    except pickle.UnpicklingError as e:
        if 'truncated' in str(e):
            raise TruncatedFileError('file is truncated (pickle data ends early)') from None
        raise FormatError(f'corrupt pickle: {describe(e)}') from e
    except Exception as e:  # a damaged pickle can make any allowed callable fail
        raise FormatError(f'corrupt pickle: {describe(e)}') from e
    _reject_object_arrays(obj)
    return obj
