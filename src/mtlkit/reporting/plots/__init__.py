"""The plots of mtlkit, and the registry of the plots a comparison report shows.

Plotting functions take one or many models (a label -> list of runs, one per seed) and return
a matplotlib ``Figure`` with one panel per task; :func:`save_figure` writes it as PNG. A
report plot is a function ``(PlotInput) -> Figure | None`` registered in :data:`PLOTS` by a
module of this package (found automatically); ``scope="variant"`` plots are drawn once per
data variant (e.g. per task correlation), ``scope="grid"`` ones once per report, in
``order``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtlkit.evaluation.record import History
from mtlkit.registry import Registry
from mtlkit.reporting.figures import save_figure

#: ``{task: (y_true, y_score)}`` of one run on the labelled rows of one split.
TaskPredictions = Mapping[str, tuple[np.ndarray, np.ndarray]]


@dataclass
class PlotInput:
    """What a report plot may draw: per model label, the runs' histories and test
    predictions; the summary and tidy results (of one data variant for ``variant`` plots);
    the compared metric."""

    metric: str
    histories: dict[str, list[History]]
    predictions: dict[str, list[TaskPredictions]]
    summary: pd.DataFrame
    results: pd.DataFrame


#: Report plots by name (info: ``scope``, ``order``).
PLOTS: Registry[Callable[[PlotInput], Figure | None]] = Registry(
    "report plot", "mtlkit.reporting.plots"
)


def report_plots(scope: str) -> list:
    """The registered report plots of ``scope`` ("variant" or "grid"), in report order."""
    entries = [e for e in PLOTS.entries().values() if e.info["scope"] == scope]
    return sorted(entries, key=lambda e: e.info["order"])


from mtlkit.reporting.plots.curves import plot_pr, plot_roc  # noqa: E402
from mtlkit.reporting.plots.history import plot_history  # noqa: E402

__all__ = [
    "PLOTS",
    "PlotInput",
    "Sequence",
    "TaskPredictions",
    "plot_history",
    "plot_pr",
    "plot_roc",
    "report_plots",
    "save_figure",
]
