"""mtlkit: multi-task learning on tabular data.

Public API (see the README): load partially labelled tables with :func:`load_tables`,
split them with :func:`split_table`, fit a model with :class:`MultiTaskEstimator`, and pick
models by name from :mod:`mtlkit.models`. Names are imported on first use, so light
commands (``mtlkit report``) do not load PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mtlkit.errors import ConfigError, DataError, MtlkitError

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_LAZY = {
    "MultiTaskEstimator": "mtlkit.training.estimator",
    "TrainConfig": "mtlkit.training.settings",
    "MultiTaskTable": "mtlkit.data.schema",
    "Schema": "mtlkit.data.schema",
    "TaskSpec": "mtlkit.data.schema",
    "load_features": "mtlkit.data.loading",
    "load_tables": "mtlkit.data.loading",
    "split_table": "mtlkit.data.splits",
    "make_synthetic": "mtlkit.data.synthetic",
    "write_partial_label_files": "mtlkit.data.synthetic",
}

__all__ = [
    "ConfigError",
    "DataError",
    "MtlkitError",
    "MultiTaskEstimator",
    "MultiTaskTable",
    "Schema",
    "TaskSpec",
    "TrainConfig",
    "load_features",
    "load_tables",
    "make_synthetic",
    "split_table",
    "write_partial_label_files",
]

if TYPE_CHECKING:
    from mtlkit.data.loading import load_features, load_tables
    from mtlkit.data.schema import MultiTaskTable, Schema, TaskSpec
    from mtlkit.data.splits import split_table
    from mtlkit.data.synthetic import make_synthetic, write_partial_label_files
    from mtlkit.training.estimator import MultiTaskEstimator
    from mtlkit.training.settings import TrainConfig


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mtlkit' has no attribute {name!r}")
