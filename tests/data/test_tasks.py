import numpy as np
import pandas as pd
import pytest

from mtlkit.data.schema import TaskSpec
from mtlkit.data.tasks import encode_labels, infer_task_spec, recode_labels
from mtlkit.errors import DataError


def test_binary_zero_one_keeps_its_ids():
    spec = infer_task_spec("y", [1, 0, 1, np.nan])
    assert spec == TaskSpec("y", "binary", 2, (0, 1))
    assert encode_labels(spec, pd.Series([1, 0, np.nan])).tolist()[:2] == [1.0, 0.0]


def test_binary_strings_sorted_and_bools():
    spec = infer_task_spec("income", [" 50000+.", " - 50000.", None, " 50000+."])
    assert spec.kind == "binary" and spec.classes == (" - 50000.", " 50000+.")
    encoded = encode_labels(spec, [" 50000+.", None, " - 50000.", ""])
    assert encoded[[0, 2]].tolist() == [1.0, 0.0]
    assert np.isnan(encoded[[1, 3]]).all()
    spec = infer_task_spec("flag", [True, False, True])
    assert spec.classes == (False, True)
    assert encode_labels(spec, [True, False]).tolist() == [1.0, 0.0]


def test_multiclass_from_small_integers_and_strings():
    spec = infer_task_spec("grade", [3, 1, 2, 2, 1.0, np.nan])
    assert spec == TaskSpec("grade", "multiclass", 3, (1, 2, 3))
    assert encode_labels(spec, [3.0, 1.0]).tolist() == [2.0, 0.0]
    spec = infer_task_spec("colour", ["red", "blue", "green", "blue"])
    assert spec.kind == "multiclass" and spec.classes == ("blue", "green", "red")


def test_regression_from_floats_and_many_integers():
    assert infer_task_spec("v", [0.5, 1.25, 3.0]).kind == "regression"
    assert infer_task_spec("age", np.arange(30)).kind == "regression"
    spec = infer_task_spec("v", [0.5, 1.25, 3.0])
    encoded = encode_labels(spec, pd.Series([0.5, np.nan, 2.0]))
    assert encoded[0] == 0.5 and np.isnan(encoded[1]) and encoded[2] == 2.0


def test_explicit_kind_overrides_inference():
    assert infer_task_spec("y", [0, 1, 2], "regression").kind == "regression"
    spec = infer_task_spec("y", [0, 1, 0], "multiclass")
    assert spec.kind == "multiclass" and spec.n_classes == 2
    assert infer_task_spec("y", np.arange(30), "multiclass").n_classes == 30


@pytest.mark.parametrize(
    ("values", "kind", "message"),
    [
        ([0, 1, 2], "binary", "'target' is declared binary but has 3"),
        (["a", "b", "c"], "regression", "'target' is declared regression.*non-numeric"),
        ([0.5, 1.5, 2.25], "multiclass", "'target' is declared multiclass.*non-integer"),
        ([1, 1, 1], None, "'target' has a single value"),
        ([np.nan, None], None, "'target' has no labelled values"),
        ([0, 1], "ordinal", "unknown kind 'ordinal'"),
        ([1, "a", 2], None, "'target' mixes value types"),
        ([0.0, np.inf, 1.0], None, "'target' holds infinite"),
    ],
)
def test_values_that_do_not_fit_the_kind(values, kind, message):
    with pytest.raises(DataError, match=message):
        infer_task_spec("target", pd.Series(values, dtype=object), kind)


def test_too_many_string_classes_is_refused():
    with pytest.raises(DataError, match="'id'.*distinct classes"):
        infer_task_spec("id", [f"row{i}" for i in range(1001)])


def test_encode_rejects_values_outside_the_classes():
    spec = TaskSpec("y", "binary", 2, ("no", "yes"))
    with pytest.raises(DataError, match=r"'y'.*\['maybe'\]"):
        encode_labels(spec, ["yes", "maybe"])


def test_recode_labels_to_other_classes():
    test_spec = TaskSpec("y", "binary", 2, ("b", "c"))  # a test file lacking class "a"
    train_spec = TaskSpec("y", "multiclass", 3, ("a", "b", "c"))
    recoded = recode_labels(np.array([0.0, 1.0, np.nan]), test_spec, train_spec)
    assert recoded[:2].tolist() == [1.0, 2.0] and np.isnan(recoded[2])
    with pytest.raises(DataError, match="'y'.*'a'"):
        recode_labels(np.array([0.0]), train_spec, test_spec)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0, 1, -1, 1, 0] * 20, r"'y' holds -1 in 20 row.*missing_labels=\[-1\]"),
        ([2, 0, 1, -1, 5] * 20, r"'y' holds -1 in 20 row\(s\) beside the classes \[0, 1, 2, 5\]"),
        (["0", "1", "unknown"] * 30, r"'y' looks binary \('0', '1'\) but also holds 'unknown'"),
        ([0] * 150 + [1] * 150 + [7], r"'y' looks binary \(0, 1\) but also holds 7 in 1 of 301"),
        ([f"id{i}" for i in range(30)] + ["id0"] * 5, "'y' has 30 distinct classes, 29 of them"),
    ],
    ids=["binary -1", "multiclass -1", "binary + text", "binary + rare", "identifier"],
)
def test_inferred_classes_that_look_like_mistakes_are_refused(values, message):
    with pytest.raises(DataError, match=message):
        infer_task_spec("y", values)
    declared = infer_task_spec("y", values, "multiclass")  # declaring the kind accepts them
    assert declared.n_classes == len(set(values))


def test_plausible_classes_are_accepted():
    assert infer_task_spec("y", [-1, 1] * 10).classes == (-1, 1)  # a -1/1 binary encoding
    assert infer_task_spec("y", [0, 1, 2] * 10).n_classes == 3
    assert infer_task_spec("y", [0] * 99 + [1] * 99 + [2] * 2).n_classes == 3  # 1% is not rare
    assert infer_task_spec("y", [f"c{i % 25}" for i in range(100)]).n_classes == 25
