"""The original project's two observations, measured with ``mtlkit compare``.

Run (about 65 min on the 2-core development machine at load 12):

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/reproduce_observations.py \\
        > runs/reproduce_observations.log 2>&1 &

1. "Joint and alternating training perform similarly": synthetic data of the MMoE paper's
   generator (binary tasks, 10,000 rows, task correlation 0.9 and 0.5) written as two
   partial-label files (:func:`mtlkit.data.synthetic.write_partial_label_files`: each row in
   one file, each file labels one task), compared as ``mtlkit compare FILES --labels label0
   label1 --models shared_bottom mmoe --strategies joint alternating`` over 5 seeds.
2. "ESMM is more stable than MMoE": a click -> conversion funnel
   (:func:`mtlkit.data.synthetic.make_funnel`, 20,000 impressions, 10% clicks, 20% of them
   convert) compared as ``mtlkit compare funnel.csv --labels click conversion --models esmm
   mmoe`` over 10 seeds. Stability is measured twice: the standard deviation of the test
   ROC-AUC across seeds, and the epoch-to-epoch fluctuation of the validation ROC-AUC
   (``val_fluctuation`` in the summary, see ``History.fluctuation``).

Each comparison is a run folder with its report.html under ``runs/reproductions/``; the
script prints the tables and writes ``docs/figures/joint_vs_alternating.png`` and
``docs/figures/esmm_vs_mmoe_stability.png``; ``--epochs`` sets the epoch cap (default 100;
early stopping ends the runs before it). With the defaults both tasks are easy (test AUC
near 0.99); the harder variant of the documentation adds noise to both data sets:

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/reproduce_observations.py \\
        --noise 1.0 --funnel-noise 1.0 --correlations 0.5 --figure-suffix _hard \\
        --out runs/reproductions/observations_hard > runs/reproduce_observations_hard.log 2>&1 &
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from reproduce_common import (
    FIGURES,
    RUNS,
    add_convergence,
    convergence_note,
    fmt_gain,
    markdown,
    paired_row,
)
from scipy import stats

from mtlkit.cli.compare import execute
from mtlkit.data.synthetic import make_funnel, make_synthetic, write_partial_label_files
from mtlkit.experiments.cells import load_cells, results_frame
from mtlkit.experiments.config import CompareConfig
from mtlkit.reporting.figures import save_figure

TRAIN = {"batch_size": 256, "epochs": 100, "patience": 5, "diagnostic_batches": 0}
SHOWN = ["model", "strategy", "task", "n_seeds", "mean", "std", "ci_low", "ci_high"]


def compare(values: dict, run_dir: Path, epochs: int) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Run (or resume) one ``mtlkit compare`` grid; returns its results, summary and runs."""
    settings = {**values, "metric": "roc_auc", **TRAIN, "epochs": epochs}
    config = CompareConfig.from_mapping(settings)
    execute(config, run_dir, progress=False)
    records = load_cells(run_dir, config)
    results = add_convergence(results_frame(records), epochs, TRAIN["patience"])
    print(convergence_note(results))
    return results, pd.read_csv(run_dir / "summary.csv"), records


def table(summary: pd.DataFrame) -> str:
    shown = summary[SHOWN + ["val_fluctuation"]].copy()
    shown["test AUC [95% CI]"] = [
        f"{r.mean:.4f} [{r.ci_low:.4f}, {r.ci_high:.4f}]" for r in shown.itertuples()
    ]
    shown["std over seeds"] = shown["std"].map(lambda v: f"{v:.4f}")
    shown["val fluct."] = shown["val_fluctuation"].map(lambda v: f"{v:.4f}")
    return markdown(
        shown[["model", "strategy", "task", "n_seeds", "test AUC [95% CI]", "std over seeds"]
              + ["val fluct."]]
    )  # fmt: skip


