"""Plots of a comparison grid beyond the standard four (see :mod:`mtlkit.reporting.plots`):
the test metric per model with confidence intervals, training time, the task-gradient
conflict over epochs, task weights over epochs, expert utilization of gated models, and
metric vs task correlation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtlkit.reporting.diagnostics import diagnostic, task_weights
from mtlkit.reporting.plots import _colours, _panels, plt
from mtlkit.training.trainer import History


def plot_metric_bars(summary: pd.DataFrame, metric: str) -> Figure:
    """Mean test ``metric`` per model (x strategy) per task, error bars = 95% CI over seeds.

    ``summary`` is :func:`mtlkit.experiments.stats.summarize_grid` for one data variant.
    """
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = _panels(len(tasks), f"test {metric} per model (error bars: 95% CI over seeds)")
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        names = [f"{m}\n{s}" for m, s in zip(rows["model"], rows["strategy"])]
        means = rows["mean"].to_numpy()
        err = np.nan_to_num(
            np.vstack([means - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - means])
        )
        x = np.arange(len(rows))
        ax.bar(x, means, yerr=err, capsize=4, color=_colours()[: len(rows)], alpha=0.85)
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
    ax.bar(x, stats["mean"], yerr=stats["std"].fillna(0), capsize=4, color=_colours()[: len(x)])
    for xi, (mean, params) in enumerate(zip(stats["mean"], stats["params"])):
        ax.annotate(f"{params:,} params", (xi, mean), ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(x, [f"{m}\n{s}" for m, s in stats.index], rotation=30, ha="right")
    ax.set(ylabel="training time per run (s)", title="training time per model")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_gradient_conflict(histories: Mapping[str, Sequence[History]]) -> Figure | None:
    """Cosine similarity of the task gradients on the shared parameters over epochs (below 0:
    the tasks pull the shared weights apart), mean over seeds with a min-max band. None when
    no run recorded it."""
    curves = {
        label: [c for c in (diagnostic(h, "grad_cosine") for h in runs) if c is not None]
        for label, runs in histories.items()
    }
    curves = {label: c for label, c in curves.items() if c}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for colour, (label, series) in zip(_colours(), curves.items()):
        length = min(map(len, series))
        stacked = np.array([s[:length] for s in series], dtype=float)
        epochs = np.arange(1, length + 1)
        ax.plot(epochs, stacked.mean(0), color=colour, label=label)
        if len(series) > 1:
            ax.fill_between(epochs, stacked.min(0), stacked.max(0), color=colour, alpha=0.15)
    ax.axhline(0, color="grey", lw=1, ls=":")
    ax.set(
        xlabel="epoch",
        ylabel="cosine of task gradients",
        title="task-gradient conflict",
        ylim=(-1, 1),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_task_weights(histories: Mapping[str, Sequence[History]]) -> Figure | None:
    """The weight each strategy gave each task over epochs (one panel per task, mean over
    seeds). Only runs whose weights change (uncertainty, DWA, GradNorm, aggregators) are
    drawn; None when there is none."""
    curves = {
        label: [w for w in (task_weights(h) for h in runs) if w is not None]
        for label, runs in histories.items()
    }
    curves = {label: c for label, c in curves.items() if c}
    if not curves:
        return None
    tasks = list(dict.fromkeys(t for runs in curves.values() for w in runs for t in w))
    fig, axes = _panels(len(tasks), "task weights per epoch (mean over seeds)")
    for colour, (label, runs) in zip(_colours(), curves.items()):
        for ax, task in zip(axes, tasks):
            series = [w[task] for w in runs if task in w]
            if not series:
                continue
            length = max(map(len, series))
            stacked = np.full((len(series), length), np.nan)
            for row, s in zip(stacked, series):
                row[: len(s)] = s
            ax.plot(np.arange(1, length + 1), np.nanmean(stacked, 0), color=colour, label=label)
    for ax, task in zip(axes, tasks):
        ax.set(title=task, xlabel="epoch", ylabel="task weight")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_expert_utilization(histories: Mapping[str, Sequence[History]]) -> Figure | None:
    """Per gated model, a task x expert heatmap of the mean gate weight in the last epoch,
    averaged over seeds. None when no run recorded gate weights."""
    maps = {}
    for label, runs in histories.items():
        last = [u[-1] for u in (diagnostic(h, "expert_utilization") for h in runs) if u and u[-1]]
        if last:
            tasks = list(last[0])
            maps[label] = (tasks, np.mean([[u[t] for t in tasks] for u in last], axis=0))
    if not maps:
        return None
    fig, axes = _panels(len(maps), "expert utilization: mean gate weight (last epoch)")
    for ax, (label, (tasks, weights)) in zip(axes, maps.items()):
        image = ax.imshow(weights, cmap="viridis", vmin=0, aspect="auto")
        ax.set_yticks(range(len(tasks)), tasks)
        ax.set_xticks(range(weights.shape[1]))
        ax.set(title=label, xlabel="expert")
        for (i, j), w in np.ndenumerate(weights):
            ax.text(j, i, f"{w:.2f}", ha="center", va="center", fontsize="x-small", color="w")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_metric_vs_correlation(summary: pd.DataFrame, metric: str) -> Figure | None:
    """Mean test ``metric`` against the synthetic task correlation, one line per model x
    strategy with its 95% CI as a band; None unless the grid spans two or more correlations."""
    if "correlation" not in summary or summary["correlation"].nunique() < 2:
        return None
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = _panels(len(tasks), f"test {metric} vs task correlation (band: 95% CI)")
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        for colour, ((model, strategy), line) in zip(
            _colours(), rows.groupby(["model", "strategy"], sort=False)
        ):
            line = line.sort_values("correlation")
            ax.plot(
                line["correlation"], line["mean"], "o-", color=colour, label=f"{model} + {strategy}"
            )
            ax.fill_between(
                line["correlation"], line["ci_low"], line["ci_high"], color=colour, alpha=0.15
            )
        ax.set(title=task, xlabel="task correlation", ylabel=f"test {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
