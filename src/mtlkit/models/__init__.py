"""The model zoo: ``create(name, schema, **hparams)`` and ``available()``.

Where things live: shared blocks in :mod:`.blocks`, the registry in :mod:`.registry`, one
module per architecture.
"""

from mtlkit.models import (  # noqa: F401  (registers models)
    aitm,
    cgc,
    cross_stitch,
    esmm,
    mmoe,
    omoe,
    ple,
    shared_bottom,
    single_task,
    sparse_mmoe,
)
from mtlkit.models.base import MTLModel
from mtlkit.models.registry import available, create, hyperparameters, register

__all__ = ["MTLModel", "available", "create", "hyperparameters", "register"]
