"""Exceptions of the weight-file readers. Every clean refusal is a `FormatError` with a one-line message."""

import pickle


class FormatError(ValueError):
    """A weight file cannot be read or converted; the message says why."""


class UnsafePickleError(FormatError, pickle.UnpicklingError):
    """A pickle names a global outside the allow-list, or holds data no weight file needs."""


class TruncatedFileError(FormatError):
    """The file ends before its container is complete."""


class UnknownFormatError(FormatError):
    """The file is not one of the supported weight-file formats."""


class NoGeneratorError(FormatError):
    """The file is a known container but holds no (requested) generator."""


class UnsupportedNetworkError(FormatError):
    """The generator exists but its architecture has no stylegan2-ada-pytorch equivalent here."""


class UnknownKwargError(FormatError):
    """A TensorFlow pickle has a static kwarg that the ada conversion does not understand."""


class StateDictMismatchError(FormatError):
    """Source entries and the shapes implied by init_kwargs disagree (missing, unexpected, mis-shaped)."""


def describe(exc: BaseException) -> str:
    """`Type: message` of a foreign exception, on one line and at most 200 characters."""
    return ' '.join(f'{type(exc).__name__}: {exc}'.split())[:200]
