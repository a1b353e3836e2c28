"""The standard plots: loss and accuracy over epochs, ROC and precision-recall curves.

Each function takes one or many models (a label -> list of runs, one per seed) and returns a
matplotlib ``Figure`` with one panel per task; :func:`save_figure` writes it as PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(
    ("module://", "nbagg")
) else None
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from mtlkit.errors import ConfigError  # noqa: E402
from mtlkit.training.trainer import History  # noqa: E402

#: ``{task: (y_true, y_score)}`` of one run on the labelled rows of one split.
TaskPredictions = Mapping[str, tuple[np.ndarray, np.ndarray]]

PLOT_NAMES = ("loss", "accuracy", "auc", "pr")


def _panels(n: int, title: str) -> tuple[Figure, list]:
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, list(axes.flat[:n])


def plot_history(metric: str, histories: Mapping[str, Sequence[History]]) -> Figure:
    """``metric`` ("loss" or "accuracy") per task over epochs: training dashed, validation
    solid, one colour per model; with several seeds the line is the mean and the band spans
    the seeds' minimum to maximum. Tasks without the metric (regression has no accuracy)
    are left out."""
    if metric not in ("loss", "accuracy"):
        raise ConfigError(f"plot_history plots 'loss' or 'accuracy', got {metric!r}.")
    tasks = [
        t
        for t in _tasks_of(histories)
        if any(
            not np.isnan(np.asarray(h.series(split, t, metric), float)).all()
            for runs in histories.values()
            for h in runs
            for split in ("train", "val")
        )
    ]
    if not tasks:
        raise ConfigError(f"no task reports {metric!r} (regression tasks have no accuracy).")
    fig, axes = _panels(len(tasks), f"{metric} per epoch (dashed: train, solid: validation)")
    for colour, (label, runs) in zip(_colours(), histories.items()):
        for ax, task in zip(axes, tasks):
            for split, style in (("train", "--"), ("val", "-")):
                series = [np.asarray(h.series(split, task, metric), float) for h in runs]
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


def plot_roc(predictions: Mapping[str, Sequence[TaskPredictions]]) -> Figure:
    """ROC curve per binary task, one colour per model (one line per seed), AUC in the legend."""
    return _curves(predictions, "ROC curves", _roc, ("false positive rate", "true positive rate"))


def plot_pr(predictions: Mapping[str, Sequence[TaskPredictions]]) -> Figure:
    """Precision-recall curve per binary task, one colour per model, average precision in the
    legend."""
    return _curves(predictions, "precision-recall curves", _pr, ("recall", "precision"))


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (folders created) and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _roc(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr, roc_auc_score(y, s)


def _pr(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    precision, recall, _ = precision_recall_curve(y, s)
    return recall, precision, average_precision_score(y, s)


def _curves(predictions, title, curve, axis_labels) -> Figure:
    tasks = [
        t
        for t in _tasks_of(predictions)
        if all(_is_binary(run[t][0]) for runs in predictions.values() for run in runs if t in run)
    ]
    if not tasks:
        raise ConfigError(f"{title} need at least one binary task with both classes labelled.")
    fig, axes = _panels(len(tasks), title)
    for colour, (label, runs) in zip(_colours(), predictions.items()):
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


def _tasks_of(per_model: Mapping[str, Sequence]) -> list[str]:
    tasks: list[str] = []
    for runs in per_model.values():
        for run in runs:
            names = run.epochs[0]["train"] if isinstance(run, History) and run.epochs else run
            tasks.extend(t for t in names if t not in tasks)
    if not tasks:
        raise ConfigError("nothing to plot: no run has any task.")
    return tasks


def _colours():
    return plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10
