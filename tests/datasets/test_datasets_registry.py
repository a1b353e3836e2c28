import numpy as np
import pytest

from mtlkit import ConfigError, DataError
from mtlkit.cli.main import main
from mtlkit.datasets import available, load


def test_every_data_set_is_described():
    names = sorted(available())
    assert names == sorted(
        [
            "synthetic",
            "census-income",
            "titanic",
            "tencent-ads-2020",
            "ali-ccp",
            "aliexpress",
        ]
    )
    for info in available().values():
        assert info.tasks and info.size and info.source and callable(info.loader)


def test_synthetic_full_and_two_files_one_label_each(tmp_path):
    full = load("synthetic", n_rows=400, n_features=8)
    assert full.task_names == ["label0", "label1"] and full.masks["label0"].all()
    partial = load("synthetic", path=tmp_path, n_rows=400, n_features=8, partial_labels=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part0_label0.csv", "part1_label1.csv"]
    both = partial.masks["label0"] & partial.masks["label1"]
    assert not both.any() and partial.masks["label0"].sum() == 200
    assert len(set(partial.source)) == 2
    in_memory = load("synthetic", n_rows=400, n_features=8, partial_labels=True)
    np.testing.assert_array_equal(in_memory.masks["label1"], partial.masks["label1"])
    with pytest.raises(DataError, match="partial_labels"):
        load("synthetic", path=tmp_path, n_rows=10)


def test_unknown_names_and_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="Did you mean 'census-income'"):
        load("census_income")
    with pytest.raises(ConfigError, match="data set 'synthetic'.*rows"):
        load("synthetic", rows=10)


def test_cli_lists_the_data_sets_and_the_cache_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTLKIT_DATA", str(tmp_path))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in available():
        assert name in out
    assert "income, marital" in out and "UCI" in out
    assert str(tmp_path / "ali-ccp") in out and f"cache folder: {tmp_path}" in out
