"""A plain ada state dict in an `.npz` (official key names, e.g. the fixtures' `weights.npz`)."""

import json
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import FormatError, describe
from .layout import expected_state_dict_shapes, fill_defaults
from .rules import Rule, apply_rules
from .source_network import SourceNetwork

_RULES = (Rule(r'.*', lambda m: m[0]),)


def _config_kwargs(path: Path) -> dict:
    """`init_kwargs` of the `config.json` beside `path`."""
    config = path.with_name('config.json')
    if not config.is_file():
        raise FormatError(f'{path.name} is a plain state dict: pass init_kwargs or put a config.json with '
                          '"init_kwargs" beside it')
    try:
        kwargs = json.loads(config.read_text()).get('init_kwargs')
    except (OSError, ValueError, AttributeError) as e:
        raise FormatError(f'cannot read init_kwargs from {config}: {describe(e)}') from e
    if not isinstance(kwargs, dict):
        raise FormatError(f'{config} has no "init_kwargs" object')
    return kwargs


def read_npz(file: BinaryIO, path: Path, init_kwargs: dict | None = None) -> SourceNetwork:
    """SourceNetwork of the `.npz` open as `file` (found at `path`); init_kwargs default to the
    `config.json` beside it."""
    note = 'init_kwargs given by the caller'
    if init_kwargs is None:
        init_kwargs, note = _config_kwargs(path), 'init_kwargs from config.json'
    init_kwargs = fill_defaults(init_kwargs)
    try:
        with np.load(file, allow_pickle=False) as npz:
            source = {name: npz[name] for name in npz.files}
    except Exception as e:  # np.load raises many types (zipfile, format, pickle refusals) for bad archives
        raise FormatError(f'cannot read {path.name} as .npz: {describe(e)}') from e
    state_dict, notes = apply_rules(expected_state_dict_shapes(init_kwargs), source, _RULES)
    return SourceNetwork('npz', init_kwargs, state_dict, (note, *notes))
