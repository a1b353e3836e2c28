"""The data layer's error type (defined in :mod:`mtlkit.errors`)."""

from mtlkit.errors import DataError

__all__ = ["DataError"]
