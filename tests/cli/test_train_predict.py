"""`mtlkit train` on partially labelled files, then `mtlkit predict` on unlabelled rows."""

import json

import numpy as np
import pandas as pd
import pytest

from mtlkit.cli.main import main
from mtlkit.data.synthetic import make_synthetic, write_partial_label_files
from mtlkit.training.estimator import MultiTaskEstimator


@pytest.fixture
def files(tmp_path):
    frame = make_synthetic(1200, n_features=6, correlation=0.9, noise=0.2, seed=0)
    write_partial_label_files(frame, tmp_path / "data", ["label0", "label1"])
    new = frame.drop(columns=["label0", "label1"]).head(50)
    new.to_csv(tmp_path / "new.csv", index=False)
    return tmp_path


def test_train_saves_a_model_that_predict_uses_on_new_rows(files, capsys):
    model_dir, out = files / "model", files / "preds.csv"
    args = ["train", str(files / "data"), "--labels", "label0", "label1"]
    args += [
        "--model",
        "mmoe:n_experts=4",
        "--strategy",
        "alternating",
        "--epochs",
        "30",
        "--lr",
        "0.01",
    ]
    assert main([*args, "--out", str(model_dir), "--quiet"]) == 0
    printed = capsys.readouterr().out
    history = json.loads((model_dir / "history.json").read_text())  # says if it converged
    expected = "converged (early stopping ended it)" if history["converged"] else "NOT converged"
    assert f"{len(history['epochs'])} epochs of batch 32" in printed and expected in printed
    metrics = json.loads((model_dir / "test_metrics.json").read_text())
    assert metrics["label0"]["roc_auc"] > 0.8 and metrics["label1"]["roc_auc"] > 0.8
    assert main(["predict", str(model_dir), str(files / "new.csv"), "--out", str(out)]) == 0
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["source", "label0", "label1"] and len(preds) == 50
    expected = MultiTaskEstimator.load(model_dir).predict_proba(files / "new.csv")
    np.testing.assert_allclose(preds["label0"], expected["label0"], rtol=1e-5)
    assert "50 rows scored" in capsys.readouterr().out


def test_train_and_predict_refuse_mistakes_clearly(files, capsys):
    bad_model = ["train", str(files / "data"), "--labels", "label0", "--model", "mmoe:n_expert=4"]
    assert main([*bad_model, "--out", str(files / "m"), "--quiet"]) == 2
    assert "n_expert" in capsys.readouterr().err and not (files / "m").exists()
    missing = ["predict", str(files / "no-model"), str(files / "new.csv")]
    assert main([*missing, "--out", str(files / "p.csv")]) == 2
    assert "holds no saved mtlkit model" in capsys.readouterr().err
    assert not (files / "p.csv").exists()


def test_predict_writes_esmms_pcvr_as_a_column(tmp_path):
    from mtlkit.data.synthetic import make_funnel

    frame = make_funnel(1500, n_features=6, seed=0)
    frame.to_csv(tmp_path / "funnel.csv", index=False)
    frame.drop(columns=["click", "conversion"]).head(20).to_csv(tmp_path / "new.csv", index=False)
    args = ["train", str(tmp_path / "funnel.csv"), "--labels", "click", "conversion"]
    args += ["--model", "esmm", "--epochs", "3", "--out", str(tmp_path / "m"), "--quiet"]
    assert main(args) == 0
    out = tmp_path / "p.csv"
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "new.csv"), "--out", str(out)]) == 0
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["source", "click", "conversion", "conversion_given_click"]
    np.testing.assert_allclose(
        preds["conversion"], preds["click"] * preds["conversion_given_click"], rtol=1e-5
    )
