"""Categorical columns at recommender scale: full vocabularies, rare values, hashing rule."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.stream_fit import fit_preprocessor
from mtlkit.data.streaming_data import StreamingData
from mtlkit.data.streaming_table import stream_tables
from mtlkit.data.vocabulary import auto_buckets
from mtlkit.errors import ConfigError

FIXTURES = Path(__file__).parents[1] / "training" / "fixtures"


def ids_table(n_ids: int, repeats: int = 1, seed: int = 0):
    """A table whose ``user`` column holds ``n_ids`` distinct ids, id k ``1 + k % repeats``
    times (shuffled)."""
    users = np.repeat(np.arange(n_ids), 1 + np.arange(n_ids) % repeats)
    users = np.random.default_rng(seed).permutation(users)
    frame = pd.DataFrame({"user": [f"u{k}" for k in users], "y": users % 2})
    return load_tables(frame, ["y"])


def test_a_column_of_20000_ids_gets_a_full_vocabulary_by_default():
    table = ids_table(20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no hashing warning
        prep = Preprocessor().fit(table)
    assert prep.schema().cat_cardinalities == (20_001,)
    ids = prep.transform(table).x_cat[:, 0]
    assert len(torch.unique(ids)) == 20_000 and ids.min() == 1  # one id per value


def test_rare_values_share_the_out_of_vocabulary_id():
    table = ids_table(30, repeats=3)  # ids seen 1, 2 or 3 times
    prep = Preprocessor(min_frequency=2).fit(table)
    assert prep.schema().cat_cardinalities == (21,)  # the 20 ids seen 2 or 3 times, plus 0
    ids = prep.transform(table).x_cat[:, 0].numpy()
    seen = table.features["user"].map(table.features["user"].value_counts()).to_numpy()
    assert (ids[seen < 2] == 0).all() and (ids[seen >= 2] > 0).all()
    assert len(np.unique(ids[seen >= 2])) == 20  # frequent values keep one id each


def test_hashing_rule_and_warning():
    table = ids_table(300)
    with pytest.warns(
        UserWarning, match=r"'user' has 300 distinct values.*max_categories=100.*512"
    ):
        prep = Preprocessor(max_categories=100).fit(table)
    assert prep.schema().cat_cardinalities == (513,)  # smallest power of two >= 300, plus 0
    ids = prep.transform(table).x_cat[:, 0]
    assert ids.min() >= 1 and ids.max() <= 512 and len(torch.unique(ids)) > 200
    with pytest.warns(UserWarning, match="hashed into 64 ids"):
        fixed = Preprocessor(max_categories=100, hash_buckets=64).fit(table)
    assert fixed.schema().cat_cardinalities == (65,)
    # More than 4 x max_categories distinct values: hashed, whatever min_frequency keeps.
    with pytest.warns(UserWarning, match="more than 200 distinct values.*min_frequency=5"):
        big = Preprocessor(max_categories=50, min_frequency=5).fit(table)
    assert big.schema().cat_cardinalities == (257,)
    assert [auto_buckets(n, 100_000) for n in (3, 120_000, 400_000, 10**7)] == [
        4,
        131_072,
        524_288,
        524_288,
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_categories": 0}, "'max_categories' must be >= 1, got 0"),
        ({"hash_buckets": -3}, "'hash_buckets' must be >= 1, got -3"),
        ({"min_frequency": 2.5}, "'min_frequency' must be an integer, got 2.5"),
        ({"max_categories": "10"}, "'max_categories' must be an integer, got '10'"),
    ],
)
def test_bad_settings_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        Preprocessor(**settings)


def test_settings_round_trip_through_save_and_load(tmp_path):
    table = ids_table(300, repeats=3)
    with pytest.warns(UserWarning, match="hashed"):
        fitted = Preprocessor(max_categories=150, hash_buckets=40, min_frequency=2).fit(table)
    fitted.save(tmp_path / "prep.json")
    loaded = Preprocessor.load(tmp_path / "prep.json")
    assert (loaded.max_categories, loaded.hash_buckets, loaded.min_frequency) == (150, 40, 2)
    assert loaded.schema() == fitted.schema() and loaded.schema().cat_cardinalities == (41,)
    assert torch.equal(loaded.transform(table).x_cat, fitted.transform(table).x_cat)


def test_a_preprocessor_saved_before_these_settings_still_loads():
    """preprocessor_v0.json was written by mtlkit 8f77496 (no min_frequency, no buckets per
    column: 'user' hashed into the file's hash_buckets=8)."""
    prep = Preprocessor.load(FIXTURES / "preprocessor_v0.json")
    assert prep.min_frequency == 1 and prep.schema().cat_cardinalities == (9, 4)
    frame = pd.DataFrame(
        {
            "user": [f"u{i}" for i in range(12)],
            "city": ["paris", "oslo", None, "rome"] * 3,
            "age": np.arange(12, dtype=float),
            "y": [0, 1] * 6,
        }
    )
    x_cat = prep.transform(load_tables(frame, ["y"])).x_cat.tolist()
    assert x_cat[:8] == [[8, 2], [6, 1], [6, 0], [6, 3], [7, 2], [5, 1], [4, 0], [4, 3]]


def test_streamed_fit_gives_the_same_ids_as_in_memory(tmp_path):
    """Counting batch by batch: rare values, a full vocabulary and a hashed column agree."""
    rng = np.random.default_rng(1)
    n = 3_000
    frame = pd.DataFrame(
        {
            "user": rng.zipf(1.3, n) % 5_000,  # many rare ids
            "item": rng.integers(0, 40, n),
            "y": rng.integers(0, 2, n),
        }
    )
    folder = tmp_path / "data"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(frame), folder / "part.parquet", row_group_size=250)
    kinds = {"user": "categorical", "item": "categorical"}
    for settings in ({"min_frequency": 3}, {"max_categories": 45, "min_frequency": 2}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            memory = Preprocessor(kinds, **settings).fit(load_tables(frame, ["y"]))
            streamed = fit_preprocessor(
                stream_tables(folder, ["y"], feature_kinds=kinds),
                Preprocessor(kinds, **settings),
                read_rows=97,
            )
        hashed = [str(w.message).split()[2] for w in caught]  # user hashed, item not
        assert hashed == (["'user'", "'user'"] if "max_categories" in settings else [])
        assert memory.schema() == streamed.schema()
        expected = memory.transform(load_tables(frame, ["y"], feature_kinds=kinds)).x_cat
        batches = StreamingData(stream_tables(folder, ["y"], feature_kinds=kinds), streamed)
        assert torch.equal(torch.cat([b.x_cat for b in batches.batches(500)]), expected)
        assert (expected[:, 0] == 0).any() != bool(hashed)  # rare ids: 0, unless hashed


def test_the_saved_state_names_each_hashed_columns_buckets(tmp_path):
    with pytest.warns(UserWarning):
        Preprocessor(max_categories=100).fit(ids_table(300)).save(tmp_path / "p.json")
    (entry,) = json.loads((tmp_path / "p.json").read_text())["categorical"]
    assert entry == {"name": "user", "hashed": True, "buckets": 512, "distinct": 300}
