"""Per-task metrics on labelled rows only, computed with scikit-learn."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from mtlkit.data.schema import TaskSpec
from mtlkit.errors import ConfigError

CLASSIFICATION = frozenset({"binary", "multiclass"})
ALL_KINDS = frozenset({"binary", "multiclass", "regression"})


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
    return out


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
