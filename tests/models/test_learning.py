"""Every model of the zoo learns: two correlated tasks, or a click -> conversion funnel."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mtlkit.data.loading import load_tables
from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.data.splits import split_table
from mtlkit.data.synthetic import make_funnel
from mtlkit.errors import DataError
from mtlkit.models import MODELS, available, create
from mtlkit.training.estimator import MultiTaskEstimator

FAST = {"epochs": 12, "batch_size": 256, "lr": 3e-3, "patience": 3, "progress": False}
GENERAL = [name for name in available() if MODELS.entry(name).target.task_roles is None]
SEQUENTIAL = [name for name in available() if MODELS.entry(name).target.task_roles is not None]


@pytest.fixture(scope="module")
def funnel_splits():
    frame = make_funnel(4000, n_features=10, seed=0)
    return split_table(load_tables(frame, labels=["click", "conversion"]), seed=0)


@pytest.mark.parametrize("model", GENERAL)
def test_general_models_learn_two_correlated_tasks(synthetic_splits, model):
    train, val, test = synthetic_splits
    metrics = MultiTaskEstimator(model, seed=0, **FAST).fit(train, val).evaluate(test)
    for task in ("label0", "label1"):
        assert metrics[task]["roc_auc"] > 0.85, (model, task, metrics[task])


@pytest.mark.parametrize("model", SEQUENTIAL)
def test_funnel_models_learn_click_and_conversion(funnel_splits, model):
    train, val, test = funnel_splits
    metrics = MultiTaskEstimator(model, seed=0, **FAST).fit(train, val).evaluate(test)
    for task in ("click", "conversion"):
        assert metrics[task]["roc_auc"] > 0.85, (model, task, metrics[task])


def test_esmm_learns_cvr_without_ever_seeing_a_cvr_label(funnel_splits):
    train, val, test = funnel_splits
    est = MultiTaskEstimator("esmm", seed=0, **FAST).fit(train, val)
    scores = est.predict_proba(test)
    cvr = scores["conversion_given_click"]  # pCVR, a first-class output
    data = est.preprocessor_.transform(test)
    np.testing.assert_allclose(cvr, est.model_.predict_cvr(data.x_cat, data.x_num).numpy())
    np.testing.assert_allclose(scores["conversion"], scores["click"] * cvr, rtol=1e-6)
    clicked = test.labels["click"] == 1
    # Conversion among clicks, ranked by pCVR that was trained only through pCTR x pCVR.
    assert roc_auc_score(test.labels["conversion"][clicked], cvr[clicked]) > 0.85
    assert set(est.predict(test)) == {"click", "conversion"}  # labels: the tasks only


def test_aitm_gives_each_steps_probability_given_the_step_before(funnel_splits):
    train, val, test = funnel_splits
    scores = MultiTaskEstimator("aitm", seed=0, **FAST).fit(train, val).predict_proba(test)
    given = scores["conversion_given_click"]
    assert ((given >= 0) & (given <= 1)).all()
    expected = np.clip(scores["conversion"] / np.maximum(scores["click"], 1e-12), 0, 1)
    np.testing.assert_allclose(given, expected, rtol=1e-5)


@pytest.mark.parametrize("model", SEQUENTIAL)
def test_funnel_tasks_in_the_wrong_order_are_refused(model):
    swapped = load_tables(make_funnel(500, n_features=10, seed=1), labels=["conversion", "click"])
    with pytest.raises(DataError, match="positive for 'click' but not for 'conversion'"):
        MultiTaskEstimator(model, **FAST).fit(swapped)


def test_label_check_ignores_rows_missing_either_label():
    tasks = (TaskSpec("click", "binary"), TaskSpec("conversion", "binary"))
    model = create("esmm", Schema((), 2, tasks))
    y = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    model.check_labels(y, torch.tensor([[False, True], [True, True]]))
    with pytest.raises(DataError, match="1 training row"):
        model.check_labels(y, torch.ones(2, 2).bool())
