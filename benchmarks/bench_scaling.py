"""One process vs several: data-parallel training (``mtlkit train --nproc``) and grid cells in
parallel (``mtlkit compare --jobs``, ``--backend ray``), timed side by side on this machine.

Run:  .venv/bin/python benchmarks/bench_scaling.py [--rows 400000] [--repeats 2]

Writes its own data (a synthetic Parquet dataset in a temporary folder) and times each command
as a whole (start-up included) in alternation, ``--repeats`` times; prints the median wall
time of each and the ratios to one process. Data-parallel training pays for a start-up and
one all-reduce per step, so it only helps with cores (or GPUs) to spare and batches large
enough; on a machine that is already loaded it cannot.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mtlkit.data.synthetic import make_synthetic


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000, help="rows of the training data")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true", help="skip --backend ray")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mtlkit-bench-scaling-"))
    try:
        frame = make_synthetic(args.rows, n_features=16, correlation=0.9, seed=0)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, folder / "data.parquet", row_group_size=65_536)
        mtlkit = [sys.executable, "-m", "mtlkit"]
        train = [*mtlkit, "train", str(folder), "--labels", "label0", "label1", "--quiet"]
        train += ["--model", "mmoe", "--epochs", "2", "--patience", "0", "--batch-size", "2048"]
        grid = [*mtlkit, "compare", "synthetic", "--rows", "20000", "--epochs", "5", "--quiet"]
        grid += ["--models", "shared_bottom", "mmoe", "--seeds", "0", "1"]
        commands = {
            "train, 1 process": [*train, "--out", str(folder / "m1")],
            "train --nproc 2": [*train, "--nproc", "2", "--out", str(folder / "m2")],
            "train --stream, 1 process": [*train, "--stream", "--out", str(folder / "s1")],
            "train --stream --nproc 2": [
                *train,
                "--stream",
                "--nproc",
                "2",
                "--out",
                str(folder / "s2"),
            ],
            "compare --jobs 1 (6 cells)": [*grid, "--jobs", "1"],
            "compare --jobs 2": [*grid, "--jobs", "2"],
        }
        if not args.no_ray:
            commands["compare --backend ray --jobs 2"] = [*grid, "--backend", "ray", "--jobs", "2"]
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
            f"{platform.python_version()}; train data: {args.rows:,} rows x 18 columns",
            flush=True,
        )
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                out = folder / "grid"
                shutil.rmtree(out, ignore_errors=True)
                times[name].append(
                    timed([*command, "--out", str(out)] if "compare" in name else command)
                )
                print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"== medians of {args.repeats} alternating runs (wall s, start-up included)")
    for name, value in median.items():
        base = "train, 1 process" if "train" in name else "compare --jobs 1 (6 cells)"
        if "stream" in name:
            base = "train --stream, 1 process"
        print(f"{name:34s} {value:7.1f} s   {median[base] / value:.2f}x the one-process speed")


if __name__ == "__main__":
    main()
