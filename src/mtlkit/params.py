"""Declared settings: one :class:`Param` per hyperparameter or training setting.

Every model, strategy and training setting declares its parameters once, next to its code:
name, default, type, allowed range and the search space a tuner explores. The declarations
validate user values (one clear :class:`~mtlkit.errors.ConfigError` per mistake), generate
command-line flags and config-file keys, and give the tuner its search spaces. Torch-free.
"""

from __future__ import annotations

import difflib
import math
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from mtlkit.errors import ConfigError


class Trial(Protocol):
    """What a search space needs from a tuner's trial (an ``optuna.Trial`` fits)."""

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class Range:
    """Numbers in ``[low, high]`` for tuning: integers when both bounds are ints, else
    floats (``log``: sampled on a log scale)."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Trial, name: str) -> float:
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(name, self.low, self.high, log=self.log)
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of ``options`` for tuning. Lists (layer widths) are offered as tuples and given
    back as lists of ints."""

    options: tuple

    def suggest(self, trial: Trial, name: str) -> Any:
        labels = [_label(o) for o in self.options]
        picked = trial.suggest_categorical(name, labels)
        return self.options[labels.index(picked)]


SearchSpace = Range | Choice

#: The kinds of value a parameter holds.
KINDS = ("int", "float", "bool", "str", "names", "ints", "sizes", "floats", "values", "mapping")


@dataclass(frozen=True)
class Param:
    """One declared setting.

    ``kind`` is one of :data:`KINDS` (``names``: a list of distinct names such as label
    columns; ``ints``: a list of integers, e.g. seeds; ``sizes``: a list of layer widths such as ``[64, 32]``; ``floats``: a list of
    numbers, e.g. task weights; ``values``: a list of numbers or texts, e.g. missing-label
    markers). ``low``/``high`` bound numbers
    (inclusive unless ``open_low``), ``choices`` lists the allowed values, ``optional`` allows
    ``None``. ``search`` is the space a tuner explores (None: not tuned).
    """

    name: str
    default: Any
    kind: str
    help: str = ""
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    choices: tuple | None = None
    optional: bool = False
    allow_empty: bool = False
    search: SearchSpace | None = None

    def validate(self, value: Any, owner: str = "") -> Any:
        """``value`` checked and normalised (sizes become a tuple of ints), or ConfigError."""
        where = f"{owner} setting {self.name!r}" if owner else f"setting {self.name!r}"
        if value is None and (self.optional or self.default is None):
            return None
        check = _CHECKS[self.kind]
        value = check(self, value, where)
        if self.choices is not None and value not in self.choices:
            hint = did_you_mean(value, self.choices)
            raise ConfigError(
                f"{where} must be one of {list(self.choices)}, got {shown(value)}. {hint}".rstrip()
            )
        return value

    def with_default(self, default: Any) -> Param:
        return replace(self, default=default)

    def describe(self) -> str:
        """``name=default`` plus the allowed values, for listings and ``--help``."""
        text = f"{self.name}={_label(self.default)!s}"
        if self.choices is not None:
            text += f" (one of {', '.join(str(c) for c in self.choices)})"
        elif self.low is not None or self.high is not None:
            low = "" if self.low is None else f"{self.low:g}{' <' if self.open_low else ' <='} "
            high = "" if self.high is None else f" <= {self.high:g}"
            text += f" ({low}{self.name}{high})"
        return text


# ---- shorthand constructors ------------------------------------------------------------------
def Int(name: str, default: Any, help: str = "", **kw: Any) -> Param:  # noqa: N802
    return Param(name, default, "int", help, **kw)


def Float(name: str, default: Any, help: str = "", **kw: Any) -> Param:  # noqa: N802
    return Param(name, default, "float", help, **kw)


def Bool(name: str, default: bool, help: str = "", **kw: Any) -> Param:  # noqa: N802
    return Param(name, default, "bool", help, **kw)


def Str(name: str, default: Any, help: str = "", **kw: Any) -> Param:  # noqa: N802
    return Param(name, default, "str", help, **kw)


def Sizes(name: str, default: Sequence[int], help: str = "", **kw: Any) -> Param:  # noqa: N802
    return Param(name, tuple(default), "sizes", help, **kw)


def Floats(name: str, default: Any, help: str = "", **kw: Any) -> Param:  # noqa: N802
    return Param(name, default, "floats", help, **kw)


def Ints(name: str, default: Any, help: str = "", **kw: Any) -> Param:  # noqa: N802
    """A list of integers; a ``None`` default means optional (the help says what None does)."""
    return Param(name, default, "ints", help, optional=default is None, **kw)


# ---- settings declared as dataclass fields ---------------------------------------------------
def setting(default: Any, kind: str, help: str, **constraints: Any) -> Any:
    """A dataclass field declared as a :class:`Param` (its name is the field's)."""
    return field(default=default, metadata={"kind": kind, "help": help, **constraints})


