"""Entry point of the ``mtlkit`` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from mtlkit.cli import (
    affinity,
    compare,
    datasets,
    demo,
    export,
    models,
    report,
    train,
    tune,
)
from mtlkit.errors import MtlkitError
from mtlkit.processes import LAUNCHER_PID

COMMANDS = (
    demo,
    compare,
    report,
    tune,
    train,
    affinity,
    export,
    models,
    datasets,
)


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
    name = f"mtlkit {args.command}"
    try:
        with terminate_as_interrupt(), one_line_warnings(name):
            return args.func(args)
    except MtlkitError as exc:
        print(f"{name}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full or read-only disk, a file removed meanwhile...
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{name}: error: {one_line(exc.strerror or str(exc))}{where}", file=sys.stderr)
        return 1
    except Terminated:
        if not os.environ.get(LAUNCHER_PID):  # a rank stopped by its launcher, which reports
            print(f"{name}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``kill``), handled like Ctrl-C: finished work is kept."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Raise :class:`Terminated` on SIGTERM while the command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def one_line_warnings(name: str) -> Iterator[None]:
    """Warnings printed as ``mtlkit CMD: warning: ...`` lines, without source lines."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        print(f"{name}: warning: {one_line(str(message))}", file=file or sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
