"""Per-column training statistics that a :class:`~mtlkit.data.features.Preprocessor` is fitted
from, gathered in one call (a table in memory) or batch by batch (a streamed table).

Both paths use these classes, so one implementation decides vocabularies, hashing, means,
standard deviations and missing indicators.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def as_text(values: object) -> np.ndarray:
    """Values as strings (object array); integral floats print as ints, so 3 == 3.0."""
    values = np.asarray(values)
    text = values.astype(str).astype(object)
    if values.dtype.kind == "f":
        integral = np.isfinite(values) & (np.mod(values, 1) == 0) & (np.abs(values) < 2**53)
        text[integral] = values[integral].astype(np.int64).astype(str)
    return text


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
    """The distinct values of a categorical feature as text, remembered up to ``limit`` of them;
    beyond that only the fact that there are more (the feature will be hashed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values: set[str] | None = set()

    def update(self, column: pd.Series) -> None:
        """Add a batch of values (missing ones are ignored)."""
        if self.values is None:
            return
        _, uniques = pd.factorize(column)
        self.values.update(as_text(uniques).astype(str).tolist())
        if len(self.values) > self.limit:
            self.values = None

    @property
    def n_distinct(self) -> int:
        """The number of distinct values, or ``limit + 1`` when there are more than ``limit``."""
        return self.limit + 1 if self.values is None else len(self.values)

    def state(self, name: str, max_categories: int) -> dict:
        """The feature's fitted entry: a sorted vocabulary, or hashing above ``max_categories``."""
        if self.values is None or len(self.values) > max_categories:
            return {"name": name, "hashed": True}
        return {"name": name, "vocab": sorted(self.values)}
