"""The MMoE paper's synthetic generator as a built-in data set, optionally as the original
project's "two files, one label each" (every row keeps only one of the two labels)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mtlkit.data.loading import load_tables
from mtlkit.data.schema import MultiTaskTable
from mtlkit.data.synthetic import make_synthetic, write_partial_label_files
from mtlkit.datasets.registry import DATASETS
from mtlkit.errors import DataError

#: What `mtlkit datasets` says about the data set(s) of this module.
ABOUT_SOURCE = "generated (Ma et al., KDD 2018)"
ABOUT_TASKS = "label0, label1 (binary; correlation=..., partial_labels=True: one label per file)"
ABOUT_SIZE = "n_rows (default 10,000) x 100 numeric features"


@DATASETS.register("synthetic", ABOUT_SOURCE, tasks=ABOUT_TASKS, size=ABOUT_SIZE, download=True)
def load_synthetic(
    path: str | Path | None = None,
    *,
    n_rows: int = 10_000,
    correlation: float = 0.9,
    n_features: int = 100,
    n_tasks: int = 2,
    partial_labels: bool = False,
    seed: int = 0,
) -> MultiTaskTable:
    """Synthetic two-task (by default) data of Ma et al. (KDD 2018), labels ``label0``...

    With ``partial_labels`` the rows are written as one CSV file per label (each file keeps
    only its own label, as :func:`mtlkit.write_partial_label_files`) and read back, so each
    task is labelled on its share of the rows only. ``path`` is a folder to keep those files
    in (a temporary folder when not given); it is not used without ``partial_labels``.
    """
    frame = make_synthetic(
        n_rows, n_features=n_features, n_tasks=n_tasks, correlation=correlation, seed=seed
    )
    labels = [f"label{k}" for k in range(n_tasks)]
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
