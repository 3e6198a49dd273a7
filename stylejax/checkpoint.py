"""stylejax checkpoints: an orbax parameter tree plus a JSON file of config and provenance.

Layout of a checkpoint directory:

    DST/stylejax.json   {"format": "stylejax-generator", "version": 1,
                         "config": <official init_kwargs>, "provenance": {...}}
    DST/params/         orbax (StandardCheckpointer) tree of the generator parameters

Writes are atomic: everything goes into a temporary directory beside DST,
which is renamed to DST at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator, Mapping

import jax
import orbax.checkpoint as ocp
from flax import nnx

from .config import GeneratorConfig
from .generator import Generator, abstract_generator
from .official import generator_from_params

FORMAT = "stylejax-generator"
VERSION = 1
META_FILE = "stylejax.json"
PARAMS_DIR = "params"
# Models shipped inside the package, loadable by name.
BUNDLED = ("toyfaces",)


class CheckpointError(ValueError):
    """A checkpoint that is missing, not a stylejax checkpoint, or damaged."""


@contextmanager
def atomic_directory(dst: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside `dst`; rename it to `dst` if the block succeeds."""
    dst = Path(dst).absolute()
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists (use force to overwrite)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.tmp-"))
    try:
        yield tmp
        if dst.exists():
            # Replace an existing result only once the new one is complete.
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, old)
            os.replace(tmp, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save(path: str | Path, G: Generator, provenance: Mapping | None = None, force: bool = False) -> Path:
    """Write G as a checkpoint directory at `path` (atomically)."""
    path = Path(path).absolute()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": G.config.to_official_kwargs(),
        "provenance": dict(provenance or {}),
    }
    params = nnx.to_pure_dict(nnx.state(G))
    with atomic_directory(path, force=force) as tmp:
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(tmp / PARAMS_DIR, params)
            ckptr.wait_until_finished()
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    return path


def resolve(path_or_name: str | Path) -> Path:
    """A checkpoint path, or the directory of a bundled model given by name."""
    if str(path_or_name) in BUNDLED and not Path(path_or_name).exists():
        return Path(str(resources.files("stylejax") / "models" / str(path_or_name)))
    return Path(path_or_name).absolute()


def read_metadata(path_or_name: str | Path) -> dict:
    path = resolve(path_or_name)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise CheckpointError(f"{path} is not a stylejax checkpoint (no {META_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_file} is damaged: {e}") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format {meta.get('format')!r} version {meta.get('version')!r}"
        )
    return meta


def load(path_or_name: str | Path) -> Generator:
    """Restore a generator from a checkpoint directory or a bundled model name.

    The parameters are restored straight into the abstract parameter tree of
    the stored config; nothing is initialised or run first.
    """
    path = resolve(path_or_name)
    meta = read_metadata(path)
    cfg = GeneratorConfig.from_official_kwargs(meta["config"])
    abstract = nnx.to_pure_dict(nnx.state(abstract_generator(cfg)))
    # Restore onto this process's first device (also under jax.distributed,
    # where every process holds its own replica).
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), abstract)
    try:
        with ocp.StandardCheckpointer() as ckptr:
            params = ckptr.restore(path / PARAMS_DIR, target)
    except Exception as e:  # orbax raises many types for damaged trees
        raise CheckpointError(f"{path}: parameters could not be restored ({type(e).__name__}: {e})") from None
    return generator_from_params(cfg, params)
