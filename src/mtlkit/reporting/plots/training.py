"""What happened inside training: task-gradient conflict, task weights and expert use over
epochs (from the diagnostics the trainer records)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mtlkit.evaluation.run_record import History
from mtlkit.reporting.figures import colours, panels
from mtlkit.reporting.plots import PLOTS, PlotInput


def plot_gradient_conflict(histories: Mapping[str, Sequence[History]]) -> Figure | None:
    """Cosine similarity of the task gradients on the shared parameters over epochs (below 0:
    the tasks pull the shared weights apart), mean over seeds with a min-max band. None when
    no run recorded it."""
    curves = {
        label: [c for c in (h.recorded_diagnostic("grad_cosine") for h in runs) if c is not None]
        for label, runs in histories.items()
    }
    curves = {label: c for label, c in curves.items() if c}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for colour, (label, series) in zip(colours(), curves.items()):
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
        label: [w for w in (h.task_weight_series() for h in runs) if w is not None]
        for label, runs in histories.items()
    }
    curves = {label: c for label, c in curves.items() if c}
    if not curves:
        return None
    tasks = list(dict.fromkeys(t for runs in curves.values() for w in runs for t in w))
    fig, axes = panels(len(tasks), "task weights per epoch (mean over seeds)")
    for colour, (label, runs) in zip(colours(), curves.items()):
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
        last = [
            u[-1]
            for u in (h.recorded_diagnostic("expert_utilization") for h in runs)
            if u and u[-1]
        ]
        if last:
            tasks = list(last[0])
            maps[label] = (tasks, np.mean([[u[t] for t in tasks] for u in last], axis=0))
    if not maps:
        return None
    fig, axes = panels(len(maps), "expert utilization: mean gate weight (last epoch)")
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


@PLOTS.register("conflict", "task-gradient conflict", scope="variant", order=60)
def conflict_plot(view: PlotInput) -> Figure | None:
    return plot_gradient_conflict(view.histories)


@PLOTS.register("weights", "task weights over epochs", scope="variant", order=70)
def weights_plot(view: PlotInput) -> Figure | None:
    return plot_task_weights(view.histories)


@PLOTS.register("utilization", "expert utilization", scope="variant", order=80)
def utilization_plot(view: PlotInput) -> Figure | None:
    return plot_expert_utilization(view.histories)
