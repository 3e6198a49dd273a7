"""Malicious pickles are refused before anything runs, wherever they hide."""

import _compat_pickle
import builtins
import importlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from _paths import fixture
from _writers import dumps, legacy_stream, load_from_bytes

from stylejax.formats import FormatError, UnsafePickleError, read_network
from stylejax.formats import safe_pickle, torch_storage


class Payload:
    """Pickles as a call of `func(*args)`: what an attacker's file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class Blob:
    """An ada storage blob (`_load_from_bytes(raw)`) with arbitrary content."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def __reduce__(self):
        return load_from_bytes, (self.raw,)


def payloads(sentinel):
    cmd = f'touch {sentinel}'
    return {
        'os.system': Payload(os.system, cmd),
        'builtins.eval': Payload(builtins.eval, f'__import__("os").system({cmd!r})'),
        'subprocess.Popen': Payload(subprocess.Popen, ['touch', str(sentinel)]),
        'shutil.rmtree': Payload(shutil.rmtree, str(sentinel.parent / 'victim')),
        'importlib.import_module': Payload(importlib.import_module, 'this'),
    }


def global_name(payload: Payload, protocol: int) -> str:
    """How pickle spells the payload's global: os.system lives in module posix on Linux, and below
    protocol 3 pickle writes Python 2 names (fix_imports)."""
    key = (payload.func.__module__, payload.func.__qualname__)
    if protocol < 3:
        key = _compat_pickle.REVERSE_NAME_MAPPING.get(key, key)
        key = (_compat_pickle.REVERSE_IMPORT_MAPPING.get(key[0], key[0]), key[1])
    return '.'.join(key)


def torch_zip_with(data_pkl: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w') as z:
        z.writestr('archive/data.pkl', data_pkl)
        z.writestr('archive/byteorder', 'little')
    return out.getvalue()


# context -> (file bytes, protocol the payload itself was written with)
CONTEXTS = {
    'top-level': lambda p, proto: (pickle.dumps(p, protocol=proto), proto),
    'inside G_ema': lambda p, proto: (pickle.dumps({'G_ema': p, 'D': None}, protocol=proto), proto),
    'torch zip data.pkl': lambda p, proto: (torch_zip_with(pickle.dumps({'g_ema': p}, protocol=proto)), proto),
    'legacy torch stream': lambda p, proto: (legacy_stream({'g_ema': p}), 2),
    # Outer ada pickles are protocol >= 3 (protocol 2 would spell bytes as the global _codecs.encode).
    'ada storage blob': lambda p, proto: (
        dumps({'G_ema': Blob(pickle.dumps(p, protocol=proto))}, max(proto, 3)), proto),
    'ada storage blob object': lambda p, proto: (dumps({'G_ema': Blob(legacy_stream(p))}, max(proto, 3)), 2),
}


@pytest.mark.parametrize('context', CONTEXTS)
@pytest.mark.parametrize('protocol', [2, 3, 4])
@pytest.mark.parametrize('name', ['os.system', 'builtins.eval', 'subprocess.Popen', 'shutil.rmtree',
                                  'importlib.import_module'])
def test_malicious_global_is_refused(tmp_path, context, protocol, name):
    sentinel = tmp_path / 'SENTINEL'
    (tmp_path / 'victim').mkdir()
    payload = payloads(sentinel)[name]
    path = tmp_path / 'evil.bin'
    data, written = CONTEXTS[context](payload, protocol)
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError, match=global_name(payload, written).replace('.', r'\.')) as info:
        read_network(path)
    assert isinstance(info.value, pickle.UnpicklingError) and isinstance(info.value, FormatError)
    assert not sentinel.exists() and (tmp_path / 'victim').is_dir()


@pytest.mark.parametrize('module', ['antigravity', 'this', '__hello__'])
@pytest.mark.parametrize('opcode', ['GLOBAL', 'STACK_GLOBAL', 'INST'])
def test_globals_never_import_their_module(tmp_path, module, opcode):
    assert module not in sys.modules
    raw = {
        'GLOBAL': b'\x80\x02c' + module.encode() + b'\nfly\n.',
        'STACK_GLOBAL': b'\x80\x04\x8c' + bytes([len(module)]) + module.encode() + b'\x8c\x03fly\x93.',
        'INST': b'(i' + module.encode() + b'\nfly\n.',
    }[opcode]
    with pytest.raises(UnsafePickleError, match=f'{module}.fly'):
        safe_pickle.unpickle(io.BytesIO(raw))
    assert module not in sys.modules


def test_build_cannot_modify_stand_ins():
    # GLOBAL dnnlib.util EasyDict; BUILD (None, {'items': 'x'}): would set a class attribute.
    raw = b'\x80\x02cdnnlib.util\nEasyDict\nN}X\x05\x00\x00\x00itemsX\x01\x00\x00\x00xs\x86b.'
    with pytest.raises(UnsafePickleError, match='modify'):
        safe_pickle.unpickle(io.BytesIO(raw))
    assert safe_pickle.EasyDict.items is dict.items
    # BUILD on a stand-in function only reaches this load's private wrapper.
    raw = b'\x80\x02ctorch._utils\n_rebuild_parameter\nN}X\x0c\x00\x00\x00__defaults__K\x01s\x86b.'
    with pytest.raises(FormatError):
        safe_pickle.unpickle(io.BytesIO(raw))
    assert torch_storage.rebuild_parameter.__defaults__ is None
    assert read_network(fixture('stylegan2-ada', 'tiny', 'network-snapshot.pkl')).format == 'ada-pickle'


def test_object_arrays_are_refused():
    raw = pickle.dumps({'G_ema': np.array([1, 'a'], dtype=object)}, protocol=4)
    with pytest.raises(UnsafePickleError, match='object'):
        safe_pickle.unpickle(io.BytesIO(raw))


def test_persistent_id_in_plain_pickle_is_refused():
    with pytest.raises(FormatError, match='persistent id'):
        safe_pickle.unpickle(io.BytesIO(b'\x80\x02X\x01\x00\x00\x00aQ.'))


def test_storage_view_outside_its_storage_is_refused():
    storage = torch_storage.Storage(torch_storage.StorageTag('FloatStorage'), 4)
    with pytest.raises(FormatError, match='reaches element'):
        torch_storage.rebuild_tensor_v2(storage, 2, (2, 2), (2, 1))
    with pytest.raises(FormatError, match='malformed'):
        torch_storage.rebuild_tensor_v2(storage, 0, (2,), (-1,))
