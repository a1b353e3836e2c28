"""Loss and accuracy per task over epochs (training dashed, validation solid)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import History
from mtlkit.reporting.figures import colours, panels, tasks_of
from mtlkit.reporting.plots import PLOTS, PlotInput


def plot_history(metric: str, histories: Mapping[str, Sequence[History]]) -> Figure:
    """``metric`` ("loss" or "accuracy") per task over epochs: training dashed, validation
    solid, one colour per model; with several seeds the line is the mean and the band spans
    the seeds' minimum to maximum. Tasks without the metric (regression has no accuracy)
    are left out."""
    if metric not in ("loss", "accuracy"):
        raise ConfigError(f"plot_history plots 'loss' or 'accuracy', got {metric!r}.")
    tasks = [
        t
        for t in tasks_of(histories)
        if any(
            not np.isnan(np.asarray(h.series(split, t, metric), float)).all()
            for runs in histories.values()
            for h in runs
            if _has(h, t)
            for split in ("train", "val")
        )
    ]
    if not tasks:
        raise ConfigError(f"no task reports {metric!r} (regression tasks have no accuracy).")
    fig, axes = panels(len(tasks), f"{metric} per epoch (dashed: train, solid: validation)")
    for colour, (label, runs) in zip(colours(), histories.items()):
        for ax, task in zip(axes, tasks):
            for split, style in (("train", "--"), ("val", "-")):
                series = [
                    np.asarray(h.series(split, task, metric), float) for h in runs if _has(h, task)
                ]
                if not series or all(np.isnan(s).all() for s in series):
                    continue
                # Runs stop early at different epochs: pad with NaN, average what exists.
                length = max(len(s) for s in series)
                stacked = np.full((len(series), length), np.nan)
                for row, s in zip(stacked, series):
                    row[: len(s)] = s
                epochs = np.arange(1, length + 1)
                ax.plot(
                    epochs,
                    np.nanmean(stacked, 0),
                    style,
                    color=colour,
                    label=label if split == "val" else None,
                )
                if len(series) > 1:
                    ax.fill_between(
                        epochs,
                        np.nanmin(stacked, 0),
                        np.nanmax(stacked, 0),
                        color=colour,
                        alpha=0.15,
                    )
    for ax, task in zip(axes, tasks):
        ax.set(title=task, xlabel="epoch", ylabel=metric)
        ax.grid(alpha=0.3)
    # One legend for the whole figure (one entry per model), below the panels.
    entries = {lab: h for ax in axes for h, lab in zip(*ax.get_legend_handles_labels())}
    handles, labels = list(entries.values()), list(entries)
    fig.tight_layout()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(len(labels), 4),
        fontsize="small",
    )
    return fig


def _has(history: History, task: str) -> bool:
    """Whether ``history`` trained ``task`` (a grouped configuration's run trains only its
    group's tasks)."""
    return bool(history.epochs) and task in history.epochs[0].train


@PLOTS.register("loss", "loss per task over epochs", scope="variant", order=10)
def loss_plot(view: PlotInput) -> Figure:
    return plot_history("loss", view.histories)


@PLOTS.register("accuracy", "accuracy per task over epochs", scope="variant", order=20)
def accuracy_plot(view: PlotInput) -> Figure | None:
    try:
        return plot_history("accuracy", view.histories)
    except ConfigError:  # only regression tasks: nothing to show
        return None
