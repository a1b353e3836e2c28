"""Post-hoc calibration: the methods, the known bias it corrects, funnels, save/load, errors."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.isotonic import IsotonicRegression

from mtlkit import MultiTaskEstimator
from mtlkit.data.schema import TaskSpec
from mtlkit.data.synthetic import make_funnel
from mtlkit.errors import ConfigError, DataError, ModelFileError
from mtlkit.experiments.config import CompareConfig
from mtlkit.training.calibration import Interpolation, fit_calibration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration_funnel.py"
BINARY = TaskSpec("y", "binary", 2)


def test_the_known_selection_bias_of_a_clicked_rows_cvr_model_is_corrected():
    """BASE (a CVR model fitted on clicked rows) overestimates pCVR on every impression
    (docs/calibration.md); Platt and isotonic calibration on validation impressions cut the
    test ECE by more than half, against the drawn labels and against the true pCVR."""
    measure = runpy.run_path(str(SCRIPT))["measure"]
    result = measure(0, methods=("none", "platt", "isotonic"))
    before = result["none"]
    assert before["mean_p"] > 1.4 * result["truth"]["mean_p"]  # the bias is there
    for method in ("platt", "isotonic"):
        after = result[method]
        assert after["ece"] < 0.5 * before["ece"], (method, after, before)
        assert after["ece_truth"] < 0.5 * before["ece_truth"]
        assert after["brier"] < before["brier"]
        assert abs(after["mean_p"] - result["truth"]["mean_p"]) < 0.02


def test_temperature_recovers_a_known_temperature_and_platt_a_known_shift():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 40_000)
    score = 1 / (1 + np.exp(-z))
    y = (rng.random(z.size) < 1 / (1 + np.exp(-z / 2.0))).astype(float)  # true T = 2
    mask = np.ones((z.size, 1), dtype=bool)
    cal = fit_calibration("temperature", [BINARY], False, y[:, None], mask, {"y": score})
    assert cal.to_dict()["tasks"]["y"]["t"] == pytest.approx(2.0, rel=0.05)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(float)
    cal = fit_calibration("platt", [BINARY], False, y[:, None], mask, {"y": score})
    params = cal.to_dict()["tasks"]["y"]
    assert params["a"] == pytest.approx(0.5, abs=0.03) and params["b"] == pytest.approx(
        -1, abs=0.05
    )
    out = cal({"y": torch.tensor(score)})["y"]  # float64: no float32 round-off near 0, 1
    want = 1 / (1 + np.exp(-(params["a"] * z + params["b"])))
    inside = np.abs(z) < 13  # beyond, the probabilities are clipped to [1e-6, 1 - 1e-6]
    np.testing.assert_allclose(out.numpy()[inside], want[inside], atol=1e-9)


def test_isotonic_map_in_torch_equals_scikit_learns_prediction():
    rng = np.random.default_rng(2)
    p = rng.random(3000)
    y = (rng.random(p.size) < p**2).astype(float)
    fitted = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    cal = fit_calibration(
        "isotonic", [BINARY], False, y[:, None], np.ones((3000, 1), bool), {"y": p}
    )
    new = np.concatenate([rng.random(2000), [-0.5, 0.0, 1.0, 1.5]])
    got = cal({"y": torch.tensor(new, dtype=torch.float64)})["y"].numpy()
    np.testing.assert_allclose(got, fitted.predict(new), atol=1e-12)
    # One piece: the interpolation of two points is the straight line between them.
    line = Interpolation([0.2, 0.6], [0.1, 0.5])
    np.testing.assert_allclose(
        line(torch.tensor([0.0, 0.4, 0.9], dtype=torch.float64)), [0.1, 0.3, 0.5]
    )


def test_multiclass_calibrations_return_probabilities():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (2000, 3))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array(
        [
            rng.choice(3, p=row)
            for row in np.exp(logits / 3) / np.exp(logits / 3).sum(1, keepdims=True)
        ]
    )
    spec = TaskSpec("m", "multiclass", 3)
    mask = np.ones((2000, 1), dtype=bool)
    for method in ("temperature", "platt", "isotonic"):
        cal = fit_calibration(method, [spec], False, y[:, None].astype(float), mask, {"m": p})
        out = cal({"m": torch.tensor(p, dtype=torch.float32)})["m"].numpy()
        assert out.shape == (2000, 3) and np.all(out >= 0)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    assert cal.to_dict()["method"] == "isotonic"
    temperature = fit_calibration("temperature", [spec], False, y[:, None] * 1.0, mask, {"m": p})
    assert temperature.to_dict()["tasks"]["m"]["t"] == pytest.approx(3.0, rel=0.1)


@pytest.fixture(scope="module")
def funnel():
    frame = make_funnel(3000, n_features=5, seed=0)
    return frame.iloc[:2400], frame.iloc[2400:]


@pytest.mark.parametrize("model", ["esmm", "aitm"])
def test_funnel_calibration_keeps_pctcvr_below_pctr(funnel, model):
    train, test = funnel
    raw = MultiTaskEstimator(model, labels=["click", "conversion"], epochs=2, progress=False)
    raw.fit(train)
    est = MultiTaskEstimator(
        model, labels=["click", "conversion"], epochs=2, progress=False, calibration="isotonic"
    ).fit(train)
    features = test.drop(columns=["click", "conversion"])
    p, q = est.predict_proba(features), raw.predict_proba(features)
    assert np.all(p["conversion"] <= p["click"])
    # pCTCVR is recomposed from the calibrated steps: pCTR x calibrated pCVR.
    np.testing.assert_allclose(p["conversion"], p["click"] * p["conversion_given_click"], rtol=1e-6)
    # The steps are the raw model's steps through their own calibrators.
    cal = est.trainer_.calibration
    step = np.clip(q["conversion"] / np.maximum(q["click"], 1e-12), 0, 1)
    want = cal.calibrators["conversion"](torch.tensor(step, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(p["conversion_given_click"], want, atol=1e-6)
    assert not np.allclose(p["click"], q["click"])  # calibration changed the scores


def test_save_load_reproduces_calibrated_predictions_exactly(funnel, tmp_path):
    train, test = funnel
    features = test.drop(columns=["click", "conversion"])
    for method in ("platt", "isotonic"):
        est = MultiTaskEstimator(
            "mmoe", labels=["click", "conversion"], epochs=2, progress=False, calibration=method
        ).fit(train)
        folder = est.save(tmp_path / method)
        loaded = MultiTaskEstimator.load(folder)
        want, got = est.predict_proba(features), loaded.predict_proba(features)
        for task in want:
            np.testing.assert_array_equal(got[task], want[task])
        assert loaded.evaluate(test) == est.evaluate(test)
        meta = json.loads((folder / "estimator.json").read_text())
        assert "calibration.json" in meta["files"]  # checksummed like the weights
    state = json.loads((folder / "calibration.json").read_text())
    state["tasks"]["click"]["y"][0][0] += 0.25
    (folder / "calibration.json").write_text(json.dumps(state))
    with pytest.raises(ModelFileError, match="calibration.json (was changed|is truncated)"):
        MultiTaskEstimator.load(folder)


def test_unknown_calibration_names_a_close_one():
    est = MultiTaskEstimator("mmoe", calibration="isotonc")
    with pytest.raises(ConfigError, match=r"calibration.*Did you mean 'isotonic'\?"):
        est.check_params()
    with pytest.raises(ConfigError, match="Did you mean 'platt'"):
        CompareConfig.from_mapping(
            {"data": "x.csv", "labels": ["a"], "models": ["mmoe"], "calibration": "plat"}
        )
    config = CompareConfig.from_mapping(
        {"data": "x.csv", "labels": ["a"], "models": ["mmoe"], "calibration": "temperature"},
        validate=False,
    )
    assert config.train.calibration == "temperature"


def test_a_validation_split_without_both_classes_is_a_clear_error():
    y = np.zeros((50, 1))
    with pytest.raises(DataError, match="needs validation rows of both classes for task 'y'"):
        fit_calibration(
            "platt", [BINARY], False, y, np.ones((50, 1), bool), {"y": np.full(50, 0.3)}
        )
