"""Correction for multiple comparisons and the power of the paired t-test, checked against
statsmodels (an implementation independent of mtlkit's scipy-based one)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from results_frames import seed_results
from scipy import integrate, optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from mtlkit.errors import ConfigError
from mtlkit.experiments.stats import (
    adjust_p,
    correction_note,
    detectable_effect,
    paired_t_power,
    recommendations,
    seeds_to_detect,
    summarize_grid,
)
from mtlkit.reporting.report import display_table

NAN = math.nan
P_SETS = {
    "distinct": [0.01, 0.04, 0.03, 0.005, 0.2],
    "ties": [0.02, 0.02, 0.02, 0.5, 0.001, 0.02],
    "with failed cells": [0.01, NAN, 0.04, NAN, 0.0009],
    "family of one": [0.03],
    "one test among failed cells": [NAN, 0.03, NAN],
    "over one": [0.3, 0.6, 0.9, 0.45],
    "sixty": list(np.random.default_rng(0).uniform(0, 0.2, 60) ** 2),
}
STATSMODELS = {"holm": "holm", "bh": "fdr_bh"}


@pytest.mark.parametrize("correction", ["holm", "bh"])
@pytest.mark.parametrize("name", list(P_SETS))
def test_adjusted_p_values_match_statsmodels(correction, name):
    p = np.array(P_SETS[name])
    adjusted = adjust_p(p, correction)
    tested = np.isfinite(p)
    assert np.isnan(adjusted[~tested]).all()  # a failed cell is no test, and not in the family
    reference = multipletests(p[tested], method=STATSMODELS[correction])[1]
    np.testing.assert_allclose(adjusted[tested], reference, rtol=1e-12)


def test_holm_by_hand_and_a_family_of_one_is_not_adjusted():
    # sorted 0.01, 0.03, 0.04: x3 = 0.03, x2 = 0.06, x1 = 0.04 -> made non-decreasing: 0.06
    np.testing.assert_allclose(adjust_p([0.01, 0.04, 0.03], "holm"), [0.03, 0.06, 0.06])
    for correction in ("holm", "bh", "none"):
        assert adjust_p([0.03], correction) == pytest.approx([0.03])
    assert np.isnan(adjust_p([NAN, NAN], "holm")).all()
    np.testing.assert_array_equal(adjust_p([0.01, NAN, 0.04], "none"), [0.01, NAN, 0.04])
    with pytest.raises(ConfigError, match="correction must be one of holm, bh, none"):
        adjust_p([0.01], "bonferoni")


def _power_by_integration(effect: float, n: int, alpha: float) -> float:
    """P(|T| > c) for T = (Z + effect * sqrt(n)) / sqrt(V / (n - 1)), Z standard normal, V
    chi-square: the normal tail probabilities averaged over V's quantiles (no noncentral t)."""
    df, shift = n - 1, effect * math.sqrt(n)
    critical = stats.t.isf(alpha / 2, df)

    def tails(u: float) -> float:
        scale = math.sqrt(stats.chi2.ppf(u, df) / df)
        return stats.norm.cdf(shift - critical * scale) + stats.norm.cdf(-shift - critical * scale)

    return integrate.quad(tails, 0, 1, limit=200, epsabs=1e-12, epsrel=1e-10)[0]


@pytest.mark.parametrize("n", [3, 5, 10, 30])
def test_power_and_detectable_effect_match_statsmodels(n):
    power = TTestPower()  # one-sample t-test on the paired differences
    for effect in (0.2, 0.5, 1.0):
        expected = power.power(effect_size=effect, nobs=n, alpha=0.05)
        assert paired_t_power(effect, n, 0.05) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    expected = power.solve_power(nobs=n, alpha=0.05, power=0.8)
    assert detectable_effect(n, 0.05) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