def joint_vs_alternating(args: argparse.Namespace) -> str:
    texts, curves = [], {}
    for corr in args.correlations:
        folder = args.out / f"partial_corr{corr:+.1f}"
        frame = make_synthetic(args.rows, correlation=corr, noise=args.noise, seed=0)
        files = write_partial_label_files(frame, folder / "data", ["label0", "label1"], seed=0)
        values = {
            "data": [str(p) for p in files],
            "labels": ["label0", "label1"],
            "models": ["shared_bottom", "mmoe"],
            "strategies": ["joint", "alternating"],
            "seeds": list(range(args.seeds)),
        }
        results, summary, records = compare(values, folder / "compare", args.epochs)
        test = results[(results["split"] == "test") & (results["metric"] == "roc_auc")]
        per_seed = test.groupby(["model", "strategy", "seed"])["value"].mean()
        lines = [f"Task correlation {corr:+.1f}:", "", table(summary), ""]
        for name in ("shared_bottom", "mmoe"):
            gain = paired_row(per_seed[name]["alternating"], per_seed[name]["joint"], True)
            lines.append(
                f"- {name}: alternating vs joint (mean AUC of both tasks) {fmt_gain(gain)}"
            )
        texts.append("\n".join(lines))
        curves[corr] = records
    figure_curves(
        curves,
        lambda r: f"{r.label} + {r.strategy}",
        "label0",
        "Partial-label files: validation AUC of label0 per epoch (mean over seeds)",
        FIGURES / f"joint_vs_alternating{args.figure_suffix}.png",
    )
    return "\n\n".join(texts)


def esmm_vs_mmoe(args: argparse.Namespace) -> str:
    folder = args.out / "funnel"
    path = folder / "data" / "funnel.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    funnel = make_funnel(
        2 * args.rows, click_rate=0.1, conversion_rate=0.2, noise=args.funnel_noise, seed=0
    )
    funnel.to_csv(path, index=False)
    values = {
        "data": [str(path)],
        "labels": ["click", "conversion"],
        "models": ["esmm", "mmoe"],
        "seeds": list(range(args.funnel_seeds)),
    }
    results, summary, records = compare(values, folder / "compare", args.epochs)
    figure_stability(records, FIGURES / f"esmm_vs_mmoe_stability{args.figure_suffix}.png")
    lines = [table(summary), ""]
    test = results[(results["split"] == "test") & (results["metric"] == "roc_auc")]
    for task in ("click", "conversion"):
        auc = test[test["task"] == task].groupby("model")["value"]
        p = stats.levene(auc.get_group("esmm"), auc.get_group("mmoe")).pvalue
        lines.append(
            f"- {task}: Levene test of equal spread of the test AUC over seeds (esmm vs mmoe), "
            f"p={p:.3f}"
        )
    return "\n".join(lines)


def figure_curves(runs: dict, label, task: str, title: str, path: Path) -> None:
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.8), squeeze=False)
    for ax, (corr, records) in zip(axes[0], runs.items()):
        by: dict[str, list] = {}
        for record in records:
            by.setdefault(label(record), []).append(record.history.series("val", task, "roc_auc"))
        for name, series in by.items():
            length = max(len(s) for s in series)
            padded = np.full((len(series), length), np.nan)
            for i, s in enumerate(series):
                padded[i, : len(s)] = s
            ax.plot(range(1, length + 1), np.nanmean(padded, axis=0), label=name)
        ax.set_title(f"task correlation {corr:+.1f}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation ROC-AUC ({task})")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def figure_stability(records: list, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10.4, 3.8), sharey=True)
    late = []
    for ax, name in zip(axes, ("esmm", "mmoe")):
        for record in (r for r in records if r.label == name):
            series = record.history.series("val", "conversion", "roc_auc")
            ax.plot(range(1, len(series) + 1), series, alpha=0.7)
            late += series[4:] if len(series) > 4 else series  # past the first epochs
        ax.set_title(name)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("validation ROC-AUC of conversion")
    low, high = np.nanpercentile(late, [2, 100])
    axes[0].set_ylim(low - 0.2 * (high - low), high + 0.1 * (high - low))  # the plateau
    fig.suptitle("Click -> conversion funnel: validation AUC per epoch, one line per seed")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--correlations", type=float, nargs="+", default=[0.9, 0.5])
    parser.add_argument("--rows", type=int, default=10_000, help="rows (the funnel: twice)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--funnel-seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=TRAIN["epochs"], help="epoch cap")
    parser.add_argument("--noise", type=float, default=0.1, help="synthetic label noise")
    parser.add_argument("--funnel-noise", type=float, default=0.3, help="funnel score noise")
    parser.add_argument("--out", type=Path, default=RUNS / "observations")
    parser.add_argument("--figure-suffix", default="", help="appended to the figure names")
    args = parser.parse_args()
    text = "\n\n".join(
        [
            "## Joint vs alternating training on two partial-label files",
            joint_vs_alternating(args),
            "## ESMM vs MMoE on a click -> conversion funnel",
            esmm_vs_mmoe(args),
        ]
    )
    print("\n" + text)
    (args.out / "tables.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
