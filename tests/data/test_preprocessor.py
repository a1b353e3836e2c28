import numpy as np
import pandas as pd
import pytest
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.splits import split_table
from mtlkit.errors import ConfigError, DataError


def table_of(frame: pd.DataFrame, labels=("y",), **kwargs):
    return load_tables(frame, list(labels), **kwargs)


@pytest.fixture
def train_and_test():
    train = pd.DataFrame(
        {
            "num": [1.0, 2.0, 3.0, np.nan, 4.0],
            "full": [10.0, 20.0, 30.0, 40.0, 50.0],
            "colour": ["red", "blue", "red", None, "green"],
            "y": [0, 1, 0, 1, 1],
        }
    )
    test = pd.DataFrame(
        {
            "num": [2.5, np.nan, 100.0],
            "full": [30.0, np.nan, 0.0],
            "colour": ["blue", "purple", None],
            "y": [1, 0, np.nan],
        }
    )
    return table_of(train), table_of(test)


def assert_same(a, b):
    for name in ("x_cat", "x_num", "y", "mask"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_tensors_shapes_dtypes_and_labels(merged_table):
    data = Preprocessor().fit_transform(merged_table)
    n = len(merged_table)
    assert data.x_cat.dtype == torch.int64 and data.x_cat.shape == (n, 2)  # children, education
    assert data.x_num.dtype == torch.float32 and data.x_num.shape == (n, 1)  # hours
    assert data.y.dtype == torch.float32 and data.y.shape == (n, 2)
    assert data.mask.dtype == torch.bool
    assert (
        data.mask.numpy().tolist()
        == np.stack([merged_table.masks["income"], merged_table.masks["marital"]], axis=1).tolist()
    )
    assert (data.y[~data.mask] == 0).all()  # placeholder, never NaN
    labelled = merged_table.masks["marital"]
    assert data.y[labelled, 1].numpy().tolist() == merged_table.labels["marital"][labelled].tolist()


def test_statistics_come_from_the_fitted_table_only(train_and_test):
    train, test = train_and_test
    prep = Preprocessor().fit(train)
    assert prep.feature_names == {
        "categorical": ["colour"],
        "numeric": ["num", "full", "num__missing"],
    }
    x_train = prep.transform(train).x_num.numpy()
    assert x_train[:, 1].mean() == pytest.approx(0, abs=1e-6)
    assert x_train[:, 1].std() == pytest.approx(1, abs=1e-6)
    x_test = prep.transform(test).x_num.numpy()
    # full: train mean 30, std sqrt(200); a test NaN is imputed with the train mean (0 after scaling)
    assert x_test[:, 1].tolist() == pytest.approx([0.0, 0.0, -30 / np.sqrt(200)])
    # num: train mean 2.5, std sqrt(1.25)
    assert x_test[:, 0].tolist() == pytest.approx([0.0, 0.0, 97.5 / np.sqrt(1.25)])


def test_missing_indicator_only_for_features_missing_in_training(train_and_test):
    train, test = train_and_test
    prep = Preprocessor().fit(train)
    assert prep.schema().n_numeric == 3
    assert prep.transform(train).x_num[:, 2].tolist() == [0, 0, 0, 1, 0]
    assert prep.transform(train).x_num[3, 0] == 0  # imputed
    assert prep.transform(test).x_num[:, 2].tolist() == [0, 1, 0]


def test_unknown_and_missing_categories_map_to_zero(train_and_test):
    train, test = train_and_test
    prep = Preprocessor().fit(train)
    assert prep.schema().cat_cardinalities == (4,)  # unknown + blue, green, red
    assert prep.transform(train).x_cat[:, 0].tolist() == [3, 1, 3, 0, 2]
    assert prep.transform(test).x_cat[:, 0].tolist() == [1, 0, 0]


def test_integer_categories_match_across_int_and_float_columns():
    train = table_of(pd.DataFrame({"k": [1, 2, 3, 1], "y": [0, 1, 0, 1]}))
    test = table_of(pd.DataFrame({"k": [3.0, np.nan, 1.0, 2.0], "y": [0, 1, 0, 1]}))
    prep = Preprocessor({"k": "categorical"}).fit(train)
    assert prep.transform(test).x_cat[:, 0].tolist() == [3, 0, 1, 2]


def test_json_round_trip_gives_identical_tensors(tmp_path, train_and_test, merged_table):
    for table, other in (train_and_test, (merged_table, merged_table.take(np.arange(50)))):
        with pytest.warns(UserWarning, match="hashed into 7 ids"):
            prep = Preprocessor(max_categories=2, hash_buckets=7).fit(table)
        prep.save(tmp_path / "prep.json")
        loaded = Preprocessor.load(tmp_path / "prep.json")
        assert loaded.schema() == prep.schema()
        assert loaded.feature_names == prep.feature_names
        assert_same(loaded.transform(other), prep.transform(other))


def test_high_cardinality_hashing_is_stable():
    values = [f"user{i}" for i in range(50)]
    table = table_of(pd.DataFrame({"user": values, "y": [0, 1] * 25}))
    with pytest.warns(UserWarning, match="'user' has more than 40 distinct values"):
        prep = Preprocessor(max_categories=10, hash_buckets=16).fit(table)
    assert prep.schema().cat_cardinalities == (17,)
    ids = prep.transform(table).x_cat[:, 0]
    assert ids.min() >= 1 and ids.max() <= 16
    # Fixed expected ids: a salted hash (Python's hash()) would change from run to run.
    assert ids[:8].tolist() == [10, 9, 15, 4, 1, 13, 16, 10]
    with pytest.warns(UserWarning, match="hashed"):
        again = Preprocessor(max_categories=10, hash_buckets=16).fit(
            table.take(np.arange(49, -1, -1))
        )
    assert torch.equal(again.transform(table).x_cat, prep.transform(table).x_cat)


def test_labels_recoded_to_the_training_classes():
    train = table_of(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]}))
    test = table_of(pd.DataFrame({"x": [1.0, 2.0], "y": ["c", "b"]}))  # binary with (b, c)
    prep = Preprocessor().fit(train)
    assert prep.transform(test).y[:, 0].tolist() == [2.0, 1.0]


