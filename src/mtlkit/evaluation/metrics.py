"""Per-task metrics on labelled rows only, computed with scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

from mtlkit.data.schema import TaskSpec

#: Metrics where larger is better (used to pick "best" and for early stopping direction).
HIGHER_IS_BETTER = {"accuracy", "roc_auc", "pr_auc", "r2"}


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