def declared(param: Param) -> Any:
    """A dataclass field for a :class:`Param` declared elsewhere (its name is the field's)."""
    kw = {
        f.name: getattr(param, f.name) for f in fields(Param) if f.name not in ("name", "default")
    }
    return setting(param.default, **kw)


def params_of(cls: type) -> tuple[Param, ...]:
    """The :class:`Param` of every field of a dataclass declared with :func:`setting`."""
    return tuple(Param(f.name, f.default, **f.metadata) for f in fields(cls) if f.metadata)


# ---- checking a whole set --------------------------------------------------------------------
def check_names(declared: Iterable[Param], given: Iterable[str], owner: str) -> None:
    """Refuse names that are not declared, suggesting the closest valid one (or, when none
    is close, listing them all)."""
    valid = [p.name for p in declared]
    unknown = [name for name in given if name not in valid]
    if unknown:
        hint = did_you_mean(unknown[0], valid) or f"It takes {sorted(valid) or 'none'}."
        raise ConfigError(f"{owner} has no setting(s) {shown(unknown)}. {hint}")


def resolve(declared: Sequence[Param], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Every declared setting: ``given`` values validated, defaults for the rest."""
    check_names(declared, given, owner)
    return {
        p.name: p.validate(given[p.name], owner) if p.name in given else p.default for p in declared
    }


# ---- per-kind checks ---------------------------------------------------------------------
_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlevel = 40, 40, 3
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 6


def did_you_mean(name: object, valid: Iterable[object]) -> str:
    """``Did you mean 'x'?`` for the valid name closest to a mistyped ``name`` (difflib's
    ratio), or ``""`` when none is close: the one suggestion of every error message."""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1)
    return f"Did you mean {close[0]!r}?" if close else ""


def shown(value: Any) -> str:
    """``repr(value)`` cut short (long texts, long or deeply nested lists), so that an error
    message stays one readable line whatever the user wrote."""
    return _SHOWN.repr(value)


def _number(p: Param, value: Any, where: str, integral: bool) -> Any:
    ok = isinstance(value, int) if integral else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (not integral and not math.isfinite(value)):
        what = "an integer" if integral else "a finite number"
        raise ConfigError(f"{where} must be {what}, got {shown(value)}.")
    if p.low is not None and (value <= p.low if p.open_low else value < p.low):
        raise ConfigError(
            f"{where} must be {'>' if p.open_low else '>='} {p.low:g}, got {shown(value)}."
        )
    if p.high is not None and value > p.high:
        raise ConfigError(f"{where} must be <= {p.high:g}, got {shown(value)}.")
    return value if integral else float(value)


def _bool(p: Param, value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {shown(value)}.")
    return value


def _str(p: Param, value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a name (text), got {shown(value)}.")
    return value


def _names(p: Param, value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    ok = isinstance(value, Sequence) and all(isinstance(v, str) and v for v in value)
    if not ok or not value:
        raise ConfigError(
            f"{where} must be a list of names such as ['a', 'b'], got {shown(value)}."
        )
    if len(set(value)) < len(value):
        raise ConfigError(f"{where} lists a name twice: {shown(list(value))}.")
    return tuple(value)


def _sizes(p: Param, value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(
            f"{where} must be a list of layer sizes such as [64, 32], got {shown(value)}."
        )
    if not value and not p.allow_empty:
        raise ConfigError(
            f"{where} must list at least one layer size, e.g. [16]; got {shown(value)}."
        )
    for size in value:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(
                f"every size in {where} must be a positive integer, got {shown(value)}."
            )
    return tuple(value)


def _ints(p: Param, value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ConfigError(
            f"{where} must be a list of integers such as [0, 1, 2], got {shown(value)}."
        )
    return tuple(_number(p, v, f"every number in {where}", integral=True) for v in value)


def _floats(p: Param, value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a list of numbers such as [1, 2], got {shown(value)}.")
    return tuple(_number(p, v, f"every number in {where}", integral=False) for v in value)


def _scalars(p: Param, value: Any, where: str) -> tuple:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and value
    if not ok or not all(isinstance(v, (str, int, float)) for v in value):
        raise ConfigError(
            f"{where} must be a list of values (numbers or texts) such as [-1], got {shown(value)}."
        )
    return tuple(value)


def _mapping(p: Param, value: Any, where: str) -> dict:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping (name: value), got {shown(value)}.")
    return dict(value)


_CHECKS = {
    "int": lambda p, v, w: _number(p, v, w, integral=True),
    "float": lambda p, v, w: _number(p, v, w, integral=False),
    "bool": _bool,
    "str": _str,
    "names": _names,
    "ints": _ints,
    "sizes": _sizes,
    "floats": _floats,
    "values": _scalars,
    "mapping": _mapping,
}


def _label(value: Any) -> Any:
    """Lists and tuples as a readable string (tuner choices must be plain values)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return value
