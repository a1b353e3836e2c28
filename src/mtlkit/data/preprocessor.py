"""Turn a multi-task table into model tensors: category ids, standardized numbers, labels, masks.

Statistics (vocabularies, means, standard deviations) come from the training split only and are
saved as a small JSON file, so the same encoding can be applied to new data later.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtlkit.data.column_stats import CategoryStats, NumericStats, as_text, category_keys
from mtlkit.data.schema import FeatureKind, MultiTaskTable, Schema, TaskSpec
from mtlkit.data.sources import is_numeric
from mtlkit.data.tasks import recode_labels
from mtlkit.data.tensors import TensorData
from mtlkit.data.values import FLOAT32_MAX, text_numbers
from mtlkit.data.vocabulary import VOCABULARY_PARAMS, count_limit
from mtlkit.errors import ConfigError, DataError
from mtlkit.files import atomic_write_json

FORMAT = "mtlkit-preprocessor/1"
MISSING_SUFFIX = "__missing"


def numeric_values(column: pd.Series, name: str) -> np.ndarray:
    """Float values of a numeric feature (NaN where missing); non-numbers, infinities and values
    beyond the float32 range (whose standard deviation overflows) are rejected."""
    try:
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as err:
        bad = column[text_numbers(column)[1]]
        raise DataError(
            f"Feature {name!r} is numeric but holds {len(bad)} non-numeric value(s) "
            f"{bad.head(3).tolist()}; fix the values or declare it categorical in feature_kinds."
        ) from err
    too_big = np.abs(values) > FLOAT32_MAX
    if too_big.any():
        raise DataError(
            f"Feature {name!r} holds infinite or too large values ({int(too_big.sum())} beyond "
            f"+-3.4e38, the float32 range: {values[too_big][:3].tolist()}); replace them or "
            "leave those cells empty."
        )
    return values


def _default_kind(column: pd.Series) -> FeatureKind:
    return "numeric" if is_numeric(column) else "categorical"


class Preprocessor:
    """Fit on the training split, then encode any split as :class:`TensorData`.

    Categorical features become ids (the rule of :mod:`mtlkit.data.vocabulary`), each value
    counted and looked up by its key (:func:`~mtlkit.data.column_stats.category_keys`, so a
    boolean and 1/0 are one category): 1..k for the values seen at least ``min_frequency``
    times in training, 0 for rarer, unseen or missing
    values; a column with more than ``max_categories`` such values is hashed instead, every
    value by a stable hash into ``hash_buckets`` ids (1..b; unset: chosen from the column's
    distinct values), with a warning. Numeric features are standardized with the
    training mean and standard deviation, missing values become 0 (the mean), and a 0/1
    missing-indicator input is added for each feature that had missing values in training.
    ``feature_kinds`` overrides the kinds stored in the table.
    """

    def __init__(
        self,
        feature_kinds: Mapping[str, FeatureKind] | None = None,
        max_categories: int = VOCABULARY_PARAMS[0].default,
        hash_buckets: int | None = VOCABULARY_PARAMS[1].default,
        min_frequency: int = VOCABULARY_PARAMS[2].default,
    ) -> None:
        self.feature_kinds = dict(feature_kinds or {})
        given = (max_categories, hash_buckets, min_frequency)
        checked = [p.validate(v, "preprocessor") for p, v in zip(VOCABULARY_PARAMS, given)]
        self.max_categories, self.hash_buckets, self.min_frequency = checked
        # {"name", "vocab"} or {"name", "hashed": True, "buckets", "distinct"}
        self._categorical: list[dict] = []
        self._vocab_index: dict[str, tuple[pd.Index, bool]] = {}  # see _vocab_lookup
        #: Whether hashed columns hash a value's key (False in files saved before keys, which
        #: hashed its text: their scores stay the same).
        self._hash_keys = True
        self._numeric: list[dict] = []  # {"name", "mean", "std", "indicator"}
        self._tasks: list[TaskSpec] | None = None

    def fit(self, table: MultiTaskTable) -> Preprocessor:
        """Learn vocabularies, means and standard deviations from ``table`` (the training split)."""
        unknown = sorted(set(self.feature_kinds) - set(table.features.columns))
        if unknown:
            raise DataError(f"feature_kinds names {unknown}, which are not feature columns.")
        columns: list[tuple[str, NumericStats | CategoryStats]] = []
        for name, column in table.features.items():
            kind = self.feature_kinds.get(name) or table.feature_kinds.get(name)
            if (kind or _default_kind(column)) == "numeric":
                stats: NumericStats | CategoryStats = NumericStats()
                stats.update(numeric_values(column, str(name)))
            else:
                stats = CategoryStats(count_limit(self.max_categories))
                stats.update(column)
            columns.append((str(name), stats))
        return self.fit_statistics(columns, table.tasks)

    def fit_statistics(
        self, columns: Sequence[tuple[str, NumericStats | CategoryStats]], tasks: Sequence[TaskSpec]
    ) -> Preprocessor:
        """Set the fitted state from per-feature statistics, in feature order, and the tasks.

        :meth:`fit` gathers them from a table in memory; :mod:`mtlkit.data.stream_fit` in one
        pass over a streamed table. A :class:`CategoryStats` must count at least
        ``count_limit(max_categories)`` values. A hashed column is named in a warning.
        """
        self._categorical, self._numeric, self._vocab_index = [], [], {}
        self._hash_keys = True
        for name, stats in columns:
            if isinstance(stats, NumericStats):
                self._numeric.append(stats.state(name))
                continue
            entry = stats.state(name, self.max_categories, self.min_frequency, self.hash_buckets)
            self._categorical.append(entry)
            if entry.get("hashed"):
                warnings.warn(_hashing_message(entry, self), UserWarning, stacklevel=3)
        self._tasks = list(tasks)
        return self

    def _tasks_or_raise(self) -> list[TaskSpec]:
        if self._tasks is None:
            raise ConfigError("The Preprocessor is not fitted; call fit(train_table) first.")
        return self._tasks

    def transform(self, table: MultiTaskTable, require_labels: bool = True) -> TensorData:
        """Encode ``table``; with ``require_labels=False`` absent label columns are masked out."""
        tasks = self._tasks_or_raise()
        needed = [f["name"] for f in self._categorical + self._numeric]
        absent = [c for c in needed if c not in table.features.columns]
        if absent:
            raise DataError(
                f"Feature column(s) {absent} were used in training but are missing from this "
                "table; add them (empty cells are fine)."
            )
        n = len(table)
        x_cat = np.zeros((n, len(self._categorical)), dtype=np.int64)
        for j, feature in enumerate(self._categorical):
            x_cat[:, j] = self._category_ids(feature, table.features[feature["name"]])
        indicators = [f for f in self._numeric if f["indicator"]]
        x_num = np.zeros((n, len(self._numeric) + len(indicators)), dtype=np.float32)
        k = len(self._numeric)
        for j, feature in enumerate(self._numeric):
            values = numeric_values(table.features[feature["name"]], feature["name"])
            missing = np.isnan(values)
            x_num[:, j] = np.where(missing, 0.0, (values - feature["mean"]) / feature["std"])
            if feature["indicator"]:
                x_num[:, k] = missing
                k += 1
        y, mask = self._labels(table, tasks, require_labels)
        return TensorData(*(torch.from_numpy(a) for a in (x_cat, x_num, y, mask)))

    def _category_ids(self, feature: dict, column: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(column)
        if feature.get("hashed"):
            text = category_keys(uniques) if self._hash_keys else as_text(uniques)
            buckets = np.uint64(self._buckets(feature))
            ids = (pd.util.hash_array(text, categorize=False) % buckets).astype(np.int64) + 1
        else:
            name = feature["name"]
            if name not in self._vocab_index:
                self._vocab_index[name] = _vocab_lookup(feature["vocab"])
            vocab, by_key = self._vocab_index[name]
            keys = category_keys(uniques) if by_key else as_text(uniques)
            ids = vocab.get_indexer(keys) + 1  # -1 (unseen or rare) becomes 0
        return np.append(ids, 0)[codes]  # code -1 (missing) picks the trailing 0

    def _buckets(self, feature: dict) -> int:
        """A hashed feature's buckets (a file saved before they were per feature: the
        preprocessor's ``hash_buckets``)."""
        return int(feature.get("buckets") or self.hash_buckets)

    def _labels(
        self, table: MultiTaskTable, tasks: list[TaskSpec], require_labels: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        absent = [t.name for t in tasks if t.name not in table.labels]
        if absent and require_labels:
            raise DataError(
                f"Label column(s) {absent} were used in training but are missing from this "
                "table; add them, or pass require_labels=False to predict without labels."
            )
        specs = {t.name: t for t in table.tasks}
        y = np.zeros((len(table), len(tasks)), dtype=np.float32)
        mask = np.zeros((len(table), len(tasks)), dtype=bool)
        for i, task in enumerate(tasks):
            if task.name in absent:
                continue
            labels = recode_labels(table.labels[task.name], specs.get(task.name, task), task)
            mask[:, i] = table.masks[task.name] & ~np.isnan(labels)
            y[:, i] = np.where(mask[:, i], labels, 0.0)
        return y, mask

    def fit_transform(self, table: MultiTaskTable) -> TensorData:
        """``fit`` on ``table`` and encode it."""
        return self.fit(table).transform(table)

    def schema(self) -> Schema:
        """Input cardinalities, numeric width and tasks, for building a model."""
        tasks = self._tasks_or_raise()
        cards = tuple(
            self._buckets(f) + 1 if f.get("hashed") else len(f["vocab"]) + 1
            for f in self._categorical
        )
        n_numeric = len(self._numeric) + sum(f["indicator"] for f in self._numeric)
        return Schema(cards, n_numeric, tuple(tasks))

    @property
    def fitted_kinds(self) -> dict[str, FeatureKind]:
        """The kind each feature column was fitted as (numeric or categorical)."""
        kinds: dict[str, FeatureKind] = {f["name"]: "categorical" for f in self._categorical}
        return kinds | {f["name"]: "numeric" for f in self._numeric}

    @property
    def feature_names(self) -> dict[str, list[str]]:
        """Names of the ``x_cat`` columns and of the ``x_num`` columns (indicators last)."""
        numeric = [f["name"] for f in self._numeric]
        numeric += [f["name"] + MISSING_SUFFIX for f in self._numeric if f["indicator"]]
        return {"categorical": [f["name"] for f in self._categorical], "numeric": numeric}

    def save(self, path: str | Path) -> None:
        """Write the fitted state as JSON."""
        state = {
            "format": FORMAT,
            "feature_kinds": self.feature_kinds,
            "max_categories": self.max_categories,
            "hash_buckets": self.hash_buckets,
            "min_frequency": self.min_frequency,
            "category_keys": self._hash_keys,
            "categorical": self._categorical,
            "numeric": self._numeric,
            "tasks": [t.to_dict() for t in self._tasks_or_raise()],
        }
        atomic_write_json(Path(path), state, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        """A Preprocessor written by :meth:`save`."""
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DataError(f"Cannot read preprocessor file {str(path)!r}: {err}.") from err
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise DataError(f"{str(path)!r} is not a saved mtlkit Preprocessor ({FORMAT}).")
        try:  # files saved before min_frequency existed: every seen value has an id
            settings = [state["max_categories"], state["hash_buckets"]]
            prep = cls(state["feature_kinds"], *settings, state.get("min_frequency", 1))
            prep._categorical = state["categorical"]
            prep._hash_keys = bool(state.get("category_keys", False))
            prep._numeric = state["numeric"]
            prep._tasks = [TaskSpec.from_dict(t) for t in state["tasks"]]
            prep.schema()
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as err:
            raise DataError(
                f"{str(path)!r} is not a valid saved mtlkit Preprocessor ({type(err).__name__}: "
                f"{str(err)[:100]}); it was edited or comes from another version."
            ) from None
        return prep


def _vocab_lookup(vocab: list[str]) -> tuple[pd.Index, bool]:
    """A vocabulary's lookup, built once, and whether it is by key
    (:func:`~mtlkit.data.column_stats.category_keys`). A file saved before keys may hold two
    spellings of one key (e.g. "1" and "True"), each its own id: such a vocabulary is looked
    up by its text as saved, as then."""
    keys = pd.Index(category_keys(np.asarray(vocab, dtype=object)), dtype=object)
    return (keys, True) if keys.is_unique else (pd.Index(vocab, dtype=object), False)


def _hashing_message(entry: dict, prep: Preprocessor) -> str:
    """The warning for a hashed column: its distinct values, the limit and the buckets."""
    n, limit = entry["distinct"], count_limit(prep.max_categories)
    counted = f"more than {limit:,}" if n > limit else f"{n:,}"
    rule = f"max_categories={prep.max_categories:,}"
    if prep.min_frequency > 1:
        rule += f" with min_frequency={prep.min_frequency}"
    return (
        f"categorical feature {entry['name']!r} has {counted} distinct values in the training "
        f"rows, too many for {rule}: its values are hashed into {entry['buckets']:,} ids (some "
        "share one). Raise max_categories for one id per value, or set hash_buckets."
    )