@pytest.mark.parametrize("alpha", [0.05, 0.05 / 12, 0.001])
def test_power_matches_an_independent_integral_where_statsmodels_gives_up(n, alpha):
    # statsmodels' solve_power bounds the effect at 10 (n=3, alpha=0.05/12 needs 11.3) and its
    # power is NaN far in the tail: corrected levels with few seeds are exactly there.
    for effect in (0.2, 1.0, 3.0, 10.0):
        expected = _power_by_integration(effect, n, alpha)
        assert paired_t_power(effect, n, alpha) == pytest.approx(expected, abs=1e-6)
    d = detectable_effect(n, alpha)
    assert _power_by_integration(d, n, alpha) == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize("effect", [0.8, 2.0, 6.0])
def test_seeds_to_detect_is_the_fewest_with_80_percent_power(effect):
    alpha = 0.05 / 12
    n = seeds_to_detect(effect, alpha)
    assert _power_by_integration(effect, n, alpha) >= 0.8
    assert n == 2 or _power_by_integration(effect, n - 1, alpha) < 0.8
    assert seeds_to_detect(0.3, alpha) is None  # would need about 150 seeds
    assert seeds_to_detect(-effect, alpha) == n


def _results(per_task: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    return seed_results(per_task)


BASE = [0.80, 0.81, 0.79]
#: A grid of 6 tasks x 2 models: on "a", mmoe is better on every seed (raw p = 0.020 < 0.05);
#: every other comparison is noise around single-task.
GRID = {
    "a": {"single_task": BASE, "mmoe": [0.82, 0.835, 0.805], "shared_bottom": BASE},
    **{
        task: {
            "single_task": BASE,
            "mmoe": [0.80 + d, 0.81 - d, 0.79 + 2 * d],
            "shared_bottom": [0.80 - d, 0.81 + 2 * d, 0.79],
        }
        for task, d in zip("bcdef", (0.001, 0.002, 0.003, 0.004, 0.005))
    },
}


def _family(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["model"] != "single_task"]


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_the_grid_is_one_family_and_the_verdict_follows_the_adjusted_p(correction):
    results = _results(GRID)
    summary = summarize_grid(results, correction=correction)
    family = _family(summary)
    raw = family["p_value"].to_numpy()
    expected = multipletests(raw[np.isfinite(raw)], method=STATSMODELS[correction])[1]
    np.testing.assert_allclose(family["p_adjusted"].dropna(), expected, rtol=1e-12)
    assert (family["family_size"] == np.isfinite(raw).sum()).all()
    assert (family["correction"] == correction).all()
    assert summary.loc[summary["model"] == "single_task", "p_adjusted"].isna().all()

    best = summary.set_index(["task", "model"]).loc[("a", "mmoe")]
    assert best["p_value"] < 0.05 <= best["p_adjusted"] and not best["significant"]
    sentence = recommendations(summary)[0]
    assert "no MTL model beats single-task for a within the noise" in sentence
    prefix = {"holm": "Holm", "bh": "Benjamini-Hochberg"}[correction]
    assert f"{prefix}-adjusted p={best['p_adjusted']:.3f} (raw p={best['p_value']:.3f})" in (
        sentence
    )
    table = display_table(summary[summary["task"] == "a"]).set_index("model")
    assert table.loc["mmoe", "vs single-task"].startswith("n.s.")
    assert table.loc["mmoe", "adjusted p"] == f"{best['p_adjusted']:.3f}"


def test_without_correction_the_same_grid_names_the_chance_winner():
    summary = summarize_grid(_results(GRID), correction="none")
    np.testing.assert_array_equal(summary["p_adjusted"], summary["p_value"])
    assert recommendations(summary)[0].startswith("On this data, mmoe + joint is best for a")
    assert "uncorrected p=0.0" in recommendations(summary)[0]


def test_a_failed_comparison_is_not_counted_in_the_family():
    grid = {**GRID, "g": {"single_task": BASE, "mmoe": [NAN, NAN, NAN]}}
    summary = summarize_grid(_results(grid))
    assert summary["family_size"].iloc[0] == 12  # not 13: the failed cell has no p-value
    failed = summary.set_index(["task", "model"]).loc[("g", "mmoe")]
    assert np.isnan(failed["p_adjusted"]) and not failed["significant"]


@pytest.mark.parametrize("correction", ["holm", "none"])
def test_not_significant_says_what_the_seeds_could_have_detected(correction):
    summary = summarize_grid(_results(GRID), correction=correction)
    row = summary.set_index(["task", "model"]).loc[("b", "mmoe")]
    # The spread of the per-seed relative gains, by hand: (v - b) / b.
    gains = (np.array(GRID["b"]["mmoe"]) - BASE) / BASE
    alpha = 0.05 / 12 if correction == "holm" else 0.05
    d = optimize.brentq(lambda x: _power_by_integration(x, 3, alpha) - 0.8, 0.1, 50)
    assert row["detectable_gain"] == pytest.approx(d * gains.std(ddof=1), rel=1e-4)
    needed = seeds_to_detect(gains.mean() / gains.std(ddof=1), alpha)
    assert row["seeds_to_detect"] is pd.NA if needed is None else row["seeds_to_detect"] == needed

    cell = display_table(summary[summary["task"] == "b"]).set_index("model")
    assert cell.loc["mmoe", "vs single-task"] == (
        f"n.s. (cannot resolve < {row['detectable_gain']:.2%})"
    )
    sentence = recommendations(summary)[1]
    assert f"with 3 seeds, differences below {row['detectable_gain']:.2%} cannot be resolved" in (
        sentence
    )
    assert f"(80% power at p < {alpha:.2g})" in sentence


def test_a_tie_suggests_the_seeds_that_would_resolve_the_observed_gain():
    values = {"single_task": BASE, "mmoe": [0.815, 0.835, 0.80]}  # +2% but noisy: p = 0.063
    summary = summarize_grid(_results({"a": values, "b": values}))
    row = summary.set_index(["task", "model"]).loc[("a", "mmoe")]
    assert not row["significant"] and row["seeds_to_detect"] > 3
    n = int(row["seeds_to_detect"])
    sentence = recommendations(summary)[0]
    assert sentence.endswith(
        f"if {row['gain']:+.2%} is the real difference, {n} seeds resolve it: "
        f"--seeds {' '.join(map(str, range(n)))}."
    )
    tiny = {"single_task": BASE, "mmoe": [0.8001, 0.8099, 0.7902]}  # +0.01%: hopeless
    sentence = recommendations(summarize_grid(_results({"a": tiny})))[0]
    assert "would take more than 30 seeds" in sentence and "--seeds" not in sentence


def test_the_label_scarcity_sentence_follows_the_adjusted_p():
    frames = []
    for fraction, mtl in ((1.0, [0.80, 0.82, 0.78]), (0.1, [0.82, 0.835, 0.805])):  # raw p 0.02
        frame = _results({"income": {"single_task": BASE, "mmoe": mtl, "ple": BASE}})
        frame["label_fraction"] = fraction
        frames.append(frame)
    results = pd.concat(frames, ignore_index=True)
    uncorrected = recommendations(summarize_grid(results, correction="none"), scarce_task="income")
    assert uncorrected[0].startswith("Label scarcity: MTL pays for income at 10% of its training")
    holm = recommendations(summarize_grid(results), scarce_task="income")
    assert holm[0] == (
        "Label scarcity: no MTL model beats single-task for income at 100%, 10% of its "
        "training labels."
    )


def test_one_seed_prints_no_nan_and_says_why_there_is_no_p_value():
    summary = summarize_grid(seed_results({"a": {"single_task": [0.8], "mmoe": [0.82]}}))
    assert summary["family_size"].iloc[0] == 0
    note = correction_note(summary)
    assert "one seed" in note and "0 comparisons" not in note and "/ 0" not in note
    shown = display_table(summary).to_string()
    assert "nan" not in shown.lower()
    assert "+2.50% —" in shown  # the gain, with a dash for the interval it cannot have


def test_a_grid_of_baselines_only_says_there_is_nothing_to_compare():
    summary = summarize_grid(seed_results({"a": {"single_task": [0.8, 0.81, 0.79]}}))
    assert correction_note(summary) == (
        "No comparison against single-task has a p-value in this grid."
    )
