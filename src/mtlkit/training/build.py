"""The one way mtlkit's commands and APIs make an estimator from their settings.

``mtlkit compare``'s cells and tuning trials, ``mtlkit train`` and :mod:`mtlkit.compat` all
build their :class:`~mtlkit.training.estimator.MultiTaskEstimator` here, from the same four
parts: a model with its hyperparameters, a strategy with its settings, and the training
settings (:class:`~mtlkit.training.settings.TrainConfig`'s names and the reading options).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtlkit.training.estimator import MultiTaskEstimator


def build_estimator(
    model: str,
    strategy: str | None = None,
    *,
    model_params: Mapping[str, Any] | None = None,
    strategy_params: Mapping[str, Any] | None = None,
    **settings: Any,
) -> MultiTaskEstimator:
    """An unfitted estimator of ``model`` (with ``model_params``) trained with ``strategy``
    (a registry name, without ``:key=value`` settings: those go in ``strategy_params``);
    ``strategy=None`` keeps the estimator's default. Nothing is checked here (scikit-learn
    convention): ``check_params()`` or ``fit`` validates every setting once."""
    if strategy is not None:
        settings["strategy"] = strategy
    if strategy_params:
        settings["strategy_params"] = dict(strategy_params)
    return MultiTaskEstimator(model, **settings, **dict(model_params or {}))
