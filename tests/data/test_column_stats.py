import numpy as np
import pandas as pd
import pytest

from mtlkit.data.column_stats import CategoryStats, NumericStats, category_keys


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
    assert stats.n_distinct == 3 and stats.counts == {"1": 2, "2": 1, "3": 1}
    assert stats.state("k", 3, 1, None) == {"name": "k", "vocab": ["1", "2", "3"]}
    assert stats.state("k", 3, 2, None) == {"name": "k", "vocab": ["1"]}  # rare: out of vocab
    hashed = {"name": "k", "hashed": True, "buckets": 4, "distinct": 3}  # 3 -> 4 (power of 2)
    assert stats.state("k", 2, 1, None) == hashed
    assert stats.state("k", 2, 2, None) == {"name": "k", "vocab": ["1"]}  # 1 frequent value
    assert stats.state("k", 2, 1, 7)["buckets"] == 7
    stats.update(pd.Series([4]))
    assert stats.n_distinct == 4 and stats.counts is None  # forgotten beyond the limit
    # Beyond the counting limit (4 x max_categories = 4 here) hashed whatever min_frequency.
    assert stats.state("k", 1, 2, None) == {
        "name": "k",
        "hashed": True,
        "buckets": 4,
        "distinct": 4,
    }


# (values, their keys): one key per category, whatever the file type spells it as
KEYS: dict[str, tuple[object, list[str]]] = {
    "booleans": (np.array([True, False]), ["1", "0"]),
    "nullable booleans": (pd.array([True, False], dtype="boolean"), ["1", "0"]),
    "integers": (np.array([1, 0, 12]), ["1", "0", "12"]),
    "integral floats": (np.array([1.0, 0.0, 2.5]), ["1", "0", "2.5"]),
    "truth words in any case": (
        np.array(["true", " TRUE ", "False", "yes"], dtype=object),
        ["1", "1", "0", "yes"],
    ),
    "integral numbers as text": (
        np.array(["1.0", "-2.00", "007", "1.5", "x.0"], dtype=object),
        ["1", "-2", "007", "1.5", "x.0"],
    ),
    "mixed objects": (np.array([3.0, True, "a", 4], dtype=object), ["3", "1", "a", "4"]),
    "nothing": (np.array([], dtype=object), []),
}


@pytest.mark.parametrize("name", list(KEYS))
def test_category_keys(name):
    values, keys = KEYS[name]
    assert category_keys(values).tolist() == keys


def test_category_stats_count_every_spelling_as_one_category():
    stats = CategoryStats(limit=10)
    stats.update(pd.Series([True, False, True]))
    stats.update(pd.Series(["1", "true", "FALSE", "0.0"]))
    assert stats.counts == {"1": 4, "0": 3}
