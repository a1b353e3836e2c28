"""What a finished training run becomes in a tracker, read from its run record.

Per epoch (the epoch is the step): ``train/<task>/<metric>`` and ``val/<task>/<metric>``,
``lr``, ``epoch_time_s``, ``task_weight/<task>`` and the diagnostics
(``diagnostics/grad_cosine``, ``.../grad_cosine_pair/<a>_vs_<b>``, ``.../grad_norm/<task>``,
``.../grad_norm_ratio``, ``.../expert_use/<gate>/expert<k>``), as
:class:`~mtlkit.evaluation.run_record.History` records them. Once: ``<split>/<task>/<metric>``
of the final metrics (``test``, and ``best_val`` for the restored epoch's validation
metrics), ``best_epoch``, ``epochs``, ``converged`` (1 or 0), ``train_time_s`` and
``n_params``. Values that were not measured (NaN, None) are left out. No name is a path
prefix of another (MLflow's file store keeps a metric as a file at its name).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mtlkit.evaluation.run_record import Diagnostics, History
from mtlkit.tracking.base import TrackedRun, metric_name

#: Final metric splits of a run record -> their name in the tracker (``val`` there is the
#: restored best epoch's, which must not extend the per-epoch ``val`` series).
FINAL_SPLITS = {"val": "best_val"}


def epoch_metrics(history: History) -> Iterator[tuple[int, dict[str, float]]]:
    """``(epoch, {name: value})`` for every epoch of ``history``."""
    for record in history.epochs:
        values: dict[str, Any] = {"lr": record.lr, "epoch_time_s": record.time_s}
        for split, per_task in (("train", record.train), ("val", record.val)):
            for task, metrics in per_task.items():
                for name, value in metrics.items():
                    values[metric_name(split, task, name)] = value
        for task, weight in (record.task_weights or {}).items():
            values[metric_name("task_weight", task)] = weight
        if record.diagnostics is not None:
            values.update(_diagnostics(record.diagnostics))
        yield record.epoch, _finite(values)


def _diagnostics(diagnostics: Diagnostics) -> dict[str, Any]:
    values = {
        metric_name("diagnostics", "grad_cosine"): diagnostics.grad_cosine,
        metric_name("diagnostics", "grad_norm_ratio"): diagnostics.grad_norm_ratio,
    }
    for pair, cosine in diagnostics.grad_cosine_pairs.items():
        values[metric_name("diagnostics", "grad_cosine_pair", pair.replace("|", "_vs_"))] = cosine
    for task, norm in diagnostics.grad_norm.items():
        values[metric_name("diagnostics", "grad_norm", task)] = norm
    for gate, weights in diagnostics.expert_utilization.items():
        for k, weight in enumerate(weights):
            values[metric_name("diagnostics", "expert_use", gate, f"expert{k}")] = weight
    return values


def final_metrics(
    history: History,
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
    train_time_s: float,
    n_params: int,
) -> dict[str, float]:
    """The numbers logged once: ``metrics`` (split -> task -> metric -> value) and the run's
    size and length."""
    values: dict[str, Any] = {
        "best_epoch": history.best_epoch,
        "epochs": len(history.epochs),
        "converged": float(history.converged),
        "train_time_s": train_time_s,
        "n_params": n_params,
    }
    for split, per_task in metrics.items():
        for task, per_metric in per_task.items():
            for name, value in per_metric.items():
                values[metric_name(FINAL_SPLITS.get(split, split), task, name)] = value
    return _finite(values)


def log_training(
    run: TrackedRun,
    params: Mapping[str, Any],
    history: History,
    final: Mapping[str, float],
    model_dir: Path | None = None,
) -> None:
    """Log one finished training run: its settings, its history epoch by epoch, its
    ``final`` numbers (see :func:`final_metrics`) and its model folder (artifact ``model``)."""
    run.log_params(params)
    for epoch, values in epoch_metrics(history):
        run.log_metrics(values, step=epoch)
    run.log_metrics(final)
    if model_dir is not None:
        run.log_artifacts(model_dir, "model")


def _finite(values: Mapping[str, Any]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in values.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }
