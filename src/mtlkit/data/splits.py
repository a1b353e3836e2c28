"""Deterministic, stratified train/validation/test splits of a partially labelled table.

Rows (or groups) are sorted by a stratification key - per task: label missing, or its class -
with random order inside each stratum, then dealt to the splits along a golden-ratio sequence.
Any run of consecutive rows gets close to the requested fractions, so every stratum is split
proportionally and tiny strata are balanced together with their neighbours in the sort order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from mtlkit.data.schema import MultiTaskTable
from mtlkit.data.streaming_table import StreamingTable
from mtlkit.data.tasks import recode_labels
from mtlkit.errors import DataError

SPLIT_NAMES = ("training", "validation", "test")
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
#: A split: rows in memory or a stream.
Table = MultiTaskTable | StreamingTable


def split_fractions(fractions: Sequence[float], count: int) -> np.ndarray:
    values = np.asarray(fractions, dtype=float)
    if values.shape != (count,) or (values < 0).any() or not np.isclose(values.sum(), 1.0):
        raise DataError(
            f"fractions must be {count} non-negative numbers that sum to 1, got {fractions}."
        )
    return values


def _strata(table: MultiTaskTable) -> np.ndarray:
    """Per row and task: -1 where the label is missing, else the class id (0 for regression)."""
    columns = []
    for task in sorted(table.tasks, key=lambda t: table.masks[t.name].sum()):  # rarest first
        mask = table.masks[task.name]
        label = table.labels[task.name] if task.kind != "regression" else np.zeros(len(table))
        columns.append(np.where(mask, np.nan_to_num(label), -1).astype(np.int64))
    return np.stack(columns, axis=1) if columns else np.zeros((len(table), 0), dtype=np.int64)


def _assign(
    table: MultiTaskTable, fractions: np.ndarray, seed: int, group_column: str | None
) -> np.ndarray:
    """Split index (0, 1, ...) of every row."""
    rng = np.random.default_rng(seed)
    keys = _strata(table)
    if group_column is None:
        units = np.arange(len(table))
    else:
        if group_column not in table.features.columns:
            raise DataError(f"group_column {group_column!r} is not a feature column.")
        units, _ = pd.factorize(table.features[group_column], use_na_sentinel=False)
        first = np.unique(units, return_index=True)[1]
        keys = keys[first]  # a group is stratified by its first row
    order = np.lexsort((rng.random(len(keys)), *keys.T[::-1]))
    position = np.empty(len(keys), dtype=np.float64)
    position[order] = np.arange(len(keys))
    u = np.mod(rng.random() + position * _GOLDEN, 1.0)
    split_of_unit = np.searchsorted(np.cumsum(fractions)[:-1], u, side="right")
    return split_of_unit[units]


def split_table(
    table: MultiTaskTable,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    group_column: str | None = None,
) -> tuple[MultiTaskTable, MultiTaskTable, MultiTaskTable]:
    """(train, validation, test) tables, stratified on every task's mask and class.

    The same ``seed`` gives the same split. With ``group_column`` all rows sharing a value of
    that feature column end up in the same split.
    """
    split = _assign(table, split_fractions(fractions, 3), seed, group_column)
    train, val, test = (table.take(np.flatnonzero(split == i)) for i in range(3))
    return train, val, test


def split_with_test(
    table: MultiTaskTable,
    test_table: MultiTaskTable,
    fractions: Sequence[float] = (0.85, 0.15),
    seed: int = 0,
) -> tuple[MultiTaskTable, MultiTaskTable, MultiTaskTable]:
    """(train, validation, test): ``table`` is split in two, ``test_table`` is the test split.

    The test labels are re-encoded with ``table``'s tasks (its classes may be fewer); tasks the
    test table lacks are masked out.
    """
    split = _assign(table, split_fractions(fractions, 2), seed, None)
    train, val = (table.take(np.flatnonzero(split == i)) for i in range(2))
    specs = {t.name: t for t in test_table.tasks}
    labels, masks = {}, {}
    for task in table.tasks:
        if task.name in test_table.labels:
            source = specs.get(task.name, task)
            labels[task.name] = recode_labels(test_table.labels[task.name], source, task)
            masks[task.name] = test_table.masks[task.name] & ~np.isnan(labels[task.name])
        else:
            labels[task.name] = np.full(len(test_table), np.nan)
            masks[task.name] = np.zeros(len(test_table), dtype=bool)
    test = MultiTaskTable(
        test_table.features,
        labels,
        masks,
        list(table.tasks),
        test_table.source,
        table.feature_kinds,
    )
    return train, val, test


def _elsewhere(labelled: list[int], empty: list[tuple[str, int]]) -> str:
    """Where a task's labelled rows went when splits with rows (``empty``: name, rows) got
    none of them, e.g. ": its 200 labels all fell into the validation split"; "" when a
    split without labels has no rows either (too few rows to split) or no split has any."""
    held = [(n, k) for n, k in zip(SPLIT_NAMES, labelled) if k]
    if not held or not all(rows for _, rows in empty):
        return ""
    if len(held) == 1:
        return f": its {held[0][1]} labels all fell into the {held[0][0]} split"
    return ": its labels fell into the " + " and ".join(f"{n} ({k})" for n, k in held) + " splits"


def check_splits(train: Table, val: Table, test: Table | None = None) -> None:
    """Raise DataError when a task has no labels in some split or one class in training.

    The splits are tables in memory or streamed (a stream reads its label columns once,
    see :meth:`StreamingTable.label_summary <mtlkit.data.streaming_table.StreamingTable.label_summary>`).
    """
    problems = []
    parts = (train, val) if test is None else (train, val, test)
    summaries = [part.label_summary() for part in parts]
    streamed = False
    for task, first in summaries[0].items():
        labelled = [s[task].labelled if task in s else 0 for s in summaries]
        empty = [(n, len(p)) for n, p, k in zip(SPLIT_NAMES, parts, labelled) if not k]
        if empty:
            names, sizes = (" and ".join(str(e[i]) for e in empty) for i in (0, 1))
            plural = "s" if len(empty) > 1 else ""
            problem = f"{task!r} has no labelled rows in the {names} split{plural} ({sizes} rows)"
            elsewhere = _elsewhere(labelled, empty)
            problem += elsewhere
            streamed |= bool(elsewhere) and isinstance(parts[0], StreamingTable)
            problems.append(problem)
        if not first.regression and len(first.values) == 1:
            problems.append(
                f"{task!r} has a single class ({first.values[0]!r}) in the training split"
            )
    if problems:
        fix = (
            "A stream is split by row groups: shuffle the rows before writing them, or "
            "give separate validation/test data."
            if streamed
            else "Add labelled rows of every class, or change the split fractions or seed."
        )
        raise DataError(f"Cannot train on these splits: task {'; task '.join(problems)}. {fix}")


def keep_label_fraction(
    table: MultiTaskTable, task: str, fraction: float, seed: int = 0
) -> MultiTaskTable:
    """``table`` with only ``fraction`` of ``task``'s labels kept (the others masked, their
    rows kept for the other tasks): round(fraction x labelled rows) of them.

    The kept labels are a prefix of one random order of the labelled rows fixed by ``seed``,
    so for one table and seed a smaller fraction keeps a subset of a larger one's labels
    (nested subsets: the 2% are among the 10%). Meant for a training split, to measure how a
    model copes with scarce labels; evaluate on splits that keep all their labels.
    """
    if task not in table.masks:
        raise DataError(
            f"label fractions name task {task!r}, which the data lacks; its tasks "
            f"are {table.task_names}."
        )
    labelled = np.flatnonzero(table.masks[task])
    order = np.random.default_rng(seed).permutation(labelled)
    n_keep = int(np.floor(fraction * len(labelled) + 0.5))
    if n_keep == 0:
        raise DataError(
            f"keeping {fraction:g} of task {task!r}'s {len(labelled)} training labels leaves "
            "none; use a larger label fraction or more rows."
        )
    mask = np.zeros(len(table), dtype=bool)
    mask[order[:n_keep]] = True
    labels = table.labels[task].copy()
    labels[~mask] = np.nan
    return replace(
        table,
        labels={**table.labels, task: labels},
        masks={**table.masks, task: mask},
    )
