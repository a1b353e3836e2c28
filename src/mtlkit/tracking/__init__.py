"""Experiment tracking: every training run logged to MLflow or TensorBoard.

``--track mlflow|tensorboard`` on ``mtlkit train`` and ``mtlkit compare``,
``MultiTaskEstimator(track=...)`` and ``execute(..., track=...)`` in Python. Runs are logged
from their finished run record (:mod:`.run_metrics`): settings, per-epoch per-task metrics with
the epoch as step, the diagnostics, final metrics and the model folder; a comparison grid is
one parent run with a child run per cell (:mod:`mtlkit.experiments.grid_tracking`). Backends
are plug-ins (:data:`TRACKERS`, one module each in :mod:`.backends`); their packages are
optional extras. This layer knows runs and their records, not models or training: the
estimator and the comparison grid log through it.
"""

from __future__ import annotations

from mtlkit.params import Str
from mtlkit.tracking.base import TRACKERS, TrackedRun, Tracker

#: The one declaration of the ``track`` setting (estimator argument and CLI flag).
TRACK = Str(
    "track",
    None,
    "log the runs to an experiment tracker: mlflow ($MLFLOW_TRACKING_URI, else ./mlruns) or "
    "tensorboard (./runs/tensorboard)",
    choices=tuple(TRACKERS.names()),
    optional=True,
)


def make_tracker(track: str | None) -> Tracker | None:
    """The tracker named ``track`` at its default location, or None for no tracking; a
    :class:`~mtlkit.errors.ConfigError` naming the extra when its package is missing."""
    if track is None:
        return None
    return TRACKERS.entry(TRACK.validate(track)).target.create()


__all__ = ["TRACK", "TRACKERS", "TrackedRun", "Tracker", "make_tracker"]
