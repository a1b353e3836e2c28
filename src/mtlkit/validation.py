"""Small checks for user-given settings that raise :class:`ConfigError` with a clear message."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from mtlkit.errors import ConfigError
from mtlkit.params import shown


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {shown(value)}.")
    return value


def check_non_negative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {shown(value)}.")
    return value


def check_positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a positive number, got {shown(value)}.")
    return float(value)


def check_fraction(name: str, value: object, *, closed: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] with ``closed``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 <= value <= 1 if closed else 0 <= value < 1):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ConfigError(f"{name} must be a number in {interval}, got {shown(value)}.")
    return float(value)


def check_sizes(name: str, value: object, *, allow_empty: bool = False) -> tuple[int, ...]:
    """A list of layer widths, e.g. ``[64, 32]``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(
            f"{name} must be a list of layer sizes such as [64, 32], got {shown(value)}."
        )
    sizes = tuple(value)
    if not sizes and not allow_empty:
        raise ConfigError(
            f"{name} must list at least one layer size, e.g. [16]; got {shown(value)}."
        )
    for s in sizes:
        check_positive_int(f"every size in {name}", s)
    return sizes


def check_choice(name: str, value: object, choices: Iterable[object]) -> object:
    """One of ``choices``; suggests the closest valid spelling for a typo."""
    choices = list(choices)
    if value in choices:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"{name} must be one of {choices}, got {shown(value)}.{hint}")
