"""Per-task metrics on labelled rows only, computed with scikit-learn."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from mtlkit.data.schema import CLASSIFICATION_KINDS, TASK_KINDS, TaskSpec
from mtlkit.errors import ConfigError

CLASSIFICATION = frozenset(CLASSIFICATION_KINDS)
#: Equal-mass bins of the expected calibration error (:func:`expected_calibration_error`).
ECE_BINS = 10
ALL_KINDS = frozenset(TASK_KINDS)
#: Probabilities are clipped to [PROB_EPS, 1 - PROB_EPS] before a log is taken (the binary
#: log loss here, the models' binary cross-entropy in mtlkit.models.outputs).
PROB_EPS = 1e-7


@dataclass(frozen=True)
class Scored:
    """One task's labelled rows, prepared once for every metric: ``y`` the true values
    (class ids for classification), ``p`` the scores (binary: P(y=1) clipped by
    :data:`PROB_EPS`; multiclass: class probabilities summing to 1; regression:
    predictions)."""

    spec: TaskSpec
    y: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, spec: TaskSpec, y_true: np.ndarray, y_score: np.ndarray) -> Scored:
        if spec.kind == "regression":
            return cls(spec, y_true, y_score)
        y = y_true.astype(np.int64)
        if spec.kind == "binary":
            return cls(spec, y, np.clip(y_score, PROB_EPS, 1 - PROB_EPS))
        return cls(spec, y, y_score / y_score.sum(axis=1, keepdims=True))

    @property
    def labels(self) -> list[int]:
        return list(range(self.spec.n_classes))

    @property
    def predicted(self) -> np.ndarray:
        """The predicted class of each row."""
        return self.p >= 0.5 if self.spec.kind == "binary" else self.p.argmax(axis=1)

    @property
    def all_classes_present(self) -> bool:
        """Whether every class occurs among the labels (a ranking metric needs them all)."""
        return len(np.unique(self.y)) == self.spec.n_classes


def _loss(s: Scored) -> float:
    return _mse(s) if s.spec.kind == "regression" else _log_loss(s)


def _log_loss(s: Scored) -> float:
    return float(skm.log_loss(s.y, s.p, labels=s.labels))


def _roc_auc(s: Scored) -> float:
    if not s.all_classes_present:
        return float("nan")
    if s.spec.kind == "binary":
        return float(skm.roc_auc_score(s.y, s.p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(skm.roc_auc_score(s.y, s.p, multi_class="ovr"))


def _pr_auc(s: Scored) -> float:
    return float(skm.average_precision_score(s.y, s.p)) if s.all_classes_present else float("nan")


def _ece(s: Scored) -> float:
    if s.spec.kind == "binary":
        return expected_calibration_error(s.y, s.p)
    return expected_calibration_error(s.predicted == s.y, s.p.max(axis=1))


def _mse(s: Scored) -> float:
    return float(skm.mean_squared_error(s.y, s.p))


def _r2(s: Scored) -> float:
    return float(skm.r2_score(s.y, s.p)) if len(s.y) > 1 else float("nan")


_MISSING_CLASS = "a class is missing from the labels"


@dataclass(frozen=True)
class Metric:
    """One metric of the vocabulary: its direction, the task kinds that report it and how
    it is computed from a task's :class:`Scored` rows (scikit-learn's functions)."""

    name: str
    higher_is_better: bool
    task_kinds: frozenset[str]
    description: str
    compute: Callable[[Scored], float]
    #: When the metric is undefined (NaN), e.g. "a class is missing from the labels".
    undefined_when: str = ""


#: The one list of metrics: what the trainer monitors, compare ranks and the report shows.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "loss",
            False,
            ALL_KINDS,
            "the training loss: log loss, or MSE for regression",
            _loss,
        ),
        Metric(
            "roc_auc",
            True,
            CLASSIFICATION,
            "area under the ROC curve (one-vs-rest)",
            _roc_auc,
            _MISSING_CLASS,
        ),
        Metric(
            "pr_auc",
            True,
            frozenset({"binary"}),
            "average precision (area under PR)",
            _pr_auc,
            _MISSING_CLASS,
        ),
        Metric(
            "accuracy",
            True,
            CLASSIFICATION,
            "share of rows whose class is right",
            lambda s: float(skm.accuracy_score(s.y, s.predicted)),
        ),
        Metric("log_loss", False, CLASSIFICATION, "cross-entropy of the probabilities", _log_loss),
        Metric(
            "ece",
            False,
            CLASSIFICATION,
            f"expected calibration error, {ECE_BINS} equal-mass bins (multiclass: top label)",
            _ece,
        ),
        Metric(
            "brier",
            False,
            CLASSIFICATION,
            "Brier score (multiclass: summed over classes)",
            lambda s: float(skm.brier_score_loss(s.y, s.p, labels=s.labels)),
        ),
        Metric(
            "rmse",
            False,
            frozenset({"regression"}),
            "root mean squared error",
            lambda s: float(np.sqrt(_mse(s))),
        ),
        Metric(
            "mae",
            False,
            frozenset({"regression"}),
            "mean absolute error",
            lambda s: float(skm.mean_absolute_error(s.y, s.p)),
        ),
        Metric(
            "r2",
            True,
            frozenset({"regression"}),
            "coefficient of determination",
            _r2,
            "there is a single labelled row",
        ),
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
    """The metrics a task of ``spec.kind`` reports (:data:`METRICS`). ``y_score``: P(y=1)
    (binary), class probabilities (multiclass) or predictions (regression). Only labelled
    rows may be passed in."""
    if len(y_true) == 0:
        return {}
    scored = Scored.of(spec, y_true, y_score)
    return {m.name: m.compute(scored) for m in METRICS.values() if spec.kind in m.task_kinds}


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


def undefined_metrics(metrics: Mapping[str, Mapping[str, float]], rows: str) -> str | None:
    """A sentence naming the metrics of ``{task: metrics}`` that could not be computed (NaN)
    on ``rows`` (e.g. "the test split") and why, or None when every one is a number."""
    found: dict[str, list[str]] = {}
    for task, values in metrics.items():
        for name, value in values.items():
            if isinstance(value, float) and math.isnan(value):
                found.setdefault(f"{task!r}", []).append(name)
    if not found:
        return None
    reasons = {
        METRICS[n].undefined_when or "the scores are not finite"
        for names in found.values()
        for n in names
        if n in METRICS
    }
    listed = "; ".join(f"{task}: {', '.join(names)}" for task, names in found.items())
    return f"metrics undefined on {rows} ({listed}): {' or '.join(sorted(reasons))}"
