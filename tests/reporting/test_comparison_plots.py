"""The comparison plots, with hand-made histories that carry training diagnostics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtlkit.evaluation.run_record import Diagnostics, EpochRecord, History
from mtlkit.reporting.figures import save_figure
from mtlkit.reporting.plots.comparison import (
    plot_metric_bars,
    plot_metric_vs,
    plot_train_time,
)
from mtlkit.reporting.plots.training import (
    plot_expert_utilization,
    plot_gradient_conflict,
    plot_task_weights,
)


def _history(diagnostics: bool, shift: float = 0.0, gated: bool = True) -> History:
    h = History()
    for e in range(1, 4):
        record = EpochRecord(e, 0.1, 1e-3, 4, {"a": {"loss": 1 / e}}, {"a": {"loss": 1 / e}})
        if diagnostics:
            record.diagnostics = Diagnostics(
                grad_cosine=0.5 - 0.2 * e + shift,
                grad_norm_ratio=1.0,
                expert_utilization=(
                    {"a": [0.7, 0.2, 0.1], "b": [0.1 + shift, 0.3, 0.6]} if gated else {}
                ),
            )
            record.task_weights = {"a": 1.0, "b": 1.0}
        h.epochs.append(record)
    return h


def test_conflict_curve_and_utilization_heatmap_from_diagnostics(tmp_path):
    histories = {
        "mmoe + pcgrad": [_history(True), _history(True, 0.1)],
        "single_task + joint": [_history(False)],
        "shared_bottom + joint": [_history(True, gated=False)],  # measured, but has no gates
    }
    fig = plot_gradient_conflict(histories)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines[:1]] == [
        "mmoe + pcgrad"
    ]  # no-diagnostics run skipped
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.35, 0.15, -0.05])
    heat = plot_expert_utilization(histories)
    assert [ax.get_title() for ax in heat.axes if ax.images] == ["mmoe + pcgrad"]
    image = heat.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, [[0.7, 0.2, 0.1], [0.15, 0.3, 0.6]])
    assert save_figure(heat, tmp_path / "u.png").stat().st_size > 1000


def test_diagnostic_plots_are_skipped_without_diagnostics():
    histories = {"mmoe + joint": [_history(False)]}
    assert plot_gradient_conflict(histories) is None
    assert plot_expert_utilization(histories) is None


def _summary() -> pd.DataFrame:
    rows = []
    for corr in (0.9, 0.1):
        for model, mean in (("single_task", 0.80), ("mmoe", 0.82 if corr > 0.5 else 0.78)):
            rows.append(
                {
                    "correlation": corr,
                    "task": "a",
                    "model": model,
                    "strategy": "joint",
                    "mean": mean,
                    "ci_low": mean - 0.01,
                    "ci_high": mean + 0.02,
                }
            )
    return pd.DataFrame(rows)


def test_metric_bars_have_ci_error_bars_and_the_correlation_curve_is_sorted():
    summary = _summary()
    bars = plot_metric_bars(summary[summary["correlation"] == 0.9], "roc_auc")
    ax = bars.axes[0]
    assert [p.get_height() for p in ax.patches] == [0.80, 0.82]
    (caps,) = [c for c in ax.collections]  # the error bars
    segments = caps.get_segments()
    np.testing.assert_allclose([s[:, 1] for s in segments], [[0.79, 0.82], [0.81, 0.84]])
    curve = plot_metric_vs(summary, "roc_auc", "correlation")
    mmoe = curve.axes[0].lines[1]
    assert list(mmoe.get_xdata()) == [0.1, 0.9] and list(mmoe.get_ydata()) == [0.78, 0.82]
    assert plot_metric_vs(summary[summary["correlation"] == 0.9], "roc_auc", "correlation") is None


def test_train_time_counts_each_run_once():
    results = pd.DataFrame(
        {
            "run_id": ["r1", "r1", "r2", "r3"],
            "model": ["mmoe", "mmoe", "mmoe", "single_task"],
            "strategy": "joint",
            "train_time_s": [2.0, 2.0, 4.0, 1.0],
            "n_params": [100, 100, 100, 50],
        }
    )
    ax = plot_train_time(results).axes[0]
    assert [p.get_height() for p in ax.patches] == [3.0, 1.0]


def test_task_weight_curves_only_for_strategies_whose_weights_change():
    def weighted(values: list[float] | None) -> History:
        h = History()
        for e in range(3):
            weights = None if values is None else {"a": values[e], "b": 1.0}
            loss = {"a": {"loss": 1.0}}
            h.epochs.append(EpochRecord(e + 1, 0.1, 1e-3, 4, loss, loss, task_weights=weights))
        return h

    histories = {
        "mmoe + uncertainty": [weighted([1.0, 1.5, 2.0]), weighted([1.0, 2.5, 3.0])],
        "mmoe + joint": [weighted([1.0, 1.0, 1.0])],  # constant: not drawn
        "mmoe + alternating": [weighted(None)],  # no weights: not drawn
    }
    fig = plot_task_weights(histories)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["a", "b"]
    assert [line.get_label() for line in panels[0].lines] == ["mmoe + uncertainty"]
    np.testing.assert_allclose(panels[0].lines[0].get_ydata(), [1.0, 2.0, 2.5])
    assert plot_task_weights({"mmoe + joint": [weighted([1.0, 1.0, 1.0])]}) is None


def test_metric_vs_label_fraction_uses_a_log_axis_and_one_line_per_model():
    summary = _summary().rename(columns={"correlation": "label_fraction"})
    summary["correlation"] = 0.9  # one correlation: not named in the legend
    ax = plot_metric_vs(summary, "roc_auc", "label_fraction").axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10%", "90%"]
    assert [line.get_label() for line in ax.lines] == ["single_task + joint", "mmoe + joint"]
    assert list(ax.lines[1].get_xdata()) == [0.1, 0.9]
    assert list(ax.lines[1].get_ydata()) == [0.78, 0.82]
