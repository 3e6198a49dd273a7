"""Safe, torch- and TensorFlow-free readers for official StyleGAN2 weight files.

`read_network(path)` returns a `SourceNetwork`: the stylegan2-ada-pytorch `G_ema` state dict
(float32 numpy arrays) and Generator init_kwargs, whatever the file's format.
"""

from .detect import read_network
from .errors import (FormatError, NoGeneratorError, StateDictMismatchError, TruncatedFileError,
                     UnknownFormatError, UnknownKwargError, UnsafePickleError, UnsupportedNetworkError)
from .layout import expected_state_dict_shapes, fill_defaults
from .source_network import SourceNetwork

__all__ = [
    'read_network', 'SourceNetwork', 'expected_state_dict_shapes', 'fill_defaults',
    'FormatError', 'UnsafePickleError', 'TruncatedFileError', 'UnknownFormatError', 'NoGeneratorError',
    'UnsupportedNetworkError', 'UnknownKwargError', 'StateDictMismatchError',
]
