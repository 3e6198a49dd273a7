"""Convert official weight files into stylejax checkpoints.

    convert(SRC, DST)  ==  read (stylejax.formats, safe) -> official state dict
                           -> rule table (stylejax.official) -> orbax checkpoint (atomic)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from . import __version__, checkpoint
from .config import GeneratorConfig
from .formats import read_network
from .official import generator_from_params, params_from_state_dict


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def convert(src: str | Path, dst: str | Path, network: str = "G_ema", force: bool = False) -> dict:
    """Convert the generator in `src` (any supported format) into a checkpoint at `dst`.

    Returns the provenance record stored with it. Nothing is written unless the
    whole conversion succeeds; an existing `dst` is kept unless `force`.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists; pass --force to overwrite it")
    source = read_network(src, network=network)
    cfg = GeneratorConfig.from_official_kwargs(source.init_kwargs)
    G = generator_from_params(cfg, params_from_state_dict(cfg, source.state_dict))
    provenance = {
        "source_file": src.name,
        "source_sha256": sha256(src),
        "source_format": source.format,
        "network": network,
        "converter": f"stylejax {__version__}",
        "notes": list(source.notes),
    }
    checkpoint.save(dst, G, provenance, force=force)
    return provenance
