"""--track mlflow: the README's compare example (small) leaves a browsable ./mlruns whose
runs hold what the run records hold; `mtlkit train --track mlflow` logs one run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mtlkit.cli.main import main
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments.grid_tracking import TRACKING_FILE

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

GRID = ["compare", "synthetic", "--correlations", "0.9", "--models", "single_task", "mmoe"]
GRID += ["--seeds", "0", "--rows", "600", "--epochs", "3", "--out", "runs/synthetic"]
GRID += ["--track", "mlflow", "--quiet"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty working directory, where the runs must land in ./mlruns; read it with
    ``store()`` (after mtlkit opened the file store: MLflow >= 3.7 needs the switch that
    mtlkit sets)."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(name, raising=False)
    return lambda: MlflowClient((tmp_path / "mlruns").as_uri())


def _series(client: MlflowClient, run_id: str, name: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))


def _assert_logged(client, run_id: str, name: str, expected: list[tuple[int, float]]) -> None:
    """The metric ``name`` was logged at exactly the ``expected`` steps, with its values."""
    logged = _series(client, run_id, name)
    assert [step for step, _ in logged] == [step for step, _ in expected], name
    assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-9), name


def _epochs(history, split: str, task: str, metric: str) -> list[tuple[int, float]]:
    values = history.series(split, task, metric)
    return [(e, v) for e, v in enumerate(values, start=1) if not math.isnan(v)]


def test_compare_logs_a_parent_run_with_one_child_per_cell_from_worker_processes(
    store, tmp_path, capsys
):
    assert main([*GRID, "--jobs", "2"]) == 0
    assert "Tracked: MLflow run" in capsys.readouterr().out
    store = store()
    experiment = store.get_experiment_by_name("mtlkit")
    runs = store.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "synthetic"
    assert json.loads(parent.data.params["models"]) == ["single_task", "mmoe"]
    assert {a.path for a in store.list_artifacts(parent.info.run_id)} >= {
        "report.html",
        "summary.csv",
        "plots",
    }
    assert any(a.path.endswith(".png") for a in store.list_artifacts(parent.info.run_id, "plots"))

    children = {r.info.run_name: r for r in runs if r is not parent}
    cells = {p.stem: p for p in (tmp_path / "runs/synthetic/cells").glob("*.json")}
    assert set(children) == set(cells) and len(cells) == 2
    for name, child in children.items():
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        record = RunRecord.from_dict(json.loads(cells[name].read_text()))
        assert child.data.params["architecture"] == record.architecture
        assert child.data.params["seed"] == "0" and child.data.params["correlation"] == "0.9"
        run_id = child.info.run_id
        for split, metric in (("train", "loss"), ("val", "loss"), ("val", "roc_auc")):
            for task in ("label0", "label1"):
                expected = _epochs(record.history, split, task, metric)
                assert len(expected) == len(record.history.epochs)
                _assert_logged(store, run_id, f"{split}/{task}/{metric}", expected)
        test_auc = child.data.metrics["test/label0/roc_auc"]
        assert test_auc == pytest.approx(record.metrics["test"]["label0"]["roc_auc"])
        assert child.data.metrics["best_epoch"] == record.history.best_epoch
        if record.architecture == "mmoe":  # diagnostics: gradient conflict and expert use
            cosine = [(e, v) for e, v in enumerate(record.history.diagnostic("grad_cosine"), 1)]
            _assert_logged(store, run_id, "diagnostics/grad_cosine", cosine)
            use = record.history.epochs[-1].diagnostics.expert_utilization["label0"]
            last = _series(store, run_id, "diagnostics/expert_use/label0/expert0")[-1]
            assert last == (len(record.history.epochs), pytest.approx(use[0]))
        model = store.download_artifacts(run_id, "model", str(tmp_path / f"dl-{name}"))
        assert {"estimator.json", "model.pt", "preprocessor.json"} <= set(
            p.name for p in Path(model).iterdir()
        )

    # Resuming the finished grid continues the same parent run (no second parent).
    saved = json.loads((tmp_path / "runs/synthetic" / TRACKING_FILE).read_text())
    assert saved["run"] == parent.info.run_id
    assert main(GRID) == 0
    runs = store.search_runs([experiment.experiment_id])
    assert len(runs) == 3
    assert store.get_run(parent.info.run_id).info.status == "FINISHED"


def test_train_logs_one_run_with_the_test_metrics_and_the_model_folder(store, tmp_path):
    from mtlkit.data.synthetic import make_synthetic
    from mtlkit.training.estimator import MultiTaskEstimator

    make_synthetic(800, n_features=5, seed=0).to_csv("data.csv", index=False)
    args = ["train", "data.csv", "--labels", "label0", "label1", "--model", "shared_bottom"]
    assert main([*args, "--epochs", "2", "--out", "model", "--track", "mlflow", "--quiet"]) == 0
    store = store()
    (run,) = store.search_runs([store.get_experiment_by_name("mtlkit").experiment_id])
    assert run.info.run_name == "model" and run.data.params["model"] == "shared_bottom"
    test = json.loads(Path("model/test_metrics.json").read_text())
    assert run.data.metrics["test/label1/roc_auc"] == pytest.approx(test["label1"]["roc_auc"])
    history = MultiTaskEstimator.load("model").history_
    _assert_logged(
        store, run.info.run_id, "val/label1/loss", _epochs(history, "val", "label1", "loss")
    )
    logged = store.download_artifacts(run.info.run_id, "model", str(tmp_path / "dl"))
    assert np.array_equal(
        (Path(logged) / "model.pt").read_bytes(), Path("model/model.pt").read_bytes()
    )
