"""Fixtures of the reliability tests: tiny data, a tiny saved model, a finished grid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from reliability_helpers import LABELS

from mtlkit.cli.main import main
from mtlkit.data.synthetic import make_synthetic
from mtlkit.training.estimator import MultiTaskEstimator


@pytest.fixture(scope="session")
def frame():
    return make_synthetic(240, n_features=3, correlation=0.9, seed=0)


@pytest.fixture(scope="session")
def good_csv(tmp_path_factory, frame) -> Path:
    path = tmp_path_factory.mktemp("data") / "good.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory, frame) -> Path:
    """A tiny model trained for one epoch and saved (copy it before damaging it)."""
    folder = tmp_path_factory.mktemp("model") / "model"
    est = MultiTaskEstimator(
        "shared_bottom", labels=LABELS, epochs=1, progress=False, diagnostic_batches=0
    )
    return est.fit(frame).save(folder)


@pytest.fixture
def model_copy(saved_model, tmp_path) -> Path:
    return Path(shutil.copytree(saved_model, tmp_path / "model"))


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-cell-per-model comparison on synthetic data (binary tasks)."""
    out = tmp_path_factory.mktemp("grid") / "run"
    args = ["compare", "synthetic", "--rows", "300", "--epochs", "1", "--seeds", "0"]
    assert main([*args, "--models", "shared_bottom", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "run"))
