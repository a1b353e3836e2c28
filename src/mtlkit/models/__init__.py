"""The model zoo: ``create(name, schema, **hparams)`` and ``available()``.

Where things live: shared blocks in :mod:`.blocks`, the interface in :mod:`.base`, the
registry in :mod:`.registry`, one module per architecture (found automatically).
"""

from mtlkit.models.base import MTLModel
from mtlkit.models.registry import (
    MODELS,
    available,
    build_model,
    check_hyperparameters,
    check_model,
    create,
    hyperparameters,
    params,
    register,
)

__all__ = [
    "MODELS",
    "MTLModel",
    "available",
    "build_model",
    "check_hyperparameters",
    "check_model",
    "create",
    "hyperparameters",
    "params",
    "register",
]
