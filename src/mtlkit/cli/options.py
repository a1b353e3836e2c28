"""Command-line options generated from the declared settings (:class:`~mtlkit.params.Param`).

One declaration gives the flag (``batch_size`` -> ``--batch-size``), its type, its choices and
its help text with the default, so ``mtlkit train``, ``mtlkit compare`` and the config files
cannot drift apart. Command modules stay light: they import the heavy parts (PyTorch) only
when they run.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from mtlkit.params import Param

#: Old flag spellings still accepted: setting -> extra flags.
FLAG_ALIASES = {"n_rows": ("--rows",)}


def _scalar(text: str) -> int | float | str:
    """A command-line value that may be a number or a text (e.g. a missing-label marker)."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


_LIST_TYPES = {"names": str, "ints": int, "sizes": int, "floats": float, "values": _scalar}
_SCALAR_TYPES = {"int": int, "float": float, "str": str}


def command(
    sub: argparse._SubParsersAction,
    name: str,
    run: Callable[[argparse.Namespace], int],
    doc: str,
    epilog: str | None = None,
    listing: Callable[[], str] | None = None,
) -> argparse.ArgumentParser:
    """A subcommand described by ``doc`` (first line: the one-line summary of ``mtlkit
    --help``; all of it: the description of ``mtlkit NAME --help``); ``run(args)`` returns
    the exit code. ``listing()`` is appended to ``--help`` when it is printed (it may load the
    registries, so other commands do not pay for it)."""
    text = inspect.cleandoc(doc)
    parser = sub.add_parser(
        name,
        help=text.splitlines()[0].rstrip("."),
        description=text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=run)
    if listing is not None:
        plain = parser.format_help
        parser.format_help = lambda: f"{plain()}\n{listing()}\n"
    return parser


def plugin_listing() -> str:
    """The registered model and strategy names, for ``--help``."""
    from mtlkit.models import MODELS  # here: loads PyTorch
    from mtlkit.training.strategies import STRATEGIES

    return (
        f"models: {', '.join(sorted(MODELS.names()))}\n"
        f"strategies: {', '.join(sorted(STRATEGIES.names()))}"
    )


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    params: Sequence[Param],
    *,
    defaults: bool,
) -> None:
    """One flag per setting. With ``defaults`` the flag defaults to the declared default;
    without, to None, so that only what the user typed overrides a config file."""
    for p in params:
        if p.kind == "mapping":
            continue
        kwargs: dict[str, Any] = {
            "dest": p.name,
            "default": p.default if defaults else None,
            "help": f"{p.help} (default: {_shown(p.default)})".replace("%", "%%"),
        }
        if p.kind in _LIST_TYPES:
            kwargs.update(nargs="+", type=_LIST_TYPES[p.kind], metavar=p.name.upper())
        elif p.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = (
                _optional(_SCALAR_TYPES[p.kind]) if p.optional else _SCALAR_TYPES[p.kind]
            )
            if p.choices is not None:
                kwargs["metavar"] = "{" + ",".join(map(str, p.choices)) + "}"
        parser.add_argument(flag(p.name), *FLAG_ALIASES.get(p.name, ()), **kwargs)


def given_settings(args: argparse.Namespace, params: Sequence[Param]) -> dict[str, Any]:
    """The settings typed on the command line (flags left out are not included)."""
    values = {}
    for p in params:
        value = getattr(args, p.name, None)
        if value is not None:
            values[p.name] = value
    return values


def add_data(parser: argparse.ArgumentParser, nargs: str) -> None:
    """The positional data argument of the commands that read files or a built-in set."""
    parser.add_argument(
        "data",
        nargs=nargs,
        help="data files, folders or globs, or a built-in data set name such as 'synthetic'",
    )


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _optional(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """A converter that reads ``none`` as None (an optional setting switched off)."""

    def read(text: str) -> Any:
        return None if text.lower() in ("none", "null", "off") else convert(text)

    read.__name__ = convert.__name__  # argparse names the type in its error message
    return read


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return "none" if value is None else str(value)
