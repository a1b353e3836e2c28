import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mtlkit.data.synthetic import make_funnel
from mtlkit.errors import DataError


def test_conversion_implies_click_and_rates_are_as_asked():
    frame = make_funnel(20_000, click_rate=0.4, conversion_rate=0.25, seed=1)
    assert set(frame["click"].unique()) == {0, 1} and set(frame["conversion"].unique()) == {0, 1}
    assert not ((frame["conversion"] == 1) & (frame["click"] == 0)).any()
    assert frame["click"].mean() == pytest.approx(0.4, abs=0.01)
    clicked = frame[frame["click"] == 1]
    assert clicked["conversion"].mean() == pytest.approx(0.25, abs=0.01)


def test_same_seed_same_funnel():
    assert make_funnel(300, seed=2).equals(make_funnel(300, seed=2))
    assert not make_funnel(300, seed=2).equals(make_funnel(300, seed=3))


def test_both_steps_are_learnable_from_the_features():
    frame = make_funnel(4000, seed=0)
    x = frame.filter(like="x").to_numpy()
    for label in ("click", "conversion"):
        y = frame[label].to_numpy()
        scores = (
            LogisticRegression(max_iter=500).fit(x[:3000], y[:3000]).decision_function(x[3000:])
        )
        assert roc_auc_score(y[3000:], scores) > 0.85, label


def test_correlation_sets_how_alike_click_and_conversion_scores_are():
    def conv_auc_of_click_direction(corr: float) -> float:
        frame = make_funnel(20_000, correlation=corr, noise=0.0, seed=0)
        clicked = frame[frame["click"] == 1]
        x = clicked.filter(like="x").to_numpy()
        # How well the click direction alone ranks conversions among clicks.
        w = np.linalg.lstsq(frame.filter(like="x").to_numpy(), frame["click"] - 0.3, rcond=None)[0]
        return roc_auc_score(clicked["conversion"], x @ w)

    assert conv_auc_of_click_direction(0.9) > conv_auc_of_click_direction(0.0) + 0.1


def test_true_probabilities_leave_the_funnel_unchanged():
    plain = make_funnel(500, seed=4)
    with_p = make_funnel(500, seed=4, probabilities=True)
    assert with_p[plain.columns].equals(plain)
    assert list(with_p.columns[-2:]) == ["p_click", "p_cvr"]


@pytest.mark.parametrize("noise", [0.3, 1.0])
def test_true_probabilities_match_the_drawn_labels(noise):
    frame = make_funnel(
        200_000, click_rate=0.1, conversion_rate=0.2, noise=noise, seed=5, probabilities=True
    )
    assert frame["p_click"].mean() == pytest.approx(0.1, abs=0.005)
    clicked = frame[frame["click"] == 1]
    # Among clicked rows, conversions follow p_cvr: equal means within each decile of p_cvr.
    bins = pd.qcut(clicked["p_cvr"], 10, duplicates="drop")
    rates = clicked.groupby(bins, observed=True)[["conversion", "p_cvr"]].mean()
    assert np.abs(rates["conversion"] - rates["p_cvr"]).max() < 0.03
    # p_cvr is defined for every impression and ranks conversions as well as the truth can.
    assert frame["p_cvr"].between(0, 1).all() and frame["p_cvr"].std() > 0.1
    assert roc_auc_score(frame["click"], frame["p_click"]) > 0.8


def test_without_noise_the_probabilities_are_the_labels():
    frame = make_funnel(2000, noise=0.0, seed=6, probabilities=True)
    assert frame["p_click"].equals(frame["click"].astype(float))
    clicked = frame["click"] == 1
    assert frame.loc[clicked, "p_cvr"].equals(frame.loc[clicked, "conversion"].astype(float))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"click_rate": 0.0}, "click_rate"),
        ({"conversion_rate": 1.2}, "conversion_rate"),
        ({"correlation": 2.0}, "correlation"),
        ({"n_features": 1}, "n_features"),
        ({"noise": -0.1}, "noise"),
    ],
)
def test_bad_settings_are_refused(kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        make_funnel(100, **kwargs)
