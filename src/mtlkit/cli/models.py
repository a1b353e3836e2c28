"""``mtlkit models`` and ``mtlkit strategies``: list the model zoo and the training strategies."""

from __future__ import annotations

import argparse

from mtlkit.cli.options import command
from mtlkit.experiments.config import BASELINE
from mtlkit.registry import Registry
from mtlkit.training.settings import DEFAULT_STRATEGY


def add_parser(sub: argparse._SubParsersAction) -> None:
    for name, what, run in (
        ("models", "the model zoo", _models),
        ("strategies", "the training strategies", _strategies),
    ):
        doc = f"List {what}.\n\nList {what} with a one-line description each (-v: with their\nsettings, defaults and allowed values)."
        p = command(sub, name, run, doc)
        p.add_argument("-v", "--verbose", action="store_true", help="also list the settings")


def _models(args: argparse.Namespace) -> int:
    from mtlkit.models import MODELS  # here: loads PyTorch

    return _list(MODELS, args.verbose, first=BASELINE)


def _strategies(args: argparse.Namespace) -> int:
    from mtlkit.training.strategies import STRATEGIES  # here: loads PyTorch

    return _list(STRATEGIES, args.verbose, first=DEFAULT_STRATEGY)


def _list(registry: Registry, verbose: bool, first: str) -> int:
    """Print a registry's entries, ``first`` then alphabetically."""
    entries = registry.entries()
    names = sorted(entries, key=lambda n: (n != first, n))
    width = max(map(len, names))
    for name in names:
        entry = entries[name]
        print(f"{name:<{width}}  {entry.description}")
        if verbose:
            for p in entry.params:
                print(f"{'':<{width}}    {p.describe()}: {p.help}")
            for key, value in entry.fixed.items():
                print(f"{'':<{width}}    {key}={value} (fixed)")
    return 0
