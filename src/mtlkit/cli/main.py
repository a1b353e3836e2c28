"""Entry point of the ``mtlkit`` command."""

from __future__ import annotations

import argparse
import sys

from mtlkit.cli import (
    compare,
    datasets_cmd,
    demo,
    export_cmd,
    models_cmd,
    report,
    train_cmd,
    tune_cmd,
)
from mtlkit.errors import MtlkitError

COMMANDS = (demo, compare, report, tune_cmd, train_cmd, export_cmd, models_cmd, datasets_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtlkit",
        description=(
            "Multi-task learning on tabular data: merge partially labelled tables, train MTL "
            "models and compare them with a single-task baseline."
        ),
        epilog="Run 'mtlkit COMMAND --help' for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except MtlkitError as exc:
        print(f"mtlkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mtlkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
