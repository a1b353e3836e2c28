"""The data of a comparison: built-in synthetic data, a named data set, or the user's files."""

from __future__ import annotations

import json

from mtlkit import datasets
from mtlkit.data.loading import load_tables
from mtlkit.data.protocol import Table, split
from mtlkit.data.schema import MultiTaskTable
from mtlkit.data.splits import check_splits, keep_label_fraction
from mtlkit.data.streaming import stream_tables
from mtlkit.data.synthetic import make_synthetic
from mtlkit.errors import ConfigError
from mtlkit.experiments.config import SYNTHETIC, CompareConfig

SYNTHETIC_LABELS = ["label0", "label1"]


def load_data(config: CompareConfig, correlation: float | None = None) -> MultiTaskTable:
    """The table of one data variant (``correlation`` only for synthetic data).

    Synthetic data is generated with ``config.split_seed``, so every cell and every rerun sees
    the same rows.
    """
    name = config.builtin
    if name == SYNTHETIC:
        labels = config.labels or SYNTHETIC_LABELS
        unknown = sorted(set(labels) - set(SYNTHETIC_LABELS))
        if unknown:
            raise ConfigError(
                f"synthetic data has the labels {SYNTHETIC_LABELS}; {unknown} are not among them."
            )
        frame = make_synthetic(
            config.n_rows,
            correlation=0.9 if correlation is None else correlation,
            seed=config.split_seed,
            **(config.dataset_options or {}),
        )
        return load_tables(frame.drop(columns=sorted(set(SYNTHETIC_LABELS) - set(labels))), labels)
    if name is not None:
        if name not in datasets.available():
            raise ConfigError(
                f"{name!r} is neither a file nor a folder nor a built-in data set "
                f"({[SYNTHETIC, *datasets.available()]}); check the path or see 'mtlkit datasets'."
            )
        table = datasets.load(name, **(config.dataset_options or {}))
        if config.labels is not None and sorted(config.labels) != sorted(table.task_names):
            raise ConfigError(
                f"data set {name!r} has the labels {table.task_names}; leave --labels out or "
                "give exactly those."
            )
        return table
    return load_tables(config.data, labels=config.labels, **config.read_options())


def load_splits(config: CompareConfig, correlation: float | None = None) -> tuple[Table, ...]:
    """(train, validation, test): the same for every cell, fixed by ``config.split_seed``;
    streamed tables split by row groups when ``config.streamed``. Each split is checked
    (:func:`~mtlkit.data.splits.check_splits`)."""
    if config.streamed:
        table = stream_tables(config.data, labels=config.labels, **config.read_options())
    else:
        table = load_data(config, correlation)
    splits = split(table, config.fractions, seed=config.split_seed)
    check_splits(*splits)
    return splits


def with_label_fraction(
    config: CompareConfig, splits: tuple[MultiTaskTable, ...], fraction: float | None
) -> tuple[MultiTaskTable, ...]:
    """``splits`` with only ``fraction`` of the scarce task's training labels kept (nested
    subsets, see :func:`~mtlkit.data.splits.keep_label_fraction`); as they are for None."""
    if fraction is None:
        return splits
    train, val, test = splits
    train = keep_label_fraction(train, config.scarce_task, fraction, config.split_seed)
    check_splits(train, val, test)
    return train, val, test


_SPLITS: dict[tuple[str, float | None], tuple] = {}


def cached_splits(config: CompareConfig, correlation: float | None = None) -> tuple[Table, ...]:
    """:func:`load_splits`, loaded once per process (the grid's cells and studies share it)."""
    key = (json.dumps(config.to_dict(), sort_keys=True), correlation)
    if key not in _SPLITS:
        _SPLITS[key] = load_splits(config, correlation)
    return _SPLITS[key]
