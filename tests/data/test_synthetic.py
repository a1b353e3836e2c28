import numpy as np
import pytest

from mtlkit.data.loading import load_tables
from mtlkit.data.synthetic import make_synthetic, write_partial_label_files
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
