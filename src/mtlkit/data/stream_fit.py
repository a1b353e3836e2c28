"""Fit a :class:`~mtlkit.data.preprocessor.Preprocessor` in one pass over a streamed table.

The pass infers what ``load_tables`` infers (task kinds and classes, feature kinds) and
gathers what ``Preprocessor.fit`` gathers (vocabularies or hashing, means and standard
deviations, missing indicators), batch by batch with the same rule functions and column
statistics, so on data that fits in memory it gives the same fitted state as
``Preprocessor(...).fit(load_tables(...))`` (means and deviations up to float rounding).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtlkit.data.column_stats import CategoryStats, NumericStats
from mtlkit.data.preprocessor import Preprocessor, numeric_values
from mtlkit.data.schema import TaskKind, TaskSpec
from mtlkit.data.sources import infer_feature_kinds, is_numeric, not_numeric, reject_empty
from mtlkit.data.streaming_table import READ_ROWS, StreamingTable
from mtlkit.data.tasks import MAX_CLASSES, infer_task_spec, label_present
from mtlkit.data.values import MAX_CATEGORICAL_INTEGERS
from mtlkit.data.vocabulary import count_limit

_NUMBER_CLASSES = {"integer", "float", "bool", "empty"}


class LabelStats:
    """What :func:`~mtlkit.data.tasks.infer_task_spec` looks at in a label column, gathered
    batch by batch: its distinct labelled values (up to ``MAX_CLASSES + 1`` of them) and, once
    there are more, one non-integral value if any."""

    def __init__(self, name: str, kind: TaskKind | None) -> None:
        self.name, self.kind = name, kind
        self.values: dict[object, None] = {}  # an ordered set
        self.non_integral: list[float] = []

    def update(self, raw: pd.Series) -> None:
        """Add a record batch's labels (checked by ``StreamingTable.checked``)."""
        values = raw[label_present(raw)]
        if is_numeric(values) and not self.non_integral:
            numbers = values.to_numpy(dtype=float)
            self.non_integral = numbers[np.mod(numbers, 1) != 0][:1].tolist()
        if len(self.values) <= MAX_CLASSES:
            self.values.update(dict.fromkeys(values.drop_duplicates().tolist()))

    def spec(self) -> TaskSpec:
        return infer_task_spec(self.name, pd.Series([*self.values, *self.non_integral]), self.kind)


def fit_preprocessor(
    table: StreamingTable, preprocessor: Preprocessor | None = None, *, read_rows: int = READ_ROWS
) -> Preprocessor:
    """Fit ``preprocessor`` (default ``Preprocessor()``) on every row of ``table`` in one pass.

    Memory holds one record batch of ``read_rows`` rows plus per-feature statistics: the
    counts of at most ``max(4 x max_categories, 20)`` distinct values per categorical feature
    (counting stops beyond: that column is hashed, see :mod:`mtlkit.data.vocabulary`) plus
    one batch's, and up to ``MAX_CLASSES + 1`` values per label.
    """
    prep = preprocessor or Preprocessor()
    overrides = {**table.feature_kinds, **prep.feature_kinds}
    # Only an integer column's kind depends on its values (its number of distinct values).
    few = infer_feature_kinds(table.features, table.types, lambda c: 0, overrides)
    many = infer_feature_kinds(table.features, table.types, lambda c: np.inf, overrides)
    limit = max(count_limit(prep.max_categories), MAX_CATEGORICAL_INTEGERS)
    numeric = {c: NumericStats() for c in table.features if "numeric" in (few[c], many[c])}
    categories = {
        c: CategoryStats(limit) for c in table.features if "categorical" in (few[c], many[c])
    }
    for column in numeric:
        if not {t[column] for t in table.types if column in t} <= _NUMBER_CLASSES:
            raise not_numeric(column)
    labels = [LabelStats(name, table.task_kinds.get(name)) for name in table.labels]
    filled = dict.fromkeys(table.features, False)
    columns = [*table.labels, *table.features]
    for path, frame in table.frames(table.pieces(), columns, read_rows):
        frame = table.checked(frame, path)
        for stats in labels:
            stats.update(frame[stats.name])
        for name in table.features:
            column = frame[name]
            filled[name] = filled[name] or bool(column.notna().any())
            if name in numeric:
                numeric[name].update(numeric_values(column, name))
            if name in categories:
                categories[name].update(column)
    reject_empty([name for name, seen in filled.items() if not seen])

    def n_distinct(column: str) -> int:  # of columns whose kind may depend on it
        return categories[column].n_distinct if column in categories else 0

    kinds = infer_feature_kinds(table.features, table.types, n_distinct, overrides)
    fitted = [
        (name, numeric[name] if kinds[name] == "numeric" else categories[name])
        for name in table.features
    ]
    return prep.fit_statistics(fitted, [stats.spec() for stats in labels])
