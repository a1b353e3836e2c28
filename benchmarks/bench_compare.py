"""Wall-clock time of the comparison grid of docs/comparing.md: 2 correlations x 4 models x 3 seeds.

Run:  .venv/bin/python benchmarks/bench_compare.py [--jobs 2] [--epochs 20] [--rows 10000]

Runs ``mtlkit compare`` on synthetic data into a temporary folder (report included) and prints
the wall time, the number of runs and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from mtlkit.cli.main import main


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    models = ["single_task", "shared_bottom", "mmoe", "mmoe:n_experts=4"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grid"
        argv = ["compare", "synthetic", "--correlations", "0.9", "0.5", "--models", *models]
        argv += ["--seeds", "0", "1", "2", "--rows", str(args.rows), "--epochs", str(args.epochs)]
        argv += ["--jobs", str(args.jobs), "--quiet", "--out", str(out)]
        start = time.perf_counter()
        code = main(argv)
        wall = time.perf_counter() - start
        runs = len(list((out / "cells").glob("*.json")))
    if code:
        raise SystemExit(code)
    print(
        f"compare grid: {runs} runs ({args.rows} rows, <= {args.epochs} epochs, --jobs "
        f"{args.jobs}) incl. report in {wall:.1f} s wall on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores"
    )


if __name__ == "__main__":
    run()
