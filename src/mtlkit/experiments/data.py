"""The data of a comparison: built-in synthetic data, a named data set, or the user's files."""

from __future__ import annotations

from dataclasses import replace

from mtlkit import datasets
from mtlkit.data.loading import load_tables
from mtlkit.data.protocol import Table, split
from mtlkit.data.schema import MultiTaskTable
from mtlkit.data.splits import check_splits, keep_label_fraction
from mtlkit.data.streaming_table import stream_tables
from mtlkit.datasets.synthetic import NAME as SYNTHETIC
from mtlkit.errors import ConfigError
from mtlkit.experiments.config import CompareConfig


def load_data(config: CompareConfig, correlation: float | None = None) -> MultiTaskTable:
    """The table of one data variant (``correlation`` only for synthetic data).

    Synthetic data is generated with the grid's ``n_rows`` and ``split_seed`` (and the
    variant's ``correlation``), so every cell and every rerun sees the same rows.
    """
    name = config.builtin
    if name is None:
        return load_tables(config.data, labels=config.labels, **config.read_options())
    if name not in datasets.available():
        raise ConfigError(
            f"{name!r} is neither a file nor a folder nor a built-in data set "
            f"({sorted(datasets.available())}); check the path or see 'mtlkit datasets'."
        )
    options = dict(config.dataset_options or {})
    if name == SYNTHETIC:  # the grid's settings are the generator's
        options |= {"n_rows": config.n_rows, "seed": config.split_seed}
        if correlation is not None:
            options["correlation"] = correlation
    table = datasets.load(name, **options)
    if config.labels is None:
        return table
    unknown = sorted(set(config.labels) - set(table.task_names))
    if unknown:
        raise ConfigError(
            f"data set {name!r} has the labels {table.task_names}; {unknown} are not among "
            "them: leave --labels out or pick among those."
        )
    return with_tasks(table, config.labels)


def with_tasks(table: MultiTaskTable, labels: list[str]) -> MultiTaskTable:
    """``table`` with only the tasks ``labels`` (of its tasks), in that order."""
    specs = {t.name: t for t in table.tasks}
    return replace(
        table,
        labels={k: table.labels[k] for k in labels},
        masks={k: table.masks[k] for k in labels},
        tasks=[specs[k] for k in labels],
    )


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
