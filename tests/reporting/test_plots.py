import numpy as np
import pytest
from matplotlib.figure import Figure

from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import EpochRecord, History
from mtlkit.reporting.figures import save_figure
from mtlkit.reporting.plots.curves import plot_pr, plot_roc
from mtlkit.reporting.plots.history import plot_history


def _history(offset: float) -> History:
    h = History()
    for e in range(1, 6):
        h.epochs.append(
            EpochRecord(
                epoch=e,
                time_s=0.1,
                lr=1e-3,
                steps=4,
                train={t: {"loss": 1 / e + offset, "accuracy": 0.5 + e / 20} for t in ("a", "b")},
                val={t: {"loss": 1.2 / e + offset, "accuracy": 0.5 + e / 25} for t in ("a", "b")},
            )
        )
    return h


def test_history_plot_has_one_panel_per_task_with_train_and_val_lines(tmp_path):
    fig = plot_history("loss", {"mmoe": [_history(0), _history(0.1)], "single": [_history(0.2)]})
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    assert len(axes[0].lines) == 4  # 2 models x (train, val)
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), [1 / e + 0.05 for e in range(1, 6)])
    path = save_figure(fig, tmp_path / "loss.png")
    assert path.stat().st_size > 1000


def test_roc_and_pr_report_auc_in_the_legend():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    good = {
        "a": (y, y + rng.normal(0, 0.3, 500)),
        "r": (rng.normal(size=500), rng.normal(size=500)),
    }
    fig = plot_roc({"model": [good]})
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["a"]  # the regression task is left out
    legend = axes[0].get_legend().get_texts()[0].get_text()
    assert legend.startswith("model: 0.9")
    assert plot_pr({"model": [good, good]}).axes[0].get_legend() is not None


def test_unknown_metric_and_no_binary_task_are_refused():
    with pytest.raises(ConfigError, match="loss"):
        plot_history("auc", {"m": [_history(0)]})
    with pytest.raises(ConfigError, match="binary"):
        plot_roc({"m": [{"r": (np.arange(5.0), np.arange(5.0))}]})


def test_accuracy_plot_leaves_out_tasks_without_accuracy():
    h = _history(0)
    for record in h.epochs:  # a regression task: loss only
        record.train["r"] = {"loss": 1.0}
        record.val["r"] = {"loss": 1.0}
    titles = [
        ax.get_title() for ax in plot_history("accuracy", {"m": [h]}).axes if ax.get_visible()
    ]
    assert titles == ["a", "b"]
    regression = EpochRecord(1, 0.1, 1e-3, 4, {"r": {"loss": 1.0}}, {"r": {"loss": 1.0}})
    only_regression = History(epochs=[regression])
    with pytest.raises(ConfigError, match="accuracy"):
        plot_history("accuracy", {"m": [only_regression]})
