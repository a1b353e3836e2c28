"""Expected calibration error and Brier score in the one list of metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from mtlkit.data.schema import TaskSpec
from mtlkit.evaluation.metrics import (
    METRICS,
    expected_calibration_error,
    metrics_for,
    reliability_bins,
    task_metrics,
)


def test_ece_and_brier_are_in_the_metric_list_of_classification_tasks():
    for kind in ("binary", "multiclass"):
        assert {"ece", "brier"} <= set(metrics_for(kind))
    assert "ece" not in metrics_for("regression")
    assert not METRICS["ece"].higher_is_better and not METRICS["brier"].higher_is_better


def test_perfectly_calibrated_scores_have_an_ece_near_zero():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.005
    # Against the true probability itself the error is exactly 0.
    assert expected_calibration_error(p, p) == 0.0


def test_ece_of_a_known_miscalibration_matches_a_hand_computation():
    # Ten rows, 2 equal-mass bins of 5: predictions 0.1 (1 positive of 5) and 0.9 (2 of 5).
    p = np.array([0.1] * 5 + [0.9] * 5)
    y = np.array([1, 0, 0, 0, 0, 1, 1, 0, 0, 0])
    # bin 1: |0.2 - 0.1| = 0.1; bin 2: |0.4 - 0.9| = 0.5; each weighs 1/2.
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.3)
    # A constant overestimate by 0.1 of well-spread true probabilities: ECE 0.1.
    truth = np.linspace(0.05, 0.85, 1000)
    assert expected_calibration_error(truth, truth + 0.1) == pytest.approx(0.1)


def test_bins_are_scikit_learns_quantile_bins():
    rng = np.random.default_rng(1)
    p = rng.beta(2, 5, 5000)
    y = (rng.random(p.size) < p**1.5).astype(int)
    mean_prob, mean_true, counts = reliability_bins(y, p, 10)
    want_true, want_prob = calibration_curve(y, p, n_bins=10, strategy="quantile")
    np.testing.assert_allclose(mean_true, want_true)
    np.testing.assert_allclose(mean_prob, want_prob)
    assert counts.sum() == 5000 and np.all(np.abs(counts - 500) <= 1)  # equal mass


def test_binary_and_multiclass_task_metrics_carry_ece_and_brier():
    binary = TaskSpec("b", "binary", 2)
    y = np.array([0, 1, 1, 0])
    p = np.array([0.2, 0.7, 0.9, 0.4])
    m = task_metrics(binary, y, p)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["ece"] == pytest.approx(expected_calibration_error(y, p))

    multi = TaskSpec("m", "multiclass", 3)
    y = np.array([0, 1, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    m = task_metrics(multi, y, p)
    # Brier: squared error summed over the one-hot classes, averaged over rows.
    assert m["brier"] == pytest.approx(np.mean(np.sum((np.eye(3)[y] - p) ** 2, axis=1)))
    # Top-label ECE: confidence = the top class's probability, outcome = top class right.
    right = np.array([1.0, 1.0, 1.0, 0.0])
    assert m["ece"] == pytest.approx(expected_calibration_error(right, p.max(axis=1)))
