"""The estimator takes training and validation data in memory or streamed, in any mix, and
reads each argument as it says (issue #20, bug 1)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mtlkit.data.loading import load_tables
from mtlkit.data.streaming_table import stream_tables
from mtlkit.data.synthetic import make_synthetic
from mtlkit.errors import ConfigError, DataError
from mtlkit.training.estimator import MultiTaskEstimator

LABELS = ["label0", "label1"]
SETTINGS = {"epochs": 2, "batch_size": 64, "patience": 0, "shuffle": False, "progress": False}


def _parquet(folder, frame, group_rows):
    folder.mkdir(parents=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, folder / "rows.parquet", row_group_size=group_rows)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("paths")
    frame = make_synthetic(600, n_features=5, correlation=0.9, seed=2)
    frame.loc[frame.index % 3 == 0, "label1"] = np.nan
    train, val = frame.iloc[:450], frame.iloc[450:]
    # One row group: a training stream too small to split off a validation share of it.
    return {
        "train": _parquet(root / "train", train, len(train)),
        "val": _parquet(root / "val", val, 50),
        "val_unlabelled": _parquet(root / "val_unlabelled", val.assign(label1=np.nan), 50),
        "train_frame": train,
        "val_frame": val,
    }


def _est() -> MultiTaskEstimator:
    return MultiTaskEstimator("shared_bottom", **SETTINGS)


def _val_losses(est: MultiTaskEstimator) -> list[float]:
    return [epoch.val[task]["loss"] for epoch in est.history_.epochs for task in LABELS]


def test_a_positional_validation_stream_is_the_validation_data(data):
    train, val = stream_tables(data["train"], LABELS), stream_tables(data["val"], LABELS)
    positional = _est().fit(train, val)  # was: val ignored, train split (too few row groups)
    keyword = _est().fit(train, validation=val)
    assert _val_losses(positional) == pytest.approx(_val_losses(keyword))
    assert positional.evaluate(val) == keyword.evaluate(val)


def test_in_memory_and_streamed_data_mix_in_either_direction(data):
    memory = [load_tables(data["train_frame"], LABELS), load_tables(data["val_frame"], LABELS)]
    streams = [stream_tables(data["train"], LABELS), stream_tables(data["val"], LABELS)]
    reference = _val_losses(_est().fit(memory[0], validation=memory[1]))
    # A table with a streamed validation set (was: AttributeError), and the reverse (was
    # refused): each trains on the same rows and validates on the same rows.
    assert _val_losses(_est().fit(memory[0], validation=streams[1])) == pytest.approx(reference)
    assert _val_losses(_est().fit(streams[0], validation=memory[1])) == pytest.approx(reference)


def test_a_table_with_labels_given_again_as_y_is_refused(data):
    table = load_tables(data["train_frame"], LABELS)
    y = np.zeros((len(table), 2))
    message = "X is a table, which holds its labels, and y is given too"
    for X in (table, stream_tables(data["train"], LABELS)):  # noqa: N806
        with pytest.raises(ConfigError, match=message):
            _est().fit(X, y)
    est = _est().fit(table)
    with pytest.raises(ConfigError, match=message):
        est.evaluate(table, y)


def test_a_streamed_validation_split_without_labels_of_a_task_is_refused(data):
    train = stream_tables(data["train"], LABELS)
    val = stream_tables(data["val_unlabelled"], LABELS)  # was: trained with a NaN val loss
    with pytest.raises(DataError, match=r"'label1' has no labelled rows in the validation split"):
        _est().fit(train, validation=val)
