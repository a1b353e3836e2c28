"""Compare single-task, shared-bottom and MMoE on built-in synthetic data.

Run 'mtlkit compare' on synthetic two-task data (Ma et al. 2018 generator) at a
high and a low task correlation: a single-task baseline, a shared-bottom network
and MMoE over three seeds. Prints the comparison and the path of report.html.
Needs no download.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtlkit.cli.options import add_quiet, add_settings, command, given_settings
from mtlkit.experiments.config import GRID_PARAMS, TRAIN_PARAMS, CompareConfig

#: The demo grid: single-task (always added) vs shared-bottom vs MMoE at a high and a low
#: task correlation, three seeds.
DEMO = {
    "data": "synthetic",
    "models": ["shared_bottom", "mmoe"],
    "correlations": [0.9, 0.0],
    "seeds": [0, 1, 2],
    "n_rows": 5_000,
    "dataset_options": {"noise": 0.3},
}
DEMO_FLAGS = tuple(
    p
    for p in (*GRID_PARAMS, *TRAIN_PARAMS)
    if p.name in ("n_rows", "correlations", "seeds", "epochs")
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "demo", run, __doc__)
    add_settings(p, DEMO_FLAGS, defaults=False)
    p.add_argument("--noise", type=float, help="label noise-to-signal ratio (default 0.3)")
    p.add_argument("--out", type=Path, help="the run folder (default: a new one under runs/)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    add_quiet(p)


def run(args: argparse.Namespace) -> int:
    from mtlkit.cli.compare import execute

    values = {**DEMO, **given_settings(args, DEMO_FLAGS)}
    if args.noise is not None:
        values["dataset_options"] = {"noise": args.noise}
    config = CompareConfig.from_mapping(values, "the demo")
    execute(
        config, args.out, jobs=args.jobs, progress=not args.quiet, argv=args.argv, prefix="demo"
    )
    return 0
