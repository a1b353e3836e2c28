"""Census-Income (KDD), both task groups of the MMoE paper (Ma et al., KDD 2018, section 6.2).

Run (untuned: about 16 min per group on the 2-core development machine at load 10-14):

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/reproduce_census.py \\
        > runs/reproduce_census.log 2>&1 &

With the same tuning budget for every model (``mtlkit compare --tune``; N Optuna trials per
model on the validation split, then the seeds with the tuned settings; the batch size stays
fixed). ``--tune 5`` took 35-59 min of trials plus 16-25 min of seeded runs per group, the
two groups side by side at load 3-14 (a killed run resumes without repeating trials or runs;
rerun with both groups afterwards to write the combined tables):

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/reproduce_census.py --tune 5 \\
        --groups 1 > runs/census_tune5_g1.log 2>&1 &   # and --groups 2 likewise

Group 1 predicts income (> $50k) and marital status (ever married), group 2 education (at
least a bachelor's degree) and marital status. Models: single_task, shared_bottom, omoe,
mmoe, ple and cross_stitch with mtlkit's defaults (or their tuned settings), 5 seeds, each
through ``mtlkit compare`` (one run folder per group, with its report.html). Prints the
mean test ROC-AUC with its 95% CI beside the paper's means and the gains over single-task
(paired by seed), and writes ``runs/reproductions/census*/table.md`` and
``docs/figures/census_untuned.png`` (or ``census_tuneN.png``).

Protocol difference: the paper trains on the 199,523-row training split and tests on the
99,762-row test split (half of it as validation). The shared file here is that test split
only, cut 70/15/15 (seeded), so models see about a third of the paper's training rows.
Options: ``--data PATH`` (default ``../shared/data/census-income.test.gz``), ``--seeds``,
``--tune N``, ``--groups``, ``--epochs``, ``--patience``, ``--batch-size``, ``--out``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator
from reproduce_common import (
    FIGURES,
    RUNS,
    add_convergence,
    ci_row,
    convergence_note,
    fmt_gain,
    markdown,
    paired_row,
)

from mtlkit.cli.compare import execute
from mtlkit.experiments.cells import load_cells, results_frame
from mtlkit.experiments.config import CompareConfig
from mtlkit.reporting.figures import save_figure

MODELS = ["single_task", "shared_bottom", "omoe", "mmoe", "ple", "cross_stitch"]
GROUP_TASKS = {1: ("income", "marital"), 2: ("education", "marital")}
#: Mean test AUC of the paper's Table (Ma et al. 2018), where it reports them.
PAPER = {
    (1, "income"): {
        "single_task": 0.9337,
        "shared_bottom": 0.9295,
        "cross_stitch": 0.9361,
        "omoe": 0.9319,
        "mmoe": 0.9359,
    },
    (1, "marital"): {
        "single_task": 0.9933,
        "shared_bottom": 0.9915,
        "cross_stitch": 0.9917,
        "omoe": 0.9928,
        "mmoe": 0.9926,
    },
    (2, "education"): {"single_task": 0.8792, "mmoe": 0.8826},
}


def grid(group: int, args: argparse.Namespace) -> dict:
    """The ``mtlkit compare`` settings of one task group."""
    values = {
        "data": "census-income",
        "dataset_options": {"path": str(Path(args.data).resolve()), "group": group},
        "models": MODELS,
        "seeds": list(range(args.seeds)),
        "metric": "roc_auc",
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "patience": args.patience,
        "diagnostic_batches": 0,
    }
    if args.tune:
        # The batch size stays fixed: small batches on 70k rows cost more than this machine has.
        values["tune"] = {"trials": args.tune, "keep": ["batch_size"]}
    return values


def run_group(group: int, args: argparse.Namespace, out: Path) -> pd.DataFrame:
    config = CompareConfig.from_mapping(grid(group, args))
    run_dir = out / f"group{group}"
    execute(config, run_dir, progress=False)
    results = results_frame(load_cells(run_dir, config)).assign(group=group)
    return add_convergence(results, args.epochs, args.patience)


def table(results: pd.DataFrame) -> pd.DataFrame:
    test = results[(results["split"] == "test") & (results["metric"] == "roc_auc")]
    rows = []
    for (group, task, name), runs in test.groupby(["group", "task", "model"], sort=False):
        stats = ci_row(runs.set_index("seed")["value"])
        paper = PAPER.get((group, task), {}).get(name, math.nan)
        inside = stats["ci_low"] <= paper <= stats["ci_high"] if math.isfinite(paper) else None
        rows.append(
            {
                "group": group,
                "task": task,
                "model": name,
                "seeds": stats["n"],
                "test AUC [95% CI]": stats["text"],
                "paper": "—" if not math.isfinite(paper) else f"{paper:.4f}",
                "diff to paper": "—"
                if not math.isfinite(paper)
                else f"{stats['mean'] - paper:+.4f}",
                "paper in CI": {True: "yes", False: "no", None: "—"}[inside],
                "mean": stats["mean"],
                "ci_low": stats["ci_low"],
                "ci_high": stats["ci_high"],
                "paper_value": paper,
            }
        )
    return pd.DataFrame(rows)


def gains(results: pd.DataFrame) -> pd.DataFrame:
    """Each MTL model's test AUC against single-task's, paired by seed: relative gain with its
    95% CI and paired t-test, one column per group and task."""
    test = results[(results["split"] == "test") & (results["metric"] == "roc_auc")]
    rows = {}
    for (group, task), runs in test.groupby(["group", "task"], sort=False):
        by = {name: g.set_index("seed")["value"] for name, g in runs.groupby("model", sort=False)}
        for name in MODELS[1:]:
            row = paired_row(by[name], by["single_task"], higher_is_better=True)
            rows.setdefault(name, {"model": name})[f"group {group}: {task}"] = fmt_gain(row)
    return pd.DataFrame(list(rows.values()))


def figure(summary: pd.DataFrame, path: Path, title: str) -> None:
    keys = list(dict.fromkeys(zip(summary["group"], summary["task"])))
    fig, axes = plt.subplots(
        1, len(keys), figsize=(3.6 * len(keys) + 1, 3.8), squeeze=False, sharey=True
    )
    for ax, (group, task) in zip(axes[0], keys):
        part = summary[(summary["group"] == group) & (summary["task"] == task)]
        y = range(len(part))
        err = [part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]]
        ax.errorbar(part["mean"], y, xerr=err, fmt="o", capsize=3, label="mtlkit (95% CI)")
        ax.plot(part["paper_value"], y, "x", color="red", label="paper")
        ax.set_yticks(list(y), part["model"])
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(f"group {group}: {task}")
        ax.set_xlabel("test ROC-AUC")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/census-income.test.gz")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune", type=int, default=0, help="Optuna trials per model (0: none)")
    parser.add_argument("--epochs", type=int, default=50, help="epoch cap")
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    name = f"census_tune{args.tune}" if args.tune else "census_untuned"
    out = args.out or RUNS / name
    results = pd.concat([run_group(g, args, out) for g in args.groups])
    results.to_csv(out / "results.csv", index=False)
    print(convergence_note(results))
    summary = table(results)
    shown = summary.drop(columns=["mean", "ci_low", "ci_high", "paper_value"])
    text = "\n\n".join(
        [
            markdown(shown),
            "Test AUC gain over single-task, paired by seed [95% CI], paired t-test:",
            markdown(gains(results)),
        ]
    )
    print("\n" + text)
    summary.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(text + "\n")
    budget = f"{args.tune} Optuna trials per model" if args.tune else "untuned defaults"
    figure(summary, FIGURES / f"{name}.png", f"Census-Income, {budget}, {args.seeds} seeds")
    print(f"\nFigure: {FIGURES / f'{name}.png'}; raw results: {out / 'results.csv'}")


if __name__ == "__main__":
    main()
