"""The estimator's parameter declarations and their checks.

:data:`OWN_PARAMS` are :class:`~mtlkit.training.estimator.MultiTaskEstimator`'s own
arguments; with :class:`~mtlkit.training.settings.TrainConfig`'s settings they make the
estimator's keyword arguments, its defaults and its generated ``__init__`` signature (one list
of settings for the API, the CLI and config files). The model's hyperparameters and the
strategy's settings are checked by their registries (:func:`mtlkit.models.check_model`,
:func:`mtlkit.training.strategies.choose_strategy`), once per fit: see
:class:`CheckedSettings`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mtlkit.data.read_options import READ_PARAMS
from mtlkit.errors import ConfigError
from mtlkit.params import Float, Param, Str
from mtlkit.registry import Checked
from mtlkit.tracking import TRACK
from mtlkit.training.settings import DEFAULT_MODEL, DEFAULT_STRATEGY, TrainConfig

#: The estimator's own arguments (besides the model name, the training settings of
#: :class:`TrainConfig` and the model's hyperparameters).
OWN_PARAMS: tuple[Param, ...] = (
    Param("labels", None, "names", "the label columns when fitting on files or data frames"),
    Str("strategy", DEFAULT_STRATEGY, "training strategy (see mtlkit.training.strategies)"),
    Param("strategy_params", None, "mapping", "the strategy's settings", optional=True),
    Param("task_kinds", None, "mapping", "task kind overrides: label -> kind", optional=True),
    Param(
        "feature_kinds", None, "mapping", "feature kind overrides: column -> kind", optional=True
    ),
    Str(
        "funnel_check",
        "error",
        "funnel models (esmm, aitm): a training row positive for a step but not for the step "
        "before is an error, or only a warning",
        choices=("error", "warn"),
    ),
    Float(
        "validation_fraction",
        0.15,
        "share of the training rows held out for early stopping when no validation data is given",
        low=0.0,
        open_low=True,
        high=0.5,
    ),
    TRACK,
    *READ_PARAMS,
)


@dataclass(frozen=True)
class CheckedSettings:
    """An estimator's settings after its one check (``MultiTaskEstimator.check_params``):
    the training settings, and the model and the strategy with their settings validated.
    The model, the trainer and the strategy are built from it without checking again."""

    config: TrainConfig
    model: Checked
    strategy: Checked


def setting_defaults() -> dict[str, Any]:
    """Every setting the estimator takes (besides ``model``), with its default."""
    return {p.name: p.default for p in (*OWN_PARAMS, *TrainConfig.params())}


def signature() -> inspect.Signature:
    """The estimator's ``__init__`` signature: ``model``, every setting with its default,
    then the model's hyperparameters as keyword arguments."""
    kw = inspect.Parameter.KEYWORD_ONLY
    return inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter(
                "model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=DEFAULT_MODEL
            ),
            *(inspect.Parameter(n, kw, default=d) for n, d in setting_defaults().items()),
            inspect.Parameter("hyperparameters", inspect.Parameter.VAR_KEYWORD),
        ]
    )


def check_kinds(name: str, kinds: Mapping | None, allowed: Sequence[str]) -> None:
    """Refuse a kind override (``feature_kinds``, ``task_kinds``) outside ``allowed``."""
    for column, kind in (kinds or {}).items():
        if kind not in allowed:
            raise ConfigError(f"{name}[{column!r}] is {kind!r}; use one of {list(allowed)}.")


def check_hyperparameter_name(name: str, estimator: type) -> None:
    """Refuse a model hyperparameter that would replace one of the ``estimator`` class's own
    attributes (a method, ``model_params``, a fitted ``schema_``): the setting would be
    lost or the estimator broken."""
    if hasattr(estimator, name) or name.startswith("_") or name.endswith("_"):
        raise ConfigError(
            f"{name!r} is neither a setting of MultiTaskEstimator nor a model hyperparameter "
            "name (it is one of the estimator's own attributes); give the model's "
            "hyperparameters as keyword arguments, e.g. MultiTaskEstimator('mmoe', "
            "n_experts=8) ('mtlkit models --verbose' lists them)."
        )
