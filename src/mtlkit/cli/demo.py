"""Compare single-task, shared-bottom and MMoE on built-in synthetic data.

Run 'mtlkit compare' on synthetic two-task data (Ma et al. 2018 generator, task
correlation 0.9) with the labels of task label0 scarce: all, 10% and 2% of its
training labels kept. A single-task baseline, a shared-bottom network and MMoE,
three seeds each, trained until early stopping ends every run. Prints the
comparison, where multi-task learning pays, and the path of report.html. Needs
no download.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mtlkit.cli.compare import add_label_fractions, execute
from mtlkit.cli.options import add_quiet, add_settings, command, given_settings
from mtlkit.experiments.config import GRID_PARAMS, TRAIN_PARAMS, CompareConfig

#: The demo grid: single-task (always added) vs shared-bottom vs MMoE on related tasks
#: (correlation 0.9), with 100%, 10% and 2% of label0's training labels, three seeds.
DEMO = {
    "data": "synthetic",
    "models": ["shared_bottom", "mmoe"],
    "correlations": [0.9],
    "label_fractions": {"label0": [1.0, 0.1, 0.02]},
    "seeds": [0, 1, 2],
    "n_rows": 5_000,
    "dataset_options": {"noise": 0.3},
}
#: Two processes of one torch thread: on a 2-core machine, and even more on a busy one, this
#: is much faster than one process with two threads (BENCHMARKS.md, "make demo").
DEMO_JOBS = min(2, os.cpu_count() or 1)
DEMO_FLAGS = tuple(
    p
    for p in (*GRID_PARAMS, *TRAIN_PARAMS)
    if p.name in ("n_rows", "correlations", "seeds", "epochs", "correction")
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "demo", run, __doc__)
    add_settings(p, DEMO_FLAGS, defaults=False)
    add_label_fractions(p)
    p.add_argument("--noise", type=float, help="label noise-to-signal ratio (default 0.3)")
    p.add_argument("--out", type=Path, help="the run folder (default: a new one under runs/)")
    p.add_argument(
        "--jobs",
        type=int,
        default=DEMO_JOBS,
        help=f"runs in parallel processes, one torch thread each (default {DEMO_JOBS})",
    )
    add_quiet(p)


def run(args: argparse.Namespace) -> int:
    values = {**DEMO, **given_settings(args, DEMO_FLAGS)}
    if args.noise is not None:
        values["dataset_options"] = {"noise": args.noise}
    if args.label_fractions is not None:
        values["label_fractions"] = args.label_fractions
    config = CompareConfig.from_mapping(values, "the demo")
    execute(
        config, args.out, jobs=args.jobs, progress=not args.quiet, argv=args.argv, prefix="demo"
    )
    return 0
