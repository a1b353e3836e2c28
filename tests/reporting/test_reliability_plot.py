"""The reliability diagram of the compare report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtlkit.evaluation.metrics import expected_calibration_error
from mtlkit.reporting.figures import save_figure
from mtlkit.reporting.plots import PLOTS, PlotInput
from mtlkit.reporting.plots.reliability import plot_reliability


def _runs(seed: int, overconfident: bool) -> dict:
    rng = np.random.default_rng(seed)
    p = rng.random(30_000)
    y = (rng.random(p.size) < p).astype(int)
    score = np.clip(1.6 * (p - 0.5) + 0.5, 0, 1) if overconfident else p
    logits = rng.normal(0, 1, (p.size, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cls = (rng.random((p.size, 1)) > probs.cumsum(axis=1)).sum(axis=1)  # drawn from probs
    return {"b": (y, score), "m": (cls, probs), "r": (rng.random(p.size), rng.random(p.size))}


def test_one_panel_per_classification_task_with_the_ece_in_the_legend(tmp_path):
    predictions = {
        "calibrated": [_runs(0, False), _runs(1, False)],
        "overconfident": [_runs(0, True)],
    }
    kinds = {"b": "binary", "m": "multiclass", "r": "regression"}
    fig = plot_reliability(predictions, kinds)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["b", "m"]  # no panel for the regression task
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    y, score = predictions["overconfident"][0]["b"]
    assert legend[1] == f"overconfident: {expected_calibration_error(y, score):.4f}"
    assert legend[0].startswith("calibrated: 0.0") and "±" in legend[0]
    # The overconfident model's points lie off the diagonal, the calibrated ones near it.
    first = axes[0].lines[0]
    assert np.max(np.abs(first.get_xdata() - first.get_ydata())) < 0.05
    skewed = axes[0].lines[2]
    assert np.max(np.abs(skewed.get_xdata() - skewed.get_ydata())) > 0.1
    assert axes[1].get_xlabel() == "mean predicted top-label probability"
    assert save_figure(fig, tmp_path / "reliability.png").stat().st_size > 5000


def test_the_report_plot_reads_task_kinds_from_the_results():
    runs = {"m": [_runs(0, False)]}
    results = pd.DataFrame({"task": ["b", "r"], "task_kind": ["binary", "regression"]})
    plot = PLOTS.entry("reliability").target
    fig = plot(PlotInput("roc_auc", {}, runs, pd.DataFrame(), results))
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["b"]
    only_regression = results[results["task"] == "r"]
    assert plot(PlotInput("roc_auc", {}, runs, pd.DataFrame(), only_regression)) is None


def test_no_rows_draws_nothing_for_that_run():
    runs = {"a": [{"b": (np.array([], dtype=int), np.array([]))}, _runs(0, False)]}
    fig = plot_reliability(runs, {"b": "binary"})
    assert len(fig.axes[0].lines) == 2  # the other run's curve and the diagonal
