"""The MMoE paper's synthetic generator as a built-in data set, optionally as the original
project's "two files, one label each" (every row keeps only one of the two labels).

This is the one synthetic data set: ``mtlkit compare synthetic`` loads it too (its
``n_rows``, ``correlations`` and ``split_seed`` settings give the generator's ``n_rows``,
``correlation`` and ``seed``; ``--dataset-option`` the :data:`OPTIONS`). The generator's
defaults (:func:`~mtlkit.data.synthetic.make_synthetic`) are the data set's.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import Any

from mtlkit.data.loading import load_tables
from mtlkit.data.schema import MultiTaskTable
from mtlkit.data.synthetic import make_synthetic, write_partial_label_files
from mtlkit.datasets.registry import DATASETS
from mtlkit.errors import DataError
from mtlkit.params import Bool, Float, Int, Param, Str

NAME = "synthetic"
#: What `mtlkit datasets` says about the data set(s) of this module.
ABOUT_SOURCE = "generated (Ma et al., KDD 2018)"
ABOUT_TASKS = "label0, label1 (binary; correlation=..., partial_labels=True: one label per file)"
ABOUT_SIZE = "n_rows (default 10,000) x 100 numeric features"

_DEFAULTS = {k: p.default for k, p in inspect.signature(make_synthetic).parameters.items()}
#: The options ``mtlkit compare synthetic --dataset-option KEY=VALUE`` takes (the rest of the
#: generator's arguments are grid settings), with the generator's defaults.
OPTIONS: tuple[Param, ...] = (
    Float("noise", _DEFAULTS["noise"], "label noise-to-signal ratio (one per task: a list)", low=0),
    Int("n_features", _DEFAULTS["n_features"], "numeric features", low=2),
    Str(
        "task_type",
        _DEFAULTS["task_type"],
        "binary or regression labels",
        choices=("binary", "regression"),
    ),
    Bool("partial_labels", False, "one file per label, each row labelled for one task only"),
)


@DATASETS.register(NAME, ABOUT_SOURCE, tasks=ABOUT_TASKS, size=ABOUT_SIZE, download=True)
def load_synthetic(
    path: str | Path | None = None,
    *,
    partial_labels: bool = False,
    seed: int = 0,
    **generator: Any,
) -> MultiTaskTable:
    """Synthetic multi-task data of Ma et al. (KDD 2018), labels ``label0``...; ``generator``
    are :func:`~mtlkit.data.synthetic.make_synthetic`'s arguments (``n_rows``,
    ``correlation``, ``n_features``, ``n_tasks``, ``noise``, ``task_type``), with its
    defaults.

    With ``partial_labels`` the rows are written as one CSV file per label (each file keeps
    only its own label, as :func:`mtlkit.write_partial_label_files`) and read back, so each
    task is labelled on its share of the rows only. ``path`` is a folder to keep those files
    in (a temporary folder when not given); it is not used without ``partial_labels``.
    """
    frame = make_synthetic(seed=seed, **generator)
    prefix = generator.get("label_prefix", _DEFAULTS["label_prefix"])
    labels = [c for c in frame.columns if c.startswith(prefix)]
    if not partial_labels:
        if path is not None:
            raise DataError("synthetic: path= is the folder for partial_labels=True files only.")
        return load_tables(frame, labels=labels)
    if path is not None:
        files = write_partial_label_files(frame, path, labels, seed=seed)
        return load_tables(files, labels=labels)
    with tempfile.TemporaryDirectory() as folder:
        files = write_partial_label_files(frame, folder, labels, seed=seed)
        return load_tables(files, labels=labels)
