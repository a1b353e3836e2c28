import numpy as np
import pandas as pd
import pytest

from mtlkit.data.column_stats import CategoryStats, NumericStats


def test_numeric_stats_merged_by_batch_equal_the_whole_column():
    rng = np.random.default_rng(0)
    values = rng.normal(1e6, 3.0, 10_001)  # a large mean: naive sums of squares lose digits
    values[::13] = np.nan
    whole, batched = NumericStats(), NumericStats()
    whole.update(values)
    for part in np.array_split(values, 17):
        batched.update(part)
    present = values[~np.isnan(values)]
    assert whole.state("x") == {
        "name": "x",
        "mean": float(present.mean()),
        "std": float(present.std()),
        "indicator": True,
    }
    assert batched.state("x")["mean"] == pytest.approx(present.mean(), rel=1e-14)
    assert batched.state("x")["std"] == pytest.approx(present.std(), rel=1e-10)


def test_numeric_stats_of_constant_and_empty_columns():
    constant, empty = NumericStats(), NumericStats()
    constant.update(np.array([2.0, 2.0]))
    empty.update(np.array([np.nan]))
    assert constant.state("c") == {"name": "c", "mean": 2.0, "std": 1.0, "indicator": False}
    assert empty.state("e") == {"name": "e", "mean": 0.0, "std": 1.0, "indicator": True}


def test_category_stats_vocabulary_and_hashing_limit():
    stats = CategoryStats(limit=3)
    stats.update(pd.Series([2.0, 1.0, np.nan]))
    stats.update(pd.Series([1, 3]))  # 3 == 3.0: integral floats and ints are the same value
    assert stats.n_distinct == 3
    assert stats.state("k", max_categories=3) == {"name": "k", "vocab": ["1", "2", "3"]}
    assert stats.state("k", max_categories=2) == {"name": "k", "hashed": True}
    stats.update(pd.Series([4]))
    assert stats.n_distinct == 4 and stats.values is None  # forgotten beyond the limit
    assert stats.state("k", max_categories=3) == {"name": "k", "hashed": True}
