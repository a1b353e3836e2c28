import numpy as np
import pandas as pd
import pytest

from mtlkit.data.loading import load_tables
from mtlkit.data.synthetic import (
    make_grouped_synthetic,
    make_synthetic,
    write_partial_label_files,
)
from mtlkit.errors import DataError


def test_same_seed_same_data_and_other_seed_differs():
    a = make_synthetic(200, seed=3)
    assert a.equals(make_synthetic(200, seed=3))
    assert not a.equals(make_synthetic(200, seed=4))


def test_binary_labels_are_balanced():
    frame = make_synthetic(2000, n_tasks=3)
    for k in range(3):
        assert set(frame[f"label{k}"].unique()) == {0, 1}
        assert abs(frame[f"label{k}"].mean() - 0.5) < 0.01


@pytest.mark.parametrize("corr", [-0.5, 0.0, 0.5, 0.9])
def test_correlation_knob_controls_label_correlation(corr):
    frame = make_synthetic(20000, correlation=corr, task_type="regression", noise=0.01, seed=1)
    observed = np.corrcoef(frame["label0"], frame["label1"])[0, 1]
    assert abs(observed - corr) < 0.1


def test_correlation_out_of_range_is_refused():
    with pytest.raises(DataError, match="correlation"):
        make_synthetic(10, correlation=1.5)


def test_partial_label_files_merge_back_with_one_label_each(tmp_path):
    frame = make_synthetic(300, n_features=5)
    paths = write_partial_label_files(frame, tmp_path, ["label0", "label1"])
    assert len(paths) == 2
    table = load_tables(tmp_path, labels=["label0", "label1"])
    assert len(table) == 300
    assert table.label_counts() == {"label0": 150, "label1": 150}
    assert not np.any(table.masks["label0"] & table.masks["label1"])


def test_grouped_synthetic_plants_groups_in_the_labels():
    frame = make_grouped_synthetic(
        20_000, groups=(3, 2), within=0.9, across=0.0, task_type="regression", seed=1
    )
    corr = frame[[f"label{k}" for k in range(5)]].corr().to_numpy()
    group = np.array([0, 0, 0, 1, 1])
    same = (group[:, None] == group[None, :]) & ~np.eye(5, dtype=bool)
    assert corr[same].min() > 0.8 and np.abs(corr[group[:, None] != group[None, :]]).max() < 0.05
    opposed = make_grouped_synthetic(
        20_000, groups=(2, 2), within=0.9, across=-0.5, task_type="regression", seed=1
    )
    assert opposed[["label0", "label2"]].corr().iloc[0, 1] < -0.3
    binary = make_grouped_synthetic(500, groups=(2, 2), seed=3)
    assert set(np.unique(binary["label3"])) == {0, 1}
    pd.testing.assert_frame_equal(binary, make_grouped_synthetic(500, groups=(2, 2), seed=3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": (2, 0)}, "number of tasks of each group"),
        ({"within": 0.5, "across": 0.7}, "across must lie in"),
        ({"groups": (2, 2, 2), "across": -0.6}, "across must lie in"),
        ({"groups": (30, 30), "n_features": 20}, "n_features"),
    ],
)
def test_grouped_synthetic_rejects_impossible_settings(kwargs, message):
    with pytest.raises(DataError, match=message):
        make_grouped_synthetic(100, **kwargs)
