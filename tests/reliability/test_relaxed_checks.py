"""The options that relax the data checks reach the data layer from every surface: the
estimator, ``mtlkit train``/``predict``, and ``mtlkit compare`` flags and config keys."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from reliability_helpers import LABELS, run_cli

from mtlkit.errors import DataError, DataWarning
from mtlkit.training.estimator import MultiTaskEstimator


@pytest.fixture
def marked(tmp_path, frame):
    """The data with -1 (a missing-label marker) in label0 and a stray text cell in x0."""
    frame = frame.astype({"label0": object, "x0": object})
    frame.loc[[3, 30, 60], "label0"] = -1
    frame.loc[20, "x0"] = "oops"
    path = tmp_path / "marked.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_estimator_takes_the_reading_settings(marked):
    est = MultiTaskEstimator("shared_bottom", labels=LABELS, epochs=1, progress=False)
    with pytest.raises(DataError, match="'x0' of 'marked.csv'"):
        est.fit(marked)
    est.set_params(bad_values="missing")
    with pytest.raises(DataError, match=r"missing_labels=\[-1\]"), pytest.warns(DataWarning):
        est.fit(marked)
    est.set_params(missing_labels=[-1])
    with pytest.warns(DataWarning, match="'x0'.*1 cell read as missing"):
        est.fit(marked)
    assert est.schema_.tasks[0].kind == "binary"  # -1 masked, not a third class


def test_train_and_predict_take_the_reading_settings(marked, tmp_path, capsys):
    model = tmp_path / "m"
    args = ["train", marked, "--labels", *LABELS, "--epochs", "1", "--out", model, "--quiet"]
    code, printed = run_cli([*args, "--missing-labels", "-1", "--bad-values", "missing"], capsys)
    assert code == 0, printed
    assert "mtlkit train: warning: Column 'x0' of 'marked.csv' holds numbers" in printed
    params = json.loads((model / "estimator.json").read_text())["params"]
    assert params["missing_labels"] == [-1] and params["bad_values"] == "missing"
    latin = tmp_path / "new.csv"
    latin.write_bytes("x0,x1,x2,note\n0.1,0.2,0.3,café\n".encode("latin-1"))
    out = tmp_path / "p.csv"
    code, printed = run_cli(["predict", model, latin, "--out", out], capsys)
    assert code == 2 and "not valid UTF-8" in printed
    code, printed = run_cli(
        ["predict", model, latin, "--out", out, "--encoding", "latin-1"], capsys
    )
    assert code == 0, printed
    assert np.isfinite(pd.read_csv(out)["label0"]).all()


def test_compare_takes_the_reading_settings_as_flags_and_config_keys(marked, tmp_path, capsys):
    base = ["compare", marked, "--labels", *LABELS, "--models", "shared_bottom", "--seeds", "0"]
    base += ["--epochs", "1", "--quiet"]
    code, printed = run_cli([*base, "--out", tmp_path / "a"], capsys)
    assert code == 2 and "'x0' of 'marked.csv'" in printed
    flags = ["--missing-labels", "-1", "--bad-values", "missing"]
    code, printed = run_cli([*base, *flags, "--out", tmp_path / "a"], capsys)
    assert code == 0, printed
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["missing_labels"] == [-1] and saved["bad_values"] == "missing"
    config = tmp_path / "grid.toml"
    config.write_text(
        f'data = ["{marked}"]\nlabels = ["label0", "label1"]\nmodels = ["shared_bottom"]\n'
        'seeds = [0]\nepochs = 1\nmissing_labels = [-1]\nbad_values = "missing"\n'
    )
    code, printed = run_cli(["compare", "--config", config, "--out", tmp_path / "b"], capsys)
    assert code == 0, printed
    cells = [json.loads(p.read_text()) for p in (tmp_path / "b" / "cells").glob("*.json")]
    assert {c["task_kinds"]["label0"] for c in cells} == {"binary"}
