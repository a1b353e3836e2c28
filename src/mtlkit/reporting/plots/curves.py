"""ROC and precision-recall curves per binary task, with AUC / average precision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from mtlkit.errors import ConfigError
from mtlkit.reporting.figures import colours, panels, tasks_of
from mtlkit.reporting.plots import PLOTS, PlotInput, TaskPredictions


def plot_roc(predictions: Mapping[str, Sequence[TaskPredictions]]) -> Figure:
    """ROC curve per binary task, one colour per model (one line per seed), AUC in the legend."""
    return _curves(predictions, "ROC curves", _roc, ("false positive rate", "true positive rate"))


def plot_pr(predictions: Mapping[str, Sequence[TaskPredictions]]) -> Figure:
    """Precision-recall curve per binary task, one colour per model, average precision in the
    legend."""
    return _curves(predictions, "precision-recall curves", _pr, ("recall", "precision"))


def _roc(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr, roc_auc_score(y, s)


def _pr(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    precision, recall, _ = precision_recall_curve(y, s)
    return recall, precision, average_precision_score(y, s)


def _curves(predictions, title, curve, axis_labels) -> Figure:
    tasks = [
        t
        for t in tasks_of(predictions)
        if all(_is_binary(run[t][0]) for runs in predictions.values() for run in runs if t in run)
    ]
    if not tasks:
        raise ConfigError(f"{title} need at least one binary task with both classes labelled.")
    fig, axes = panels(len(tasks), title)
    for colour, (label, runs) in zip(colours(), predictions.items()):
        for ax, task in zip(axes, tasks):
            scores = []
            for i, run in enumerate(r for r in runs if task in r):
                x, y, score = curve(*run[task])
                scores.append(score)
                ax.plot(
                    x,
                    y,
                    color=colour,
                    alpha=1.0 if i == 0 else 0.35,
                    lw=1.4,
                    label=None if i else label,
                )
            if scores:
                legend = f"{label}: {np.mean(scores):.4f}"
                if len(scores) > 1:
                    legend += f" ± {np.std(scores):.4f}"
                ax.lines[-len(scores)].set_label(legend)
    for ax, task in zip(axes, tasks):
        ax.set(
            title=task, xlabel=axis_labels[0], ylabel=axis_labels[1], xlim=(0, 1), ylim=(0, 1.02)
        )
        if curve is _roc:
            ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", title="AUC" if curve is _roc else "avg. precision")
    fig.tight_layout()
    return fig


def _is_binary(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2 and set(np.unique(y)) <= {0, 1}


@PLOTS.register("auc", "test ROC curves per task", scope="variant", order=30)
def roc_plot(view: PlotInput) -> Figure | None:
    try:
        return plot_roc(view.predictions)
    except ConfigError:  # no binary task with both classes
        return None


@PLOTS.register("pr", "test precision-recall curves per task", scope="variant", order=40)
def pr_plot(view: PlotInput) -> Figure | None:
    try:
        return plot_pr(view.predictions)
    except ConfigError:
        return None
