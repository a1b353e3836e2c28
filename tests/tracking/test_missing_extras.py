"""Without the backend's package, tracking fails before training with the pip extra to
install."""

from __future__ import annotations

import sys

import pytest

from mtlkit.cli.main import main
from mtlkit.errors import ConfigError
from mtlkit.tracking import make_tracker
from mtlkit.training.estimator import MultiTaskEstimator


@pytest.mark.parametrize(
    ("track", "hidden", "extra"),
    [
        ("mlflow", ("mlflow", "mlflow.tracking"), "mtlkit[mlflow]"),
        ("tensorboard", ("tensorboard", "torch.utils.tensorboard"), "mtlkit[tensorboard]"),
    ],
)
def test_a_missing_backend_names_its_extra(track, hidden, extra, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "unused").as_uri())
    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=extra.replace("[", r"\[").replace("]", r"\]")):
        make_tracker(track)
    est = MultiTaskEstimator(labels=["a"], track=track)
    with pytest.raises(ConfigError, match="pip install"):
        est.fit("no-such-file.csv")  # fails on tracking first: no data read, no training


def test_an_unknown_tracker_is_a_clear_error(capsys):
    assert main(["compare", "synthetic", "--models", "mmoe", "--track", "wandb"]) == 2
    assert "track" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="mlflow"):
        MultiTaskEstimator(track="mlfow").check_params()


def test_an_unknown_tracker_creates_no_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "grid"
    assert main(["compare", "synthetic", "--models", "mmoe", "--track", "wandb"]) == 2
    assert main(["compare", "synthetic", "--out", str(out), "--track", "wandb"]) == 2
    assert not (tmp_path / "runs").exists() and not out.exists()
