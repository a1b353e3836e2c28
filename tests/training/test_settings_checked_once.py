"""The model's hyperparameters and the strategy's settings are validated once per fit (the
estimator's check); the model registry, the trainer and the strategy trust that check."""

from collections import Counter

import pytest

from mtlkit.errors import ConfigError
from mtlkit.registry import Entry
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.trainer import Trainer

FAST = {"epochs": 1, "batch_size": 256, "progress": False, "diagnostic_batches": 0}


@pytest.fixture
def checks(monkeypatch) -> Counter:
    """Counts the validations of registry settings (``Entry.resolve``), by kind."""
    counted: Counter = Counter()
    original = Entry.resolve

    def counting(self, given, kind=""):
        counted[kind.split()[0]] += 1
        return original(self, given, kind)

    monkeypatch.setattr(Entry, "resolve", counting)
    return counted


def test_one_fit_checks_the_model_and_the_strategy_settings_once(checks, synthetic_splits):
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("mmoe", n_experts=3, strategy="uncertainty", **FAST)
    est.fit(train, validation=val)
    assert checks["model"] == 1 and checks["strategy"] == 1
    # `mtlkit train` checks before it reads the data, then fits: still one check.
    checks.clear()
    est = MultiTaskEstimator("mmoe", n_experts=3, strategy="dwa", **FAST)
    est.check_params()
    est.fit(train, validation=val)
    assert checks["model"] == 1 and checks["strategy"] == 1


def test_a_loaded_model_is_checked_once(checks, synthetic_splits, tmp_path):
    train, val, test = synthetic_splits
    MultiTaskEstimator("shared_bottom", **FAST).fit(train, validation=val).save(tmp_path / "m")
    checks.clear()
    MultiTaskEstimator.load(tmp_path / "m").predict_proba(test)
    assert checks["model"] == 1 and checks["strategy"] == 1


def test_a_setting_changed_after_the_check_is_checked_again(synthetic_splits):
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("mmoe", n_experts=2, **FAST)
    est.check_params()
    est.set_params(n_experts=0)
    with pytest.raises(ConfigError, match="n_experts"):
        est.fit(train, validation=val)
    est = MultiTaskEstimator("mmoe", strategy="joint", strategy_params={"weights": [1.0, 1.0]})
    est.check_params()
    est.strategy_params["weights"] = [-1.0, 1.0]  # changed in place
    with pytest.raises(ConfigError, match="'weights' must be >= 0"):
        est.check_params()


def test_the_trainer_still_checks_a_strategy_given_by_name(synthetic_splits):
    est = MultiTaskEstimator("shared_bottom", **FAST).fit(*synthetic_splits[:2])
    with pytest.raises(ConfigError, match="'uncertainty' has no setting"):
        Trainer(est.model_, strategy="uncertainty", strategy_params={"alpha": 2})
