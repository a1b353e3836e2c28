"""The estimator's input adapters: what ``fit``/``predict``/``score`` accept, as a table.

A table (in memory or streamed) is taken as is; files, folders and data frames are read by
the data layer (:func:`~mtlkit.data.loading.load_tables`); scikit-learn style ``X`` (a
feature array or frame) and ``y`` (one column per task) become one frame first, whose
errors are scikit-learn's own checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array

from mtlkit.data import protocol
from mtlkit.data.loading import Sources, load_tables
from mtlkit.data.protocol import Table
from mtlkit.errors import ConfigError, DataError


def labelled_table(
    X: Any,  # noqa: N803
    y: Any,
    labels: Sequence[str] | None,
    kinds: dict[str, Any],
    options: dict[str, Any],
    n_features: int | None,
) -> Table:
    """Labelled data as a table: a table (or a streamed one) as is, files / frames with
    ``labels``, or scikit-learn style ``X`` and ``y``; ``kinds`` are the kind overrides and
    ``options`` the reading settings given to :func:`~mtlkit.data.loading.load_tables`."""
    if protocol.is_table(X):
        if y is not None:
            raise ConfigError(
                f"X is a table, which holds its labels, and y is given too ({type(y).__name__}"
                "); give the validation data as validation=..., or X as features (an "
                "array or a data frame) with their labels as y."
            )
        return X
    if y is not None:
        frame, names = xy_frame(X, y, n_features)
        return load_tables(frame, names, **kinds, **options)
    if not labels:
        raise ConfigError(
            "pass labels=[...] (the label columns) to fit on files or data frames, or "
            "give the labels as y."
        )
    return load_tables(X, list(labels), **kinds, **options)


def feature_table(
    X: Any,  # noqa: N803
    n_features: Callable[[], int],
    read: Callable[[Sources], Table],
) -> Table:
    """Rows to predict on as a table: a table as is, a feature array as a frame of
    ``n_features()`` columns (asked only for an array), files / folders / frames read by
    ``read``."""
    if protocol.is_table(X):
        return X
    if not isinstance(X, (pd.DataFrame, str, Path, list, tuple)):
        X = feature_frame(X, n_features())  # noqa: N806
    return read(X)


def feature_frame(X: Any, n_features: int | None = None) -> pd.DataFrame:  # noqa: N803
    """A numeric feature array (scikit-learn style) as a frame with columns x0, x1, ...;
    scikit-learn's own checks give the errors (1-D, empty, sparse, complex, text)."""
    X = check_array(
        X,
        dtype=np.float64,
        ensure_all_finite="allow-nan",
        ensure_min_samples=2 if n_features is None else 1,
    )  # noqa: N806
    if n_features is not None and X.shape[1] != n_features:
        raise DataError(
            f"X has {X.shape[1]} features, but MultiTaskEstimator is expecting {n_features} "
            "features as input (the number it was fitted on)."
        )
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])


def xy_frame(X: Any, y: Any, n_features: int | None) -> tuple[pd.DataFrame, list[str]]:  # noqa: N803
    """Features and labels as one frame for the data layer; ``y`` columns are the tasks."""
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)
    else:
        frame = feature_frame(X, n_features)
    if isinstance(y, pd.Series):
        y = y.to_frame(y.name if y.name is not None else "y")
    if isinstance(y, pd.DataFrame):
        labels = [str(c) for c in y.columns]
        y = y.to_numpy()
    else:
        y = np.asarray(y)
        labels = ["y"] if y.ndim == 1 else [f"y{k}" for k in range(y.shape[1])]
    y = y.reshape(len(y), -1)
    if len(y) != len(frame):
        raise DataError(f"X has {len(frame)} rows but y has {len(y)}; give one label row per row.")
    clash = sorted(set(labels) & set(frame.columns))
    if clash:
        raise DataError(f"y's column(s) {clash} are also feature columns of X; rename them.")
    for k, label in enumerate(labels):
        frame[label] = y[:, k]
    return frame, labels
