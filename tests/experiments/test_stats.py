"""Confidence intervals, paired gains and recommendations on hand-made numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from results_frames import seed_results

from mtlkit.evaluation.intervals import mean_ci
from mtlkit.evaluation.run_record import EpochRecord, History, RunRecord
from mtlkit.experiments.cells import results_frame
from mtlkit.experiments.stats import paired_gain, recommendations, summarize_grid


def test_t_confidence_interval_by_hand():
    mean, std, low, high = mean_ci([1, 2, 3, 4, 5])
    # mean 3, s = sqrt(2.5), t(0.975, df=4) = 2.776445; half width = t * s / sqrt(5)
    assert mean == 3 and std == pytest.approx(math.sqrt(2.5))
    assert low == pytest.approx(3 - 2.776445 * math.sqrt(2.5) / math.sqrt(5), abs=1e-6)
    assert high == pytest.approx(4.963243, abs=1e-6)
    assert np.isnan(mean_ci([0.7])[2]) and mean_ci([0.7, np.nan])[0] == 0.7


def test_paired_gain_and_t_test_by_hand():
    base = pd.Series([0.8, 0.8, 0.8], index=[0, 1, 2])
    model = pd.Series([0.92, 0.84, 0.88], index=[2, 0, 1])  # paired by seed, not by position
    gain, low, high, p, spread, n = paired_gain(model, base)
    assert gain == pytest.approx(0.10)  # relative gains 0.05, 0.10, 0.15
    assert spread == pytest.approx(0.05) and n == 3
    assert (low, high) == pytest.approx((0.10 - 4.302653 * 0.05 / math.sqrt(3), 0.22422), abs=1e-4)
    # differences 0.04, 0.08, 0.12: t = 0.08 / (0.04 / sqrt 3) = 3.4641, df 2 -> p = 0.0742
    assert p == pytest.approx(0.07418, abs=1e-4)
    # lower-is-better metric: a smaller value is a positive gain
    assert paired_gain(pd.Series([0.4, 0.4]), pd.Series([0.5, 0.5]), False)[0] == pytest.approx(0.2)


def _results(values: dict[str, list[float]], task: str = "income") -> pd.DataFrame:
    return seed_results({task: values})


def test_summary_ranks_marks_significance_and_recommends():
    results = pd.concat(
        [
            _results(
                {
                    "single_task": [0.80, 0.81, 0.79, 0.80],
                    "mmoe": [0.85, 0.86, 0.84, 0.86],  # clearly better
                    "shared_bottom": [0.79, 0.83, 0.78, 0.81],  # within the noise
                }
            ),
            _results({"single_task": [0.70, 0.71, 0.70], "mmoe": [0.70, 0.72, 0.69]}, "marital"),
        ]
    )
    s = summarize_grid(results).set_index(["task", "model"])
    assert s.loc[("income", "mmoe"), "rank"] == 1 and s.loc[("income", "single_task"), "rank"] == 3
    assert s.loc[("income", "mmoe"), "significant"]
    assert not s.loc[("income", "shared_bottom"), "significant"]
    assert s.loc[("income", "mmoe"), "ci_low"] == pytest.approx(
        mean_ci([0.85, 0.86, 0.84, 0.86])[2]
    )
    sentences = recommendations(summarize_grid(results))
    assert sentences[0].startswith("On this data, mmoe + joint is best for income")
    assert "no MTL model beats single-task for marital within the noise" in sentences[1]


def test_a_significantly_worse_mtl_model_is_called_worse():
    results = _results({"single_task": [0.80, 0.81, 0.82], "mmoe": [0.70, 0.715, 0.72]})
    (sentence,) = recommendations(summarize_grid(results))
    assert "single-task is best for income" in sentence


def test_a_constant_difference_is_significant_and_no_difference_is_not():
    assert paired_gain(pd.Series([0.9, 0.8]), pd.Series([0.8, 0.7]))[3] == 0.0
    assert paired_gain(pd.Series([0.9, 0.8]), pd.Series([0.9, 0.8]))[3] == 1.0


def _history(val_loss: np.ndarray) -> History:
    h = History()
    h.epochs = [
        EpochRecord(e + 1, 0.1, 1e-3, 4, {}, {"a": {"loss": float(v)}})
        for e, v in enumerate(val_loss)
    ]
    return h


def test_fluctuation_measures_epoch_to_epoch_noise_not_the_learning_curve():
    t = np.arange(200)
    smooth = 0.5 + 0.4 * np.exp(-t / 10)
    noise = np.random.default_rng(0).normal(0, 0.01, 200)
    assert _history(smooth).fluctuation("a", "loss") < 0.001
    # Independent noise of standard deviation 0.01 around the curve is measured as such.
    assert 0.008 < _history(smooth + noise).fluctuation("a", "loss") < 0.012
    assert math.isnan(_history(smooth[:2]).fluctuation("a", "loss"))


def test_summary_reports_the_validation_fluctuation_of_each_model():
    t = np.arange(30)
    rng = np.random.default_rng(1)
    records = []
    for model, jitter in (("single_task", 0.0), ("mmoe", 0.02)):
        for seed in range(3):
            curve = 0.5 + 0.3 * np.exp(-t / 5) + rng.normal(0, jitter, 30) if jitter else None
            history = _history(curve if jitter else 0.5 + 0.3 * np.exp(-t / 5))
            records.append(
                RunRecord(
                    f"{model}{seed}", model, model, "joint", seed, {"a": "binary"}, 1.0, 10,
                    history, {"test": {"a": {"loss": 0.5 + 0.01 * seed}}},
                )
            )  # fmt: skip
    results = results_frame(records)
    assert {"val_fluctuation", "value"} <= set(results.columns)
    s = summarize_grid(results, "loss", higher_is_better=False).set_index("model")
    assert s.loc["single_task", "val_fluctuation"] < 0.001
    assert 0.01 < s.loc["mmoe", "val_fluctuation"] < 0.03


def test_unconverged_runs_are_not_ranked_and_no_winner_is_named_from_them():
    results = _results({"single_task": [0.80, 0.81, 0.79], "mmoe": [0.85, 0.86, 0.84]})
    results["converged"] = True
    results.loc[(results["model"] == "mmoe") & (results["seed"] == 1), "converged"] = False
    summary = summarize_grid(results).set_index("model")
    assert summary.loc["mmoe", "n_converged"] == 2 and pd.isna(summary.loc["mmoe", "rank"])
    assert summary.loc["single_task", "rank"] == 1
    (sentence,) = recommendations(summarize_grid(results))
    assert sentence.startswith("On this data, no verdict for income yet: runs of mmoe + joint")
    assert "(1 of 3 seeds)" in sentence and "is best" not in sentence
    results["converged"] = True  # the same numbers, every run converged: a verdict
    (sentence,) = recommendations(summarize_grid(results))
    assert sentence.startswith("On this data, mmoe + joint is best for income")


def _scarcity_results() -> pd.DataFrame:
    frames = []
    for fraction, base, mtl in (
        (1.0, [0.80, 0.81, 0.79], [0.80, 0.82, 0.78]),  # no difference
        (0.1, [0.70, 0.71, 0.72], [0.77, 0.781, 0.792]),  # +10% on every seed
        (0.02, [0.60, 0.61, 0.62], [0.72, 0.732, 0.744]),  # +20% on every seed
    ):
        frame = _results({"single_task": base, "shared_bottom": mtl})
        frame["label_fraction"] = fraction
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_label_scarcity_recommendations_speak_per_fraction():
    sentences = recommendations(summarize_grid(_scarcity_results()), scarce_task="income")
    assert sentences[0] == (
        "Label scarcity: MTL pays for income at 10% of its training labels and below "
        "(shared_bottom + joint +10.00% at 10% with Holm-adjusted p<0.001, "
        "shared_bottom + joint +20.00% at 2% with Holm-adjusted p<0.001); "
        "at 100% no MTL model beats single-task."
    )
    assert sentences[1].startswith(
        "With 100% of income's training labels, no MTL model beats single-task for income"
    )
    assert sentences[3].startswith(
        "With 2% of income's training labels, shared_bottom + joint is best for income "
        "(roc_auc 0.7320 vs 0.6100 single-task, +20.00%"
    )


def test_label_scarcity_names_the_fractions_without_a_verdict():
    results = _scarcity_results()
    results["converged"] = True
    results.loc[(results["label_fraction"] == 0.02) & (results["seed"] == 0), "converged"] = False
    (first, *_) = recommendations(summarize_grid(results), scarce_task="income")
    assert first == (
        "Label scarcity: MTL pays for income at 10% of its training labels "
        "(shared_bottom + joint +10.00% at 10% with Holm-adjusted p<0.001); at 100% no MTL "
        "model beats single-task; "
        "no verdict yet at 2% (runs not converged)."
    )
