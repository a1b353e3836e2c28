"""Compare training strategies on synthetic tasks of varying correlation (MMoE paper data).

Run:  .venv/bin/python benchmarks/compare_strategies.py [--seeds 0 1 2] [--out runs/strategies]

A thin wrapper over ``mtlkit compare`` (the same grid code, report and statistics): the
single-task baseline and MMoE (4 experts of [16], towers [8]) trained with each strategy, at
each task correlation, on one synthetic table per correlation split 40/20/40. Prints the
comparison and the path of its report.html.
"""

from __future__ import annotations

import argparse
import sys

from mtlkit.cli.main import main


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--correlations", nargs="+", default=["0.9", "0.5", "0.0", "-0.5"])
    parser.add_argument(
        "--strategies", nargs="+", default=["joint", "alternating", "uncertainty", "pcgrad"]
    )
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"])
    parser.add_argument("--rows", default="5000", help="rows per table (40%% train)")
    parser.add_argument("--noise", default="0.2", help="label noise-to-signal ratio")
    parser.add_argument("--epochs", default="40")
    parser.add_argument("--jobs", default="1")
    parser.add_argument("--out", help="the run folder (default: a new one under runs/)")
    args = parser.parse_args()
    argv = [
        "compare",
        "synthetic",
        "--models",
        "single_task:hidden=[16,8]",
        "mmoe:n_experts=4:expert_hidden=[16]:tower_hidden=[8]",
        "--strategies",
        *args.strategies,
        "--correlations",
        *args.correlations,
        "--seeds",
        *args.seeds,
        "--n-rows",
        args.rows,
        "--dataset-option",
        f"noise={args.noise}",
        "--fractions",
        "0.4",
        "0.2",
        "0.4",
        "--epochs",
        args.epochs,
        "--batch-size",
        "128",
        "--jobs",
        args.jobs,
        *(["--out", args.out] if args.out else []),
    ]
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
