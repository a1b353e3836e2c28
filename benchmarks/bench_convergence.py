"""Convergence and verdicts under the old fixed batch sizes and the adaptive one (issue #10).

Run:  .venv/bin/python benchmarks/bench_convergence.py [--scenario demo|issue|all] [--jobs 2]

``demo``: the demo's data (5,000 synthetic rows, noise 0.3, task correlation 0.9, every
label) with single-task, shared-bottom and MMoE over seeds 0-2, trained with batch 1024, 512
(the old default) and the adaptive batch size (``batch_size`` none), at most 100 epochs.
``issue``: the grid of the issue (``--correlations 0.9 0.0 --models single_task
shared_bottom mmoe --strategies joint uncertainty --seeds 0 1 2 --rows 4000 --epochs 20``)
with batch 512 and with the adaptive batch size.

Per setting it prints, for each model x strategy: runs that converged (early stopping ended
them) out of those run, mean epochs, optimizer steps per epoch, mean optimizer steps to the
best epoch, mean test ROC-AUC per task, and the recommendation sentences (which refuse
unconverged runs). Every setting runs side by side in one invocation, so the ratios compare
under the same machine load.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from mtlkit.experiments.backends import make_backend
from mtlkit.experiments.cells import results_frame
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.grid import load_grid_data, prepare_run_dir, run_grid
from mtlkit.experiments.stats import recommendations, summarize_grid

DEMO = {
    "data": "synthetic",
    "models": ["single_task", "shared_bottom", "mmoe"],
    "correlations": [0.9],
    "seeds": [0, 1, 2],
    "n_rows": 5_000,
    "dataset_options": {"noise": 0.3},
    "epochs": 100,
}
ISSUE = {
    "data": "synthetic",
    "models": ["single_task", "shared_bottom", "mmoe"],
    "strategies": ["joint", "uncertainty"],
    "correlations": [0.9, 0.0],
    "seeds": [0, 1, 2],
    "n_rows": 4_000,
    "epochs": 20,
}
SCENARIOS = {
    "demo": [(DEMO, 1024), (DEMO, 512), (DEMO, None)],
    "issue": [(ISSUE, 512), (ISSUE, None)],
}


def measure(values: dict, batch_size: int | None, jobs: int, folder: Path) -> None:
    config = CompareConfig.from_mapping({**values, "batch_size": batch_size})
    start = time.perf_counter()
    data = load_grid_data(config)
    prepare_run_dir(config, folder)
    records = run_grid(config, folder, data, make_backend("local", jobs), progress=False)
    wall = time.perf_counter() - start
    runs = pd.DataFrame(
        {
            "correlation": r.tags.get("correlation"),
            "model": f"{r.label} + {r.strategy}",
            "converged": r.history.converged,
            "epochs": len(r.history.epochs),
            "steps_per_epoch": r.history.epochs[0].steps,
            "steps_to_best": r.history.best_epoch * r.history.epochs[0].steps,
            "batch": r.history.batch_size,
            "train_s": r.train_time_s,
            **{f"auc_{t}": m["roc_auc"] for t, m in r.metrics["test"].items()},
        }
        for r in records
    )
    table = runs.groupby(["correlation", "model"], sort=False).agg(
        converged=("converged", lambda c: f"{int(c.sum())}/{len(c)}"),
        epochs=("epochs", "mean"),
        batch=("batch", "first"),
        steps_per_epoch=("steps_per_epoch", "first"),
        steps_to_best=("steps_to_best", "mean"),
        train_s=("train_s", "mean"),
        **{c: (c, "mean") for c in runs.columns if c.startswith("auc_")},
    )
    label = "adaptive" if batch_size is None else batch_size
    print(f"\n=== batch size {label}: {len(runs)} runs, wall {wall:.0f} s (--jobs {jobs})")
    print(table.round(4).to_string())
    summary = summarize_grid(results_frame(records))
    for sentence in recommendations(summary):
        print(f"- {sentence}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    print(f"{platform.platform()}, {os.cpu_count()} CPU cores, load {os.getloadavg()}")
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for i, (values, batch_size) in enumerate(SCENARIOS[name]):
                print(f"\n##### scenario {name}")
                measure(values, batch_size, args.jobs, Path(tmp) / f"{name}{i}")
    print(f"\nload at the end {os.getloadavg()}")


if __name__ == "__main__":
    run()
