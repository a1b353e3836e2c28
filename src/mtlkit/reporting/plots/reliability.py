"""Reliability diagrams per classification task: observed frequency against the mean
predicted probability in the equal-mass bins of the expected calibration error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from mtlkit.data.schema import CLASSIFICATION_KINDS
from mtlkit.errors import ConfigError
from mtlkit.evaluation.metrics import ECE_BINS, expected_calibration_error, reliability_bins
from mtlkit.reporting.figures import colours, panels
from mtlkit.reporting.plots import PLOTS, PlotInput, TaskPredictions


def calibration_pairs(kind: str, y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(outcome, probability) of a task's rows as the ECE reads them: binary, the label
    and P(y=1); multiclass, whether the top class is right and its probability."""
    if kind == "multiclass":
        return (score.argmax(axis=1) == y).astype(float), score.max(axis=1)
    return y.astype(float), score


def plot_reliability(
    predictions: Mapping[str, Sequence[TaskPredictions]], kinds: Mapping[str, str]
) -> Figure:
    """One panel per binary or multiclass task of ``kinds`` (task -> kind): per model (one
    colour, one line per seed) the observed frequency against the mean prediction in
    :data:`~mtlkit.evaluation.metrics.ECE_BINS` equal-mass bins, the ECE in the legend."""
    tasks = [t for t, kind in kinds.items() if kind in CLASSIFICATION_KINDS]
    tasks = [t for t in tasks if any(t in run for runs in predictions.values() for run in runs)]
    if not tasks:
        raise ConfigError("reliability diagrams need a binary or multiclass task.")
    fig, axes = panels(len(tasks), f"reliability diagrams ({ECE_BINS} equal-mass bins)")
    for ax, task in zip(axes, tasks):
        top = 0.0
        for colour, (label, runs) in zip(colours(), predictions.items()):
            eces = []
            for i, run in enumerate(r for r in runs if task in r and len(r[task][0])):
                outcome, prob = calibration_pairs(kinds[task], *run[task])
                mean_prob, mean_true, _ = reliability_bins(outcome, prob)
                eces.append(expected_calibration_error(outcome, prob))
                top = max(top, mean_prob.max(), mean_true.max())
                ax.plot(mean_prob, mean_true, "o-", color=colour, alpha=1.0 if i == 0 else 0.35)
                ax.lines[-1].set_label(None if i else label)
            if eces:
                spread = f" ± {np.std(eces):.4f}" if len(eces) > 1 else ""
                ax.lines[-len(eces)].set_label(f"{label}: {np.mean(eces):.4f}{spread}")
        limit = min(1.0, 1.05 * top) if top > 0 else 1.0
        ax.plot([0, limit], [0, limit], ":", color="grey", lw=1)
        what = "top-label " if kinds[task] == "multiclass" else ""
        ax.set(
            title=task,
            xlabel=f"mean predicted {what}probability",
            ylabel="observed frequency" if not what else "accuracy",
            xlim=(0, limit),
            ylim=(0, limit),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", title="ECE")
    fig.tight_layout()
    return fig


@PLOTS.register(
    "reliability", "test reliability diagrams per classification task", scope="variant", order=45
)
def reliability_plot(view: PlotInput) -> Figure | None:
    if view.results.empty or "task_kind" not in view.results:
        return None
    kinds = dict(view.results.drop_duplicates("task")[["task", "task_kind"]].itertuples(False))
    try:
        return plot_reliability(view.predictions, kinds)
    except ConfigError:  # no classification task
        return None