def test_predicting_without_labels_and_missing_columns(train_and_test):
    train, test = train_and_test
    prep = Preprocessor().fit(train)
    unlabelled = test.take(np.arange(3))
    unlabelled.labels, unlabelled.masks, unlabelled.tasks = {}, {}, []
    with pytest.raises(DataError, match=r"\['y'\].*require_labels=False"):
        prep.transform(unlabelled)
    data = prep.transform(unlabelled, require_labels=False)
    assert data.y.shape == (3, 1) and not data.mask.any()
    unlabelled.features = unlabelled.features.drop(columns=["num"])
    with pytest.raises(DataError, match=r"\['num'\].*missing"):
        prep.transform(unlabelled, require_labels=False)


def test_bad_numeric_values_and_unfitted_use(train_and_test):
    train, _ = train_and_test
    prep = Preprocessor().fit(train)
    bad = train.take(np.arange(5))
    bad.features["num"] = ["1", "x", "3", "4", "5"]
    with pytest.raises(DataError, match="'num'.*non-numeric"):
        prep.transform(bad)
    with pytest.raises(DataError, match="feature_kinds.*'nope'"):
        Preprocessor({"nope": "numeric"}).fit(train)
    with pytest.raises(ConfigError, match="not fitted"):
        Preprocessor().transform(train)


def test_load_rejects_other_files(tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="x.json.*not a saved"):
        Preprocessor.load(tmp_path / "x.json")
    with pytest.raises(DataError, match="missing.json"):
        Preprocessor.load(tmp_path / "missing.json")


def test_fit_on_train_split_then_transform_all(merged_table):
    train, val, test = split_table(merged_table, seed=0)
    prep = Preprocessor().fit(train)
    hours = train.features["hours"]
    x_val = prep.transform(val).x_num[:, 0].numpy()
    expected = (val.features["hours"] - hours.mean()) / hours.std(ddof=0)
    assert x_val == pytest.approx(expected.to_numpy(), abs=1e-5)
