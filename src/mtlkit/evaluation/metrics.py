"""Per-task metrics on labelled rows only, computed with scikit-learn."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from mtlkit.data.schema import CLASSIFICATION_KINDS, TASK_KINDS, TaskSpec
from mtlkit.errors import ConfigError

CLASSIFICATION = frozenset(CLASSIFICATION_KINDS)
#: Equal-mass bins of the expected calibration error (:func:`expected_calibration_error`).
ECE_BINS = 10
ALL_KINDS = frozenset(TASK_KINDS)


@dataclass(frozen=True)
class Metric:
    """One metric of the vocabulary: its direction and the task kinds that report it."""

    name: str
    higher_is_better: bool
    task_kinds: frozenset[str]
    description: str


#: The one list of metrics: what the trainer monitors, compare ranks and the report shows.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("loss", False, ALL_KINDS, "the training loss: log loss, or MSE for regression"),
        Metric("roc_auc", True, CLASSIFICATION, "area under the ROC curve (one-vs-rest)"),
        Metric("pr_auc", True, frozenset({"binary"}), "average precision (area under PR)"),
        Metric("accuracy", True, CLASSIFICATION, "share of rows whose class is right"),
        Metric("log_loss", False, CLASSIFICATION, "cross-entropy of the probabilities"),
        Metric(
            "ece",
            False,
            CLASSIFICATION,
            f"expected calibration error, {ECE_BINS} equal-mass bins (multiclass: top label)",
        ),
        Metric("brier", False, CLASSIFICATION, "Brier score (multiclass: summed over classes)"),
        Metric("rmse", False, frozenset({"regression"}), "root mean squared error"),
        Metric("mae", False, frozenset({"regression"}), "mean absolute error"),
        Metric("r2", True, frozenset({"regression"}), "coefficient of determination"),
    )
}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)


def metric(name: str) -> Metric:
    """The metric called ``name``; a ConfigError listing the vocabulary otherwise."""
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; the metrics are {list(METRICS)}.")
    return METRICS[name]


def metrics_for(kind: str) -> list[str]:
    """The metrics a task of ``kind`` reports."""
    return [m.name for m in METRICS.values() if kind in m.task_kinds]


def check_reported(name: str, tasks: Sequence[TaskSpec], what: str = "monitor") -> list[str]:
    """The tasks that report metric ``name``; a ConfigError naming every task and the
    metrics it reports when none does."""
    covered = [t.name for t in tasks if t.kind in metric(name).task_kinds]
    if not covered:
        offered = "; ".join(f"{t.name} ({t.kind}): {', '.join(metrics_for(t.kind))}" for t in tasks)
        raise ConfigError(
            f"{what} {name!r} is not reported by any task. The tasks report: {offered}."
        )
    return covered


def task_metrics(spec: TaskSpec, y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """Metrics of one task. ``y_score``: P(y=1) (binary), class probabilities (multiclass) or
    predictions (regression). Only labelled rows may be passed in."""
    if len(y_true) == 0:
        return {}
    if spec.kind == "regression":
        mse = skm.mean_squared_error(y_true, y_score)
        return {
            "loss": float(mse),
            "rmse": float(np.sqrt(mse)),
            "mae": float(skm.mean_absolute_error(y_true, y_score)),
            "r2": float(skm.r2_score(y_true, y_score)) if len(y_true) > 1 else float("nan"),
        }
    y_true = y_true.astype(np.int64)
    labels = list(range(spec.n_classes))
    if spec.kind == "binary":
        probs = np.clip(y_score, 1e-7, 1 - 1e-7)
        out = {
            "loss": float(skm.log_loss(y_true, probs, labels=labels)),
            "accuracy": float(skm.accuracy_score(y_true, probs >= 0.5)),
        }
        if len(np.unique(y_true)) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, probs))
            out["pr_auc"] = float(skm.average_precision_score(y_true, probs))
        else:
            out["roc_auc"] = out["pr_auc"] = float("nan")
        out["log_loss"] = out["loss"]
        out["ece"] = expected_calibration_error(y_true, probs)
        out["brier"] = float(skm.brier_score_loss(y_true, probs, labels=labels))
        return out
    probs = y_score / y_score.sum(axis=1, keepdims=True)
    out = {
        "loss": float(skm.log_loss(y_true, probs, labels=labels)),
        "accuracy": float(skm.accuracy_score(y_true, probs.argmax(axis=1))),
    }
    present = np.unique(y_true)
    if len(present) == spec.n_classes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["roc_auc"] = float(skm.roc_auc_score(y_true, probs, multi_class="ovr"))
    else:
        out["roc_auc"] = float("nan")
    out["log_loss"] = out["loss"]
    top = probs.argmax(axis=1)
    out["ece"] = expected_calibration_error(top == y_true, probs.max(axis=1))
    out["brier"] = float(skm.brier_score_loss(y_true, probs, labels=labels))
    return out


def reliability_bins(
    y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-mass bins of the predicted probability ``y_prob``: per non-empty bin the mean
    prediction, the mean outcome (``y_true``: 0/1 labels, or true probabilities) and the
    number of rows. The bins are scikit-learn's ``calibration_curve(strategy="quantile")``
    bins (edges at the quantiles of ``y_prob``; tied predictions share a bin), which returns
    the first two but not the counts an ECE weighs by."""
    y_prob = np.asarray(y_prob, dtype=np.float64)
    edges = np.percentile(y_prob, np.linspace(0, 100, n_bins + 1))
    bins = np.searchsorted(edges[1:-1], y_prob)
    counts = np.bincount(bins, minlength=n_bins)
    sums = np.bincount(bins, weights=y_prob, minlength=n_bins)
    hits = np.bincount(bins, weights=np.asarray(y_true, dtype=np.float64), minlength=n_bins)
    kept = counts > 0
    return sums[kept] / counts[kept], hits[kept] / counts[kept], counts[kept]


def expected_calibration_error(
    y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """Expected calibration error (Naeini et al., AAAI 2015; Guo et al., ICML 2017):
    ``sum_b n_b / N * |mean(y_true)_b - mean(y_prob)_b|`` over the equal-mass bins of
    :func:`reliability_bins`. Binary tasks: ``y_prob`` = P(y=1) against the 0/1 labels;
    multiclass (top-label / confidence ECE): the top class's probability against whether
    that class is right. ``y_true`` may also hold true probabilities (synthetic data)."""
    if len(y_prob) == 0:
        return float("nan")
    mean_prob, mean_true, counts = reliability_bins(y_true, y_prob, n_bins)
    return float(np.sum(counts * np.abs(mean_true - mean_prob)) / counts.sum())


def all_task_metrics(
    tasks: list[TaskSpec] | tuple[TaskSpec, ...],
    y: np.ndarray,
    mask: np.ndarray,
    scores: dict[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """``{task: metrics}`` on the rows where each task is labelled."""
    return {
        spec.name: task_metrics(spec, y[mask[:, k], k], scores[spec.name][mask[:, k]])
        for k, spec in enumerate(tasks)
    }
