"""Rebuild the report of a comparison run folder.

Rebuild results.csv/.parquet, summary.csv/.parquet, the plots, report.html and
report.md of a 'mtlkit compare' run folder from its saved runs, without training.
On an unfinished grid the report covers the finished runs and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtlkit.cli.options import command
from mtlkit.evaluation.metrics import METRIC_NAMES
from mtlkit.experiments.config import CORRECTIONS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "report", run, __doc__)
    p.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="the folder 'mtlkit compare' wrote"
    )
    p.add_argument(
        "--metric",
        choices=METRIC_NAMES,
        help="compare this test metric instead of the grid's own (e.g. rmse for regression)",
    )
    p.add_argument(
        "--correction",
        choices=CORRECTIONS,
        help="correct the p-values for multiple comparisons this way instead of the grid's "
        "own setting (holm, bh or none)",
    )


def run(args: argparse.Namespace) -> int:
    from mtlkit.reporting.report import build_report

    report = build_report(args.run_dir, args.metric, args.correction)
    print(f"Report written to {report.html} (and report.md next to it)")
    return 0
