"""Errors mtlkit raises for user mistakes. Each message says what is wrong and what to do."""

from __future__ import annotations


class MtlkitError(ValueError):
    """Base class of every user-facing mtlkit error."""


class DataError(MtlkitError):
    """Bad input data: the message names the file and/or column and says what to do."""


class ConfigError(MtlkitError):
    """A bad model, training or experiment setting (unknown name, out-of-range value...)."""


class ModelFileError(ConfigError, DataError):
    """A saved model folder that cannot be used: a file missing, truncated, changed after
    saving, or weights that do not fit the model (one line saying which)."""


class WriteError(MtlkitError):
    """An output could not be written (a full or read-only disk...); what was there before
    is kept."""


class DataWarning(UserWarning):
    """Input data that mtlkit repaired as asked (e.g. bad cells read as missing)."""


def install_extra(extra: str) -> str:
    """The command that installs mtlkit's optional ``extra`` (pyproject.toml's
    ``[project.optional-dependencies]``)."""
    return f'pip install "mtlkit[{extra}]"'


def missing_extra(what: str, extra: str, err: ImportError | None = None) -> ConfigError:
    """The error for a feature (``what``: "tracking with MLflow", "--backend ray"...) whose
    optional packages are not installed: names the extra that installs them."""
    cause = f" ({err})" if err is not None else ""
    return ConfigError(
        f"{what} needs packages that are not installed{cause}; install them with: "
        f"{install_extra(extra)}"
    )
