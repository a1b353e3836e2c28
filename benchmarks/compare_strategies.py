"""Compare training strategies on synthetic tasks of varying correlation (MMoE paper data).

Run:  PYTHONPATH=src .venv/bin/python benchmarks/compare_strategies.py [--seeds 0 1 2] [--out x.csv]
      (or in parts, e.g. one process per correlation, then ``--summarize a.csv b.csv``)

For each correlation and seed, one synthetic table (seeded) is split 40/20/40 and every method
is trained on it; the script prints a markdown table of test ROC AUC per task (mean +- std
over seeds) and the mean gradient cosine between the tasks on the shared parameters that the
joint run measured. Methods are "single_task" (the baseline model) or an MMoE strategy name.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mtlkit.data.loading import load_tables
from mtlkit.data.splits import split_table
from mtlkit.data.synthetic import make_synthetic
from mtlkit.experiments.run import RunSpec, run_one

MMOE = {"n_experts": 4, "expert_hidden": [16], "tower_hidden": [8]}
SINGLE = {"hidden": [16, 8]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--correlations", type=float, nargs="+", default=[0.9, 0.5, 0.0, -0.5])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["single_task", "joint", "alternating", "uncertainty", "pcgrad"],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=5000, help="rows per table (40%% train)")
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument(
        "--noise",
        type=float,
        default=0.2,
        help="label noise-to-signal ratio (the signal has unit variance)",
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", type=Path, help="also write all result rows to this CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--summarize", type=Path, nargs="+", help="only print the table of these --out CSVs"
    )
    args = parser.parse_args()
    if args.summarize:
        results = pd.concat([pd.read_csv(p) for p in args.summarize], ignore_index=True)
        methods = [m for m in args.methods if m in set(results["method"])]
        print(markdown_table(results, methods))
        return

    jobs = [(c, s, m) for c in args.correlations for s in args.seeds for m in args.methods]
    rows = []
    start = time.perf_counter()
    for corr, seed, method in tqdm(jobs, desc="runs", disable=args.quiet):
        frame = make_synthetic(
            args.rows, n_features=args.features, correlation=corr, noise=args.noise, seed=seed
        )
        table = load_tables(frame, labels=["label0", "label1"])
        train, val, test = split_table(table, (0.4, 0.2, 0.4), seed=seed)
        model, strategy = ("single_task", "joint") if method == "single_task" else ("mmoe", method)
        spec = RunSpec(
            model,
            strategy,
            seed,
            model_params=SINGLE if model == "single_task" else MMOE,
            train_params={
                "epochs": args.epochs,
                "batch_size": 128,
                "lr": 1e-3,
                "patience": 5,
                "progress": False,
                "diagnostic_batches": 4 if method == "joint" else 0,
            },
        )
        run_rows, est = run_one(spec, train, val, test, tags={"correlation": corr})
        cos = np.nan
        if method == "joint":
            cos = float(np.nanmean(est.history_.diagnostic("grad_cosine")))
        rows += [{**r, "method": method, "grad_cosine": cos} for r in run_rows]
    minutes = (time.perf_counter() - start) / 60
    results = pd.DataFrame(rows)
    if args.out:
        results.to_csv(args.out, index=False)
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}; {len(jobs)} runs in {minutes:.1f} min"
    )
    print(markdown_table(results, args.methods))


def markdown_table(results: pd.DataFrame, methods: list[str]) -> str:
    """Test ROC AUC mean +- std per correlation x method and task, and the gain over
    single_task paired by seed (NaN when single_task was not run)."""
    sel = results[(results["metric"] == "roc_auc") & (results["split"] == "test")]
    stats = sel.groupby(["correlation", "method", "task"])["value"].agg(["mean", "std"])
    # Paired by seed (same data and split): the gain over the single-task baseline.
    keys = ["correlation", "seed", "task"]
    base = sel[sel["method"] == "single_task"].set_index(keys)["value"]
    gain = sel.set_index(keys)["value"] - base.reindex(sel.set_index(keys).index).to_numpy()
    gains = (
        sel.assign(gain=gain.to_numpy())
        .groupby(["correlation", "method", "task"])["gain"]
        .agg(["mean", "std"])
    )
    tasks = sorted(sel["task"].unique())
    lines = [
        "| correlation | method | "
        + " | ".join(f"{t} test AUC | {t} gain vs single_task" for t in tasks)
        + " |",
        "| --- | --- | " + " | ".join("--- | ---" for _ in tasks) + " |",
    ]
    for corr in sorted(sel["correlation"].unique(), reverse=True):
        for method in methods:
            cells = [
                f"{stats.loc[(corr, method, t), 'mean']:.4f} ± {stats.loc[(corr, method, t), 'std']:.4f}"
                f" | {gains.loc[(corr, method, t), 'mean']:+.4f} ± {gains.loc[(corr, method, t), 'std']:.4f}"
                for t in tasks
            ]
            lines.append(f"| {corr:+.1f} | {method} | " + " | ".join(cells) + " |")
    mean_cos = results.groupby("correlation")["grad_cosine"].mean().dropna()
    if not mean_cos.empty:
        lines.append("")
        lines.append("Mean gradient cosine between the tasks on MMoE's shared parameters (joint):")
        lines.append(
            ", ".join(
                f"{c:+.1f}: {v:+.3f}" for c, v in mean_cos.sort_index(ascending=False).items()
            )
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
