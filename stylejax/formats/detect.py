"""Reading any supported weight file: the format is decided from the content, never the file name."""

import os
import zipfile
from pathlib import Path

from . import ada_pickle, npz, rosinality, tf_pickle, torch_storage
from .errors import FormatError, TruncatedFileError, UnknownFormatError, describe
from .safe_pickle import TFNetwork, unpickle
from .source_network import SourceNetwork

ZIP_MAGIC = b'PK\x03\x04'
# A legacy torch stream starts with its magic number pickled at protocol 2: PROTO 2, LONG1 of 10 bytes.
LEGACY_TORCH_MAGIC = b'\x80\x02\x8a\x0a' + torch_storage.LEGACY_MAGIC.to_bytes(10, 'little')
PICKLE_PROTOCOLS = range(2, 6)


def container_kind(head: bytes) -> str:
    """'zip', 'legacy-torch' or 'pickle' from the first 16 bytes of a file (formats.md §1)."""
    if head.startswith(ZIP_MAGIC):
        return 'zip'
    if head.startswith(LEGACY_TORCH_MAGIC):
        return 'legacy-torch'
    if len(head) >= 2 and head[0] == 0x80 and head[1] in PICKLE_PROTOCOLS:
        return 'pickle'
    if not head:
        raise UnknownFormatError('file is empty')
    if any(magic.startswith(head) for magic in (ZIP_MAGIC, LEGACY_TORCH_MAGIC, b'\x80')):
        raise TruncatedFileError(f'file is truncated ({len(head)} bytes)')
    raise UnknownFormatError(f'not a StyleGAN2 weight file (first bytes {head[:8].hex(" ")}): expected a pickle, '
                             'a torch checkpoint or an .npz')


def _convert_pickle(obj, network: str) -> SourceNetwork:
    """Dispatch a plain pickle on its top-level object."""
    if isinstance(obj, dict):
        return ada_pickle.convert_ada_pickle(obj, network)
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(x, TFNetwork) for x in obj):
        return tf_pickle.convert_tf_pickle(obj, network)
    raise UnknownFormatError(f'pickle holds a {type(obj).__name__}, not an NVIDIA network pickle '
                             '(a dict with G_ema, or a (G, D, Gs) tuple)')


def _read_zip(f, path: Path, network: str, init_kwargs: dict | None) -> SourceNetwork:
    try:
        archive = zipfile.ZipFile(f)
    except Exception as e:  # zipfile raises many unrelated types for damaged archives
        raise TruncatedFileError(f'zip archive is truncated or damaged ({describe(e)})') from e
    with archive:
        names = archive.namelist()
        if any(n.endswith('/data.pkl') for n in names):
            # Storages are read lazily from the archive, so convert while it is open.
            return rosinality.convert_rosinality(torch_storage.read_zip_container(archive, unpickle), network)
        if names and all(n.endswith('.npy') for n in names):
            if network != 'G_ema':
                raise FormatError(f'an .npz holds a single network; network={network!r} is not available')
            f.seek(0)
            return npz.read_npz(f, path, init_kwargs)
    raise UnknownFormatError('zip archive is neither a torch checkpoint nor an .npz')


def read_network(path: str | os.PathLike, network: str = 'G_ema', *,
                 init_kwargs: dict | None = None) -> SourceNetwork:
    """Read a StyleGAN2 generator from an NVIDIA PyTorch or TensorFlow pickle, a rosinality `.pt` or an
    ada state dict `.npz`, as a stylegan2-ada-pytorch state dict.

    network: 'G_ema' (the averaged generator: ada `G_ema`, TF `Gs`, rosinality `g_ema`) or 'G'.
    init_kwargs: only for `.npz` files without a `config.json` beside them.
    Raises FormatError (one-line message) for anything that cannot be read safely and exactly.
    """
    path = Path(path)
    with open(path, 'rb') as f:
        kind = container_kind(f.read(16))
        f.seek(0)
        if kind == 'zip':
            return _read_zip(f, path, network, init_kwargs)
        if kind == 'legacy-torch':
            return rosinality.convert_rosinality(torch_storage.read_legacy_stream(f.read(), unpickle), network)
        return _convert_pickle(unpickle(f), network)
