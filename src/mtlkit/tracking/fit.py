"""A fitted model as one tracked run.

The tracking layer sits below training (the estimator's ``track`` setting logs its own
fit), so it knows the estimator only through :class:`FittedRun`, what it reads of a fit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mtlkit.evaluation.run_record import History
from mtlkit.tracking.base import Tracker
from mtlkit.tracking.run_metrics import final_metrics, log_training


class FittedRun(Protocol):
    """What :func:`log_fit` reads of a fit (a fitted
    :class:`~mtlkit.training.estimator.MultiTaskEstimator` is one)."""

    model: str
    history_: History
    fit_time_: float

    @property
    def n_parameters_(self) -> int: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def save(self, folder: str | Path) -> Path: ...


def log_fit(
    tracker: Tracker,
    est: FittedRun,
    name: str,
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    model_dir: Path | None = None,
) -> str:
    """Log ``est`` (fitted) as a run named ``name``: its settings, its history, the best
    epoch's validation metrics, ``metrics`` (split -> task -> metric -> value, e.g. the test
    metrics) and its model folder (``model_dir``, else a copy saved for the run).
    Returns the run's id."""
    history = est.history_
    best = {"val": history.epochs[history.best_epoch - 1].val} if history.best_epoch else {}
    final = final_metrics(history, {**best, **(metrics or {})}, est.fit_time_, est.n_parameters_)
    params = {"model": est.model, **est.get_params()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(model_dir) if model_dir is not None else est.save(Path(tmp) / "model")
        with tracker.start_run(name) as run:
            log_training(run, params, history, final, folder)
    return run.id
