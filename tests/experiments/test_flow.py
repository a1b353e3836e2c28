"""One flow through ``mtlkit compare``: settings validated once, data read once, the one
synthetic data set."""

from __future__ import annotations

import json

import pytest

from mtlkit import datasets
from mtlkit.cli.main import main
from mtlkit.data.synthetic import make_synthetic
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments import data as experiment_data
from mtlkit.experiments.config import CompareConfig


def _grid(data: str, out, *extra: str) -> list[str]:
    return [
        "compare",
        data,
        "--labels",
        "label0",
        "label1",
        "--epochs",
        "1",
        "--models",
        "shared_bottom",
        "--seeds",
        "0",
        "1",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_compare_run_validates_its_settings_once_and_reads_its_data_once(
    jobs, tmp_path, monkeypatch, capsys
):
    # The data file is deleted as soon as it has been read: a second read anywhere (this
    # process, or a worker process, which the patches below do not reach) fails the grid.
    path = tmp_path / "data.csv"
    make_synthetic(400, n_features=4, seed=0).to_csv(path, index=False)
    calls = {"check": 0, "load": 0}
    check, load = CompareConfig.check, experiment_data.load_tables

    def counted_check(self, *args, **kwargs):
        calls["check"] += 1
        return check(self, *args, **kwargs)

    def load_then_delete(*args, **kwargs):
        calls["load"] += 1
        table = load(*args, **kwargs)
        path.unlink()
        return table

    monkeypatch.setattr(CompareConfig, "check", counted_check)
    monkeypatch.setattr(experiment_data, "load_tables", load_then_delete)
    assert main(_grid(str(path), tmp_path / "run", "--jobs", str(jobs))) == 0, capsys.readouterr()
    assert calls == {"check": 1, "load": 1}
    assert len(list((tmp_path / "run" / "cells").glob("*.json"))) == 4
    assert (tmp_path / "run" / "summary.csv").is_file()


def test_an_unknown_data_set_is_named_with_each_built_in_name_once(tmp_path, capsys):
    assert main(_grid("no-such-data", tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "'no-such-data' is neither a file" in err
    listed = err[err.index("data set (") :]
    for name in datasets.available():
        assert listed.count(f"'{name}'") == 1, (name, err)


def test_synthetic_partial_labels_as_mtlkit_datasets_advertises(tmp_path, capsys):
    assert "partial_labels=True" in datasets.available()["synthetic"].tasks
    out = tmp_path / "run"
    args = ["--rows", "400", "--dataset-option", "partial_labels=true"]
    assert main(_grid("synthetic", out, *args)) == 0, capsys.readouterr().err
    record = RunRecord.from_dict(json.loads(next((out / "cells").glob("*.json")).read_text()))
    labelled = {task: len(y) for task, (y, _) in record.predictions.items()}
    # One label per row: the tasks share the 60 test rows instead of each having all 60.
    assert sum(labelled.values()) == 60 and all(0 < n < 60 for n in labelled.values())


def test_compare_synthetic_is_the_synthetic_data_set_with_its_defaults(tmp_path):
    from mtlkit.datasets.synthetic import OPTIONS

    config = CompareConfig.from_mapping(
        {"data": "synthetic", "models": ["mmoe"], "n_rows": 300, "split_seed": 4}
    )
    grid = experiment_data.load_data(config)
    table = datasets.load("synthetic", n_rows=300, seed=4)
    assert grid.features.equals(table.features)
    assert all((grid.labels[t] == table.labels[t]).all() for t in table.task_names)
    # Every option compare takes for it is the data set's own.
    for option in OPTIONS:
        datasets.load("synthetic", n_rows=50, **{option.name: option.default})


def test_a_cells_validation_metrics_are_its_best_epochs_as_scoring_validation_gives():
    # run.py takes the validation metrics of a cell from its fit instead of scoring the
    # validation split again: the restored weights are the best epoch's, bit for bit.
    from mtlkit.data.loading import load_tables
    from mtlkit.data.splits import split_table
    from mtlkit.training.build import build_estimator

    table = load_tables(make_synthetic(400, n_features=5, seed=2), ["label0", "label1"])
    train, val, _ = split_table(table, seed=0)
    est = build_estimator(
        "mmoe", "uncertainty", epochs=12, patience=3, lr=0.05, seed=1, progress=False
    )
    est.fit(train, validation=val)
    history = est.history_
    assert 1 <= history.best_epoch < len(history.epochs)  # not simply the last epoch
    assert est.evaluate(val) == history.epochs[history.best_epoch - 1].val
