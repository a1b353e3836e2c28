"""mtlkit: multi-task learning on tabular data.

Public API (see the README): load partially labelled tables with :func:`load_tables`,
split them with :func:`split_table`, fit a model with :class:`MultiTaskEstimator`, and pick
models by name from :mod:`mtlkit.models`.
"""

from mtlkit.data.loading import load_features, load_tables
from mtlkit.data.schema import MultiTaskTable, Schema, TaskSpec
from mtlkit.data.splits import split_table
from mtlkit.data.synthetic import make_synthetic, write_partial_label_files
from mtlkit.errors import ConfigError, DataError, MtlkitError
from mtlkit.training.estimator import MultiTaskEstimator

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "MtlkitError",
    "MultiTaskEstimator",
    "MultiTaskTable",
    "Schema",
    "TaskSpec",
    "load_features",
    "load_tables",
    "make_synthetic",
    "split_table",
    "write_partial_label_files",
]
