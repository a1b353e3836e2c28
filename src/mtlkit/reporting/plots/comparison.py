"""Plots across the models of a grid: the test metric with confidence intervals, training
time, and the metric against the task correlation and the share of training labels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtlkit.reporting.figures import colours, panels
from mtlkit.reporting.plots import PLOTS, PlotInput


def plot_metric_bars(summary: pd.DataFrame, metric: str) -> Figure:
    """Mean test ``metric`` per model (x strategy) per task, error bars = 95% CI over seeds.

    ``summary`` is :func:`mtlkit.experiments.stats.summarize_grid` for one data variant.
    """
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = panels(len(tasks), f"test {metric} per model (error bars: 95% CI over seeds)")
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        names = [f"{m}\n{s}" for m, s in zip(rows["model"], rows["strategy"])]
        means = rows["mean"].to_numpy()
        err = np.nan_to_num(
            np.vstack([means - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - means])
        )
        x = np.arange(len(rows))
        ax.bar(x, means, yerr=err, capsize=4, color=colours()[: len(rows)], alpha=0.85)
        low = np.nanmin(rows["ci_low"].fillna(rows["mean"]))
        high = np.nanmax(rows["ci_high"].fillna(rows["mean"]))
        pad = max((high - low) * 0.6, 1e-3)
        ax.set_ylim(low - pad, high + pad)  # zoom: the differences are what matters
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize="small")
        ax.set(title=task, ylabel=f"test {metric}")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_train_time(results: pd.DataFrame) -> Figure:
    """Mean training time per run for each model x strategy (error bars: std over runs),
    with the parameter count on each bar."""
    runs = results.drop_duplicates("run_id")
    stats = runs.groupby(["model", "strategy"], sort=False).agg(
        mean=("train_time_s", "mean"), std=("train_time_s", "std"), params=("n_params", "first")
    )
    fig, ax = plt.subplots(figsize=(max(4.8, 1.1 * len(stats) + 2), 3.8))
    x = np.arange(len(stats))
    ax.bar(x, stats["mean"], yerr=stats["std"].fillna(0), capsize=4, color=colours()[: len(x)])
    for xi, (mean, params) in enumerate(zip(stats["mean"], stats["params"])):
        ax.annotate(f"{params:,} params", (xi, mean), ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(x, [f"{m}\n{s}" for m, s in stats.index], rotation=30, ha="right")
    ax.set(ylabel="training time per run (s)", title="training time per model")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_metric_vs(summary: pd.DataFrame, metric: str, axis: str) -> Figure | None:
    """Mean test ``metric`` against a data-variant column ``axis`` ("correlation" or
    "label_fraction", drawn on a log scale), one line per model x strategy (x the other
    variant column, when it varies too) with its 95% CI as a band; None unless the grid
    spans two or more values of ``axis``."""
    if axis not in summary or summary[axis].nunique() < 2:
        return None
    what = AXES[axis]
    others = [c for c in AXES if c != axis and c in summary and summary[c].nunique() > 1]
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = panels(len(tasks), f"test {metric} vs {what} (band: 95% CI)")
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        lines = rows.groupby([*others, "model", "strategy"], sort=False)
        for colour, (key, line) in zip(colours(), lines):
            *other, model, strategy = key
            label = f"{model} + {strategy}" + "".join(
                f" ({AXES[c]} {v:g})" for c, v in zip(others, other)
            )
            line = line.sort_values(axis)
            ax.plot(line[axis], line["mean"], "o-", color=colour, label=label)
            ax.fill_between(line[axis], line["ci_low"], line["ci_high"], color=colour, alpha=0.15)
        if axis == "label_fraction":
            ax.set_xscale("log")
            values = sorted(rows[axis].unique())
            ax.set_xticks(values, [f"{100 * v:.3g}%" for v in values])
            ax.minorticks_off()
        ax.set(title=task, xlabel=what, ylabel=f"test {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


#: The data-variant columns a plot can put on its x axis, with their axis labels.
AXES = {
    "correlation": "task correlation",
    "label_fraction": "share of the scarce task's training labels",
}


@PLOTS.register("metric", "test metric per model with 95% CI", scope="variant", order=50)
def metric_plot(view: PlotInput) -> Figure:
    return plot_metric_bars(view.summary, view.metric)


@PLOTS.register("time", "training time per model", scope="grid", order=10)
def time_plot(view: PlotInput) -> Figure:
    return plot_train_time(view.results)


@PLOTS.register("metric_vs_correlation", "test metric vs task correlation", scope="grid", order=20)
def correlation_plot(view: PlotInput) -> Figure | None:
    return plot_metric_vs(view.summary, view.metric, "correlation")


@PLOTS.register(
    "metric_vs_label_fraction",
    "test metric vs the share of the scarce task's training labels (log scale)",
    scope="grid",
    order=5,
)
def label_fraction_plot(view: PlotInput) -> Figure | None:
    return plot_metric_vs(view.summary, view.metric, "label_fraction")
