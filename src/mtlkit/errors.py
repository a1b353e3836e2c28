"""Errors mtlkit raises for user mistakes. Each message says what is wrong and what to do."""

from __future__ import annotations


class MtlkitError(ValueError):
    """Base class of every user-facing mtlkit error."""


class DataError(MtlkitError):
    """Bad input data: the message names the file and/or column and says what to do."""


class ConfigError(MtlkitError):
    """A bad model, training or experiment setting (unknown name, out-of-range value...)."""


class DataWarning(UserWarning):
    """Input data that mtlkit repaired as asked (e.g. bad cells read as missing)."""
