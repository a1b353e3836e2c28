"""The model zoo's registry: one name -> one constructor, ``create("mmoe", schema, n_experts=8)``.

Each architecture module registers its class with :data:`MODELS` and declares its
hyperparameters (type, range, search space) next to its code; the common ones (embedding
size, activation, dropout, normalisation) are declared once in :mod:`.base`.
"""

from __future__ import annotations

from mtlkit.data.schema import Schema
from mtlkit.models.base import COMMON_PARAMS, MTLModel
from mtlkit.params import Param
from mtlkit.registry import Checked, Entry, Registry

MODELS: Registry[type[MTLModel]] = Registry("model", "mtlkit.models", common=COMMON_PARAMS)
register = MODELS.register


def available() -> dict[str, str]:
    """Registered model names with a one-line description each."""
    return MODELS.available()


def entry(name: str) -> Entry[type[MTLModel]]:
    """The registry entry of model ``name`` (its class, declared parameters, fixed settings)."""
    return MODELS.entry(name)


def params(name: str) -> tuple[Param, ...]:
    """The declared hyperparameters of model ``name``."""
    return MODELS.entry(name).params


def hyperparameters(name: str) -> dict[str, object]:
    """The hyperparameters model ``name`` takes, with their defaults."""
    return MODELS.entry(name).defaults()


def check_model(name: str, hparams: dict) -> Checked[type[MTLModel]]:
    """Model ``name`` with ``hparams`` validated: unknown names and bad values raise
    :class:`~mtlkit.errors.ConfigError` before any data is read. ``.build(schema)`` makes
    the model without checking them again."""
    return MODELS.entry(name).check(hparams, "model")


def check_hyperparameters(name: str, hparams: dict) -> dict[str, object]:
    """Every hyperparameter of model ``name``, ``hparams`` validated (see
    :func:`check_model`)."""
    return dict(check_model(name, hparams).params)


def build_model(model: Checked[type[MTLModel]], schema: Schema) -> MTLModel:
    """The model of a :func:`check_model` result for ``schema``, its hyperparameters not
    checked again (the estimator checks them once per fit)."""
    return model.build(schema)


def create(name: str, schema: Schema, **hparams: object) -> MTLModel:
    """Build the model registered as ``name`` for ``schema`` (``hparams`` checked here)."""
    return build_model(check_model(name, hparams), schema)
