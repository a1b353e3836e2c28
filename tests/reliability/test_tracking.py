"""Tracking targets that cannot take a run fail in one line, at once, before any training
or folder; data-parallel training creates the experiment once, before the ranks start."""

from __future__ import annotations

import time

import pytest
from reliability_helpers import LABELS, assert_clear_error

from mtlkit.training import distributed

mlflow = pytest.importorskip("mlflow")


def _deleted_experiment(tmp_path) -> str:
    store = (tmp_path / "store").as_uri()
    client = mlflow.tracking.MlflowClient(store)
    client.delete_experiment(client.create_experiment("gone"))
    return store


# (the store, the experiment, what the one error line names)
TARGETS = {
    "no server at the address": (lambda _: "http://127.0.0.1:9", "x", "http://127.0.0.1:9"),
    "an unknown URI scheme": (lambda _: "foo://somewhere/x", "x", "foo: is not a scheme"),
    "a deleted experiment": (_deleted_experiment, "gone", "'gone' at"),
}


@pytest.mark.parametrize("case", TARGETS)
def test_an_unusable_tracking_target_fails_before_training(case, good_csv, tmp_path, capsys):
    store, experiment, needle = TARGETS[case]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local store with MLflow >= 3.7
        env.setenv("MLFLOW_TRACKING_URI", store(tmp_path))
        env.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
        out = tmp_path / "model"
        argv = ["train", good_csv, "--labels", *LABELS, "--out", out, "--track", "mlflow"]
        start = time.monotonic()
        message = assert_clear_error([*argv, "--epochs", "1", "--quiet"], capsys, needle)
    assert "MLFLOW" in message or "MLflow" in message
    assert time.monotonic() - start < 30  # a probe with a timeout, not minutes of retries
    assert not out.exists()  # nothing trained, no folder made


def test_the_launcher_creates_the_experiment_before_the_ranks_start(
    good_csv, tmp_path, monkeypatch, capsys
):
    store = (tmp_path / "store").as_uri()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "fresh")
    found = []

    def ranks(nproc, argv):  # the ranks look the experiment up; none creates it
        found.append(mlflow.tracking.MlflowClient(store).get_experiment_by_name("fresh"))

    monkeypatch.setattr(distributed, "launch", ranks)
    argv = ["train", good_csv, "--labels", *LABELS, "--out", tmp_path / "m", "--nproc", "2"]
    from mtlkit.cli.main import main

    assert main([str(a) for a in [*argv, "--track", "mlflow"]]) == 0, capsys.readouterr()
    assert found and found[0] is not None
