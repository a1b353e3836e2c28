"""A run's test labels are read as the model trains on them (issue #20, bug 6): recoded to the
classes it was fitted with and masked where missing, with the scores, in one pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlkit.data.loading import load_tables
from mtlkit.data.splits import split_table
from mtlkit.errors import DataError
from mtlkit.experiments.run import RunSpec, run_one

SETTINGS = {"epochs": 2, "batch_size": 64, "patience": 0, "progress": False}


def _frame(n: int, classes: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    grade = np.asarray(classes, dtype=object)[rng.integers(0, len(classes), n)]
    return pd.DataFrame(x, columns=["x0", "x1", "x2"]).assign(
        grade=grade, ok=np.where(x[:, 0] > 0, "yes", "no")
    )


def test_test_labels_are_recoded_to_the_fitted_classes():
    train, val, _ = split_table(load_tables(_frame(400, ["a", "b", "c"], 0), ["grade", "ok"]))
    # A test file without class "a": its own classes are ("b", "c"), ids 0 and 1, while the
    # model's ids for them are 1 and 2.
    test = load_tables(_frame(120, ["b", "c"], 1), ["grade", "ok"])
    record = run_one(RunSpec("shared_bottom", train_params=SETTINGS), train, val, test)
    y, scores = record.predictions["grade"]
    expected = np.where(test.labels["grade"] == 0, 1.0, 2.0)  # "b" -> 1, "c" -> 2
    np.testing.assert_array_equal(y, expected)
    accuracy = float(np.mean(scores.argmax(axis=1) == y))
    assert record.metrics["test"]["grade"]["accuracy"] == pytest.approx(accuracy)


def test_a_test_label_outside_the_fitted_classes_is_refused():
    train, val, _ = split_table(load_tables(_frame(400, ["a", "b"], 0), ["grade", "ok"]))
    test = load_tables(_frame(120, ["a", "b", "z"], 1), ["grade", "ok"])
    with pytest.raises(DataError, match=r"'grade' has value\(s\) \['z'\] that are not among"):
        run_one(RunSpec("shared_bottom", train_params=SETTINGS), train, val, test)


def _parquet(folder, frame: pd.DataFrame, group_rows: int):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), folder / "a.parquet", group_rows
    )
    return folder


def test_streamed_splits_take_every_reading_option_and_are_checked(tmp_path):
    from mtlkit.experiments.config import CompareConfig
    from mtlkit.experiments.data import load_splits

    frame = _frame(400, ["a", "b"], 0).assign(missing=-1)
    folder = _parquet(tmp_path / "pq", frame, 20)
    settings = {
        "data": str(folder),
        "labels": ["grade", "ok"],
        "stream": True,
        "models": ["shared_bottom"],
    }
    options = {"encoding": "latin-1", "missing_labels": [-1], "bad_values": "missing"}
    config = CompareConfig.from_mapping({**settings, **options, "fractions": [0.6, 0.2, 0.2]})
    splits = load_splits(config)  # the encoding used to be dropped before stream_tables
    assert [(s.encoding, s.missing_labels, s.bad_values) for s in splits] == [
        ("latin-1", [-1], "missing")
    ] * 3
    # "ok" labelled in the first 80 rows only: its validation and test row groups have none.
    unlabelled = frame.assign(ok=frame["ok"].where(frame.index < 80))
    folder = _parquet(tmp_path / "few", unlabelled, 20)
    config = CompareConfig.from_mapping({**settings, "data": str(folder), "split_seed": 0})
    with pytest.raises(DataError, match=r"'ok' has no labelled rows in the .* split"):
        load_splits(config)
