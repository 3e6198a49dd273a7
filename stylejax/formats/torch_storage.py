"""torch's on-disk tensors without torch (formats.md §3.4, §4): storage dtype tags, strided tensor
rebuild, the legacy `torch.save` stream and the zip container.

Parsing functions take the safe `unpickle(file, persistent_load=None)` of `safe_pickle` as an
argument, because `safe_pickle` in turn needs this module's stand-ins.
"""

import io
import zipfile
from typing import Any, Callable

import numpy as np

from .errors import FormatError, TruncatedFileError, describe

Unpickle = Callable[..., Any]

# torch storage class -> numpy dtype of its elements; bfloat16 has no numpy dtype and is read as uint16.
STORAGE_DTYPES = {
    'FloatStorage': 'f4', 'HalfStorage': 'f2', 'DoubleStorage': 'f8', 'BFloat16Storage': 'u2',
    'LongStorage': 'i8', 'IntStorage': 'i4', 'ShortStorage': 'i2', 'CharStorage': 'i1',
    'ByteStorage': 'u1', 'BoolStorage': '?',
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_VERSION = 1001


class StorageTag(str):
    """What a `torch.<Name>Storage` global resolves to: its name. A slot-less str, so a pickle's BUILD
    opcode cannot change it."""

    __slots__ = ()


class Storage:
    """A flat torch storage of `numel` elements. Its bytes are attached later (`load`, a zero-argument
    callable returning them), read on first use and cached, since several tensors may share it."""

    __slots__ = ('tag', 'numel', 'byteorder', 'load', '_array')

    def __init__(self, tag: StorageTag, numel: int, byteorder: str = 'little', load=None):
        self.tag, self.numel, self.byteorder, self.load, self._array = tag, numel, byteorder, load, None

    @property
    def itemsize(self) -> int:
        return np.dtype(STORAGE_DTYPES[self.tag]).itemsize

    def array(self) -> np.ndarray:
        """The elements, [numel], read-only; bfloat16 comes back as float32."""
        if self._array is None:
            if self.load is None:
                raise FormatError('a tensor storage has no data in the file')
            raw = self.load()
            nbytes = self.numel * self.itemsize
            if len(raw) != nbytes:
                raise TruncatedFileError(f'a {self.tag} of {self.numel} elements has {len(raw)} bytes, not {nbytes}')
            dtype = np.dtype(STORAGE_DTYPES[self.tag]).newbyteorder('<' if self.byteorder == 'little' else '>')
            flat = np.frombuffer(raw, dtype=dtype, count=self.numel)
            if self.tag == 'BFloat16Storage':
                # bfloat16 is the upper half of a float32.
                flat = (flat.astype(np.uint32) << 16).view(np.float32)
            self._array = flat
        return self._array


class TensorRef:
    """A tensor as torch pickles it: `shape` and `stride` (in elements) over `storage` from `offset`.
    Nothing is read until numpy asks for it (`np.asarray(ref)`), which returns a C-ordered copy."""

    __slots__ = ('storage', 'offset', 'shape', 'stride')

    def __init__(self, storage: Storage, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def __array__(self, dtype=None, copy=None):  # numpy passes `copy`; a fresh copy is always made
        flat = self.storage.array()
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], self.shape, [s * flat.itemsize for s in self.stride], writeable=False)
        return np.array(view, dtype=dtype, order='C')


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_int(value, expected: int) -> bool:
    # Unpickled values may be arrays, whose `==` is elementwise; compare plain ints only.
    return type(value) is int and value == expected


def rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored) -> TensorRef:
    """Stand-in for `torch._utils._rebuild_tensor_v2`; requires_grad, hooks and metadata are ignored.

    The view must lie inside the storage: `as_strided` does not check and would read foreign memory.
    """
    if not isinstance(storage, Storage):
        raise FormatError(f'tensor built on a {type(storage).__name__}, not a storage')
    if not (_is_index(storage_offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and all(map(_is_index, size + stride))):
        raise FormatError('tensor with malformed offset, size or stride')
    end = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else storage_offset
    if end > storage.numel:
        raise FormatError(f'tensor of size {size} reaches element {end} of a storage of {storage.numel}')
    return TensorRef(storage, storage_offset, size, stride)


def rebuild_parameter(data, *_ignored):
    """Stand-in for `torch._utils._rebuild_parameter(_with_state)`: a parameter is its tensor."""
    return data


def _storage_from_pid(pid, storages: dict, byteorder: str) -> Storage:
    """Storage for the persistent id ('storage', tag, key, location, numel[, view_metadata]), cached by key."""
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and isinstance(pid[0], str) and pid[0] == 'storage'):
        raise FormatError('unexpected persistent id (not a torch storage)')
    tag, key, numel = pid[1], pid[2], pid[4]
    if not (isinstance(tag, StorageTag) and isinstance(key, str) and _is_index(numel)):
        raise FormatError('malformed torch storage reference')
    if len(pid) == 6 and pid[5] is not None:
        raise FormatError('storage views of torch < 0.4 files are not supported')
    storage = storages.setdefault(key, Storage(tag, numel, byteorder))
    if (storage.tag, storage.numel) != (tag, numel):
        raise FormatError(f'storage {key!r} is referenced with two different types or sizes')
    return storage


def read_legacy_stream(buf: bytes, unpickle: Unpickle):
    """The object of a legacy `torch.save` stream (formats.md §3.4, §4.4) held in `buf`.

    The object pickle precedes the data, so storages are created empty and get their bytes
    (zero-copy views into `buf`) after the sorted key list has been read.
    """
    f = io.BytesIO(buf)
    if not _is_int(unpickle(f), LEGACY_MAGIC):
        raise FormatError('not a legacy torch stream (bad magic number)')
    if not _is_int(unpickle(f), LEGACY_VERSION):
        raise FormatError('unsupported legacy torch stream version')
    info = unpickle(f)
    if not isinstance(info, dict) or not isinstance(info.get('little_endian'), bool):
        raise FormatError('legacy torch stream without byte order')
    byteorder = 'little' if info['little_endian'] else 'big'
    storages: dict[str, Storage] = {}
    obj = unpickle(f, lambda pid: _storage_from_pid(pid, storages, byteorder))
    keys = unpickle(f)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys) and sorted(keys) == sorted(storages)):
        raise FormatError('legacy torch stream: storage key list does not match the storages used')
    view, pos = memoryview(buf), f.tell()
    for key in keys:
        storage = storages[key]
        if pos + 8 > len(view):
            raise TruncatedFileError('file is truncated (legacy torch stream ends inside its data)')
        numel = int.from_bytes(view[pos:pos + 8], byteorder)
        if numel != storage.numel:
            raise FormatError(f'storage {key!r}: data holds {numel} elements, its reference {storage.numel}')
        data = view[pos + 8:pos + 8 + numel * storage.itemsize]
        storage.load = lambda data=data: data
        pos += 8 + numel * storage.itemsize
    return obj


def _reader(zf: zipfile.ZipFile, name: str):
    def read():
        try:
            return zf.read(name)
        except Exception as e:  # zipfile raises many unrelated types for damaged archives
            raise FormatError(f'cannot read record {name!r} of the torch zip container: {describe(e)}') from e
    return read


def read_zip_container(zf: zipfile.ZipFile, unpickle: Unpickle):
    """The object of a torch zip container (formats.md §4.1, §4.2). Storages read their record
    `<root>/data/<key>` on first use, so `zf` must stay open while tensors are materialised."""
    roots = [n[:-len('/data.pkl')] for n in zf.namelist() if n.endswith('/data.pkl') and n.count('/') == 1]
    if len(roots) != 1:
        raise FormatError(f'torch zip container needs exactly one <root>/data.pkl record, found {len(roots)}')
    root = roots[0]
    byteorder = 'little'
    if f'{root}/byteorder' in zf.namelist():
        byteorder = _reader(zf, f'{root}/byteorder')().decode('ascii', 'replace').strip()
        if byteorder not in ('little', 'big'):
            raise FormatError(f'torch zip container has unknown byteorder {byteorder[:20]!r}')
    storages: dict[str, Storage] = {}

    def persistent_load(pid):
        storage = _storage_from_pid(pid, storages, byteorder)
        storage.load = storage.load or _reader(zf, f'{root}/data/{pid[2]}')
        return storage

    return unpickle(io.BytesIO(_reader(zf, f'{root}/data.pkl')()), persistent_load)
