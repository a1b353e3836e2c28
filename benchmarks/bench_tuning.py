"""What an equal tuning budget costs: the same grid with and without ``--tune N``.

Run:  .venv/bin/python benchmarks/bench_tuning.py [--trials 10] [--rows 4000] [--jobs 1]

Runs ``mtlkit compare synthetic --models shared_bottom mmoe --seeds 0 1 2`` (single-task is
added) into temporary folders, first without tuning, then with ``--tune N``, one after the
other in this process, and prints both wall times (report included), their ratio, the trials
run and pruned, and the time the trials took.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from mtlkit.cli.main import main
from mtlkit.experiments.tuning_plan import load_studies


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    grid = ["compare", "synthetic", "--models", "shared_bottom", "mmoe"]
    grid += ["--seeds", "0", "1", "2", "--rows", str(args.rows), "--jobs", str(args.jobs)]
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("untuned", []), ("tuned", ["--tune", str(args.trials)])):
            out = Path(tmp) / name
            start = time.perf_counter()
            if main([*grid, *extra, "--quiet", "--out", str(out)]):
                raise SystemExit(f"the {name} grid failed")
            walls[name] = time.perf_counter() - start
        studies = load_studies(Path(tmp) / "tuned")
    trials = sum(s.count("COMPLETE") + s.count("PRUNED") for s in studies)
    pruned = sum(s.count("PRUNED") for s in studies)
    print(
        f"\n{' '.join(grid[:2])} ... ({args.rows} rows, 3 models x 3 seeds, --jobs {args.jobs}) on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores:\n"
        f"  without tuning: {walls['untuned']:.1f} s wall\n"
        f"  --tune {args.trials}: {walls['tuned']:.1f} s wall "
        f"(x{walls['tuned'] / walls['untuned']:.1f}); {len(studies)} studies, {trials} trials "
        f"({pruned} pruned), the trials took {sum(s.time_s for s in studies):.1f} s"
    )


if __name__ == "__main__":
    run()
