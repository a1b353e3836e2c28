"""``mtlkit models``: list the model zoo."""

from __future__ import annotations

import argparse

from mtlkit.models import available, hyperparameters


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the available models",
        description="List every model of the zoo with a one-line description.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="also list hyperparameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    models = available()
    width = max(map(len, models))
    for name, description in models.items():
        print(f"{name:<{width}}  {description}")
        if args.verbose:
            params = ", ".join(f"{k}={v!r}" for k, v in hyperparameters(name).items())
            print(f"{'':<{width}}  hyperparameters: {params}")
    return 0
