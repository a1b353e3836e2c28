"""``mtlkit report RUN_DIR``: rebuild a comparison's tables, plots and report, no training."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtlkit.experiments.config import METRICS
from mtlkit.reporting.report import build_report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild the report of a comparison run folder",
        description=(
            "Rebuild results.csv/.parquet, summary.csv/.parquet, the plots, report.html and "
            "report.md of a 'mtlkit compare' run folder from its saved runs, without training. "
            "On an unfinished grid the report covers the finished runs and says so."
        ),
    )
    p.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="the folder 'mtlkit compare' wrote"
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        help="compare this test metric instead of the grid's own (e.g. rmse for regression)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = build_report(args.run_dir, args.metric)
    print(f"Report written to {report.html} (and report.md next to it)")
    return 0
