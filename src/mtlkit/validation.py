"""Small checks for user-given settings that raise :class:`ConfigError` with a clear message.

Declared parameters (a model's, a strategy's, the training settings) are checked by their
:mod:`mtlkit.params` declaration instead (``Sizes``, ``Float(low=...)``...); these checks
serve the few values that have no declaration (function arguments of the data layer and of
:mod:`mtlkit.compat`)."""

from __future__ import annotations

from collections.abc import Iterable

from mtlkit.errors import ConfigError
from mtlkit.params import did_you_mean, shown


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {shown(value)}.")
    return value


def check_non_negative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {shown(value)}.")
    return value


def check_fraction(name: str, value: object, *, closed: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] with ``closed``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 <= value <= 1 if closed else 0 <= value < 1):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ConfigError(f"{name} must be a number in {interval}, got {shown(value)}.")
    return float(value)


def check_choice(name: str, value: object, choices: Iterable[object]) -> object:
    """One of ``choices``; suggests the closest valid spelling for a typo."""
    choices = list(choices)
    if value in choices:
        return value
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    raise ConfigError(f"{name} must be one of {choices}, got {shown(value)}. {hint}".rstrip())
