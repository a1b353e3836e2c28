"""The plots of mtlkit, and the registry of the plots a comparison report shows.

Plotting functions (one module each: :mod:`.curves` ``plot_roc``/``plot_pr``, :mod:`.history`
``plot_history``, ...) take one or many models (a label -> list of runs, one per seed) and
return a matplotlib ``Figure`` with one panel per task;
:func:`~mtlkit.reporting.figures.save_figure` writes it as PNG. A report plot is a function
``(PlotInput) -> Figure | None`` registered in :data:`PLOTS` by a module of this package
(found automatically); ``scope="variant"`` plots are drawn once per data variant (e.g. per
task correlation), ``scope="grid"`` ones once per report, in ``order``. This module imports
none of its plot modules (they import it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtlkit.evaluation.run_record import History
from mtlkit.registry import Registry

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
