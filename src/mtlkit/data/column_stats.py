"""Per-column training statistics that a :class:`~mtlkit.data.preprocessor.Preprocessor` is fitted
from, gathered in one call (a table in memory) or batch by batch (a streamed table).

Both paths use these classes, so one implementation decides vocabularies, hashing, means,
standard deviations and missing indicators.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mtlkit.data.vocabulary import auto_buckets, count_limit

#: The rule of :func:`category_keys`, in words (the export's input contract quotes it).
CATEGORY_RULE = (
    "a category is compared by its text, an integral number as an integer (3.0 and '3.0' as "
    "'3') and a truth value as 1 or 0 (True, 'true' and 'TRUE' as '1'; False as '0')"
)
_INTEGRAL_TEXT = r"^\s*([+-]?\d+)\.0*\s*$"
_TRUTH = {"true": "1", "false": "0"}


def as_text(values: object) -> np.ndarray:
    """Values as strings (object array); integral floats print as ints, so 3 == 3.0."""
    values = np.asarray(values)
    text = values.astype(str).astype(object)
    if values.dtype.kind == "f":
        integral = np.isfinite(values) & (np.mod(values, 1) == 0) & (np.abs(values) < 2**53)
        text[integral] = values[integral].astype(np.int64).astype(str)
    return text


def category_keys(values: object) -> np.ndarray:
    """The key of each (non-missing) categorical value, under which fitting counts it and
    encoding looks it up, in memory and streamed alike (:data:`CATEGORY_RULE`): one category
    in every spelling a file type gives it, e.g. a Parquet boolean and a CSV's 0/1."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        return np.where(values, "1", "0").astype(object)
    text = as_text(values)
    if values.dtype.kind in "iuf" or not len(text):
        return text  # numbers print as their key already
    keys = pc.replace_substring_regex(pa.array(text, pa.string()), _INTEGRAL_TEXT, r"\1")
    word = pc.utf8_lower(pc.utf8_trim_whitespace(keys))
    for spelling, key in _TRUTH.items():
        keys = pc.if_else(pc.equal(word, spelling), key, keys)
    return keys.to_numpy(zero_copy_only=False).astype(object)


class NumericStats:
    """Count, mean and sum of squared deviations of a numeric feature, merged batch by batch
    with the pairwise update of Chan, Golub & LeVeque (1979), plus whether any value was
    missing. One update gives exactly ``np.mean`` and ``np.std`` (ddof=0) of the values."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.missing = False

    def update(self, values: np.ndarray) -> None:
        """Add float values (NaN where missing)."""
        is_missing = np.isnan(values)
        self.missing |= bool(is_missing.any())
        present = values[~is_missing]
        n = len(present)
        if n == 0:
            return
        mean = present.mean()
        deviation = present - mean
        m2 = float(np.sum(deviation * deviation))
        if self.count == 0:
            self.count, self.mean, self.m2 = n, float(mean), m2
            return
        total = self.count + n
        delta = float(mean) - self.mean
        self.mean += delta * (n / total)
        self.m2 += m2 + delta * delta * (self.count * n / total)
        self.count = total

    def state(self, name: str) -> dict:
        """The feature's fitted entry: mean, standard deviation (1 if 0) and indicator flag."""
        if self.count == 0:
            return {"name": name, "mean": 0.0, "std": 1.0, "indicator": self.missing}
        std = math.sqrt(self.m2 / self.count)
        return {"name": name, "mean": self.mean, "std": std or 1.0, "indicator": self.missing}


class CategoryStats:
    """How often each distinct value of a categorical feature occurs (as text), counted up to
    ``limit`` distinct values; beyond that only the fact that there are more (the feature
    will be hashed), so memory stays bounded by ``limit`` plus one batch's values."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[str, int] | None = {}

    def update(self, column: pd.Series) -> None:
        """Add a batch of values (missing ones are ignored)."""
        if self.counts is None:
            return
        codes, uniques = pd.factorize(column)
        seen = np.bincount(codes[codes >= 0], minlength=len(uniques)).tolist()
        counts = self.counts
        for value, n in zip(category_keys(uniques).tolist(), seen):  # True and 1: one
            counts[value] = counts.get(value, 0) + n
        if len(counts) > self.limit:
            self.counts = None

    @property
    def n_distinct(self) -> int:
        """The number of distinct values, or ``limit + 1`` when there are more than ``limit``."""
        return self.limit + 1 if self.counts is None else len(self.counts)

    def state(
        self, name: str, max_categories: int, min_frequency: int, hash_buckets: int | None
    ) -> dict:
        """The feature's fitted entry (the rule of :mod:`mtlkit.data.vocabulary`): a sorted
        vocabulary of the values seen at least ``min_frequency`` times or, when those are more
        than ``max_categories`` (or the column has more than ``count_limit`` distinct values),
        hashing into ``hash_buckets`` ids (unset: :func:`auto_buckets`), with the column's
        distinct values (``distinct``; ``count_limit + 1``: more than the limit)."""
        limit = count_limit(max_categories)
        counts = self.counts
        if counts is not None and len(counts) <= limit:
            vocab = sorted(v for v, n in counts.items() if n >= min_frequency)
            if len(vocab) <= max_categories:
                return {"name": name, "vocab": vocab}
        n = min(self.n_distinct, limit + 1)
        buckets = hash_buckets or auto_buckets(n, max_categories)
        return {"name": name, "hashed": True, "buckets": buckets, "distinct": n}
