"""The model zoo: ``create(name, schema, **hparams)`` and ``available()``.

Where things live: shared blocks in :mod:`.blocks`, the registry in :mod:`.registry`, one
module per architecture.
"""

from mtlkit.models import mmoe, shared_bottom, single_task  # noqa: F401  (registers models)
from mtlkit.models.base import MTLModel
from mtlkit.models.registry import available, create, hyperparameters, register

__all__ = ["MTLModel", "available", "create", "hyperparameters", "register"]
