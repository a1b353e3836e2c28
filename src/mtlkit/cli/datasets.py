"""List the built-in data sets.

List the built-in data sets with their tasks, size and source. Load one in
Python with mtlkit.datasets.load(name, path=None, ...).
"""

from __future__ import annotations

import argparse

from mtlkit.cli.options import command
from mtlkit.datasets import available, cache_root


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "datasets", run, __doc__)
    p.add_argument(
        "--cache-dir",
        default=None,
        help="cache folder to report (default: $MTLKIT_DATA or ~/.cache/mtlkit)",
    )


def run(args: argparse.Namespace) -> int:
    root = cache_root(args.cache_dir)
    sets = available()
    for name in sorted(sets, key=lambda n: (n != "synthetic", n)):
        info = sets[name]
        print(info.name)
        print(f"  tasks:  {info.tasks}")
        print(f"  size:   {info.size}")
        print(f"  source: {info.source}")
        if not info.download:
            print(f"  files:  place them in {root / info.name} (or pass path=...)")
    print(f"\ncache folder: {root} (set with MTLKIT_DATA or cache_dir=...)")
    return 0
