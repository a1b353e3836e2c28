"""Convergence is recorded, never assumed; an unconverged fit continues from its saved state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import EpochRecord, History, is_converged
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.settings import auto_batch_size
from mtlkit.training.state import load_torch, save_torch

QUIET = {"progress": False, "diagnostic_batches": 0}


@pytest.fixture(scope="module")
def small(synthetic_splits):
    """1,000 training rows (batches of 32) and the validation and test splits."""
    train, val, test = synthetic_splits
    return train.take(np.arange(1000)), val, test


def test_a_run_that_early_stops_converged_and_one_cut_by_the_cap_did_not(small):
    train, val, _ = small
    # A high learning rate overfits fast: the validation loss turns up, patience runs out.
    stopped = MultiTaskEstimator("shared_bottom", lr=0.05, epochs=40, patience=2, **QUIET)
    history = stopped.fit(train, val).history_
    assert history.stopped_early and history.converged
    assert len(history.epochs) == history.best_epoch + 2 < 40
    # Two epochs of a slow learner: the validation loss is still falling at the cap.
    capped = MultiTaskEstimator("shared_bottom", lr=1e-4, epochs=2, patience=5, **QUIET)
    history = capped.fit(train, val).history_
    assert not history.stopped_early and not history.converged
    assert history.best_epoch == 2  # still improving in the last epoch


def _epoch(epoch: int) -> EpochRecord:
    return EpochRecord(epoch, 0.1, 1e-3, 4, {}, {})


def test_with_early_stopping_off_a_run_converged_when_its_best_epoch_is_old():
    def history(n_epochs: int, best: int) -> History:
        return History([_epoch(e) for e in range(1, n_epochs + 1)], best_epoch=best)

    assert is_converged(history(12, 7), patience=0)  # 5 epochs without improvement
    assert not is_converged(history(12, 8), patience=0)
    assert not is_converged(history(12, 11), patience=3)  # cut by the cap while improving
    early = History([_epoch(e) for e in range(1, 5)], best_epoch=1, stopped_early=True)
    assert is_converged(early, patience=3)


def test_the_batch_size_adapts_to_the_training_rows(synthetic_splits):
    train, val, _ = synthetic_splits
    assert [auto_batch_size(n) for n in (100, 3_500, 10_000, 70_000)] == [32, 128, 256, 512]
    small = train.take(np.arange(700))
    history = MultiTaskEstimator("shared_bottom", epochs=1, **QUIET).fit(small, val).history_
    assert history.batch_size == 32 and history.epochs[0].steps == 22  # ceil(700 / 32)
    fixed = MultiTaskEstimator("shared_bottom", epochs=1, batch_size=500, **QUIET)
    assert fixed.fit(small, val).history_.epochs[0].steps == 2


@pytest.mark.parametrize("strategy", ["joint", "uncertainty", "dwa", "rlw"])  # rlw: its own draws
def test_continuing_an_unconverged_fit_equals_one_longer_fit(tmp_path, small, strategy):
    train, val, test = small
    settings = {"strategy": strategy, "seed": 3, "patience": 50, "dropout": 0.2, **QUIET}
    settings["n_experts"] = 3
    short = MultiTaskEstimator("mmoe", epochs=2, **settings).fit(train, val)
    assert not short.history_.converged
    save_torch(tmp_path / "state.pt", short.training_state())  # through a file, as the grid
    state = load_torch(tmp_path / "state.pt")
    continued = MultiTaskEstimator("mmoe", epochs=4, **settings).fit(train, val, state=state)
    longer = MultiTaskEstimator("mmoe", epochs=4, **settings).fit(train, val)

    assert [e.epoch for e in continued.history_.epochs] == [1, 2, 3, 4]
    kept = continued.history_.to_dict()["epochs"][:2]
    assert kept == short.history_.to_dict()["epochs"]
    for a, b in zip(continued.history_.to_dict()["epochs"], longer.history_.to_dict()["epochs"]):
        assert a["val"] == b["val"] and a["train"] == b["train"]
        assert a["task_weights"] == b["task_weights"]
    for name, value in longer.model_.state_dict().items():
        assert torch.equal(continued.model_.state_dict()[name], value), name
    assert continued.evaluate(test) == longer.evaluate(test)


def test_a_state_whose_weights_do_not_fit_the_model_is_refused_in_one_line(small):
    """E.g. a single_task state saved when it held a module per task (up to 6c82c21)."""
    train, val, _ = small
    short = MultiTaskEstimator("single_task", epochs=1, **QUIET).fit(train, val)
    state = short.training_state()
    state["model"] = {f"old.{k}": v for k, v in state["model"].items()}
    again = MultiTaskEstimator("single_task", epochs=2, **QUIET)
    with pytest.raises(ConfigError, match="saved weights do not fit the SingleTask model"):
        again.fit(train, val, state=state)


def test_only_the_epoch_budget_may_change_when_continuing(small):
    train, val, _ = small
    short = MultiTaskEstimator("shared_bottom", epochs=1, **QUIET).fit(train, val)
    other = MultiTaskEstimator("shared_bottom", epochs=3, lr=0.01, **QUIET)
    with pytest.raises(ConfigError, match=r"settings \['lr'\] differ"):
        other.fit(train, val, state=short.training_state())
    # A cosine schedule is shaped by the epoch budget: such a run is retrained, not continued.
    cosine = MultiTaskEstimator("shared_bottom", epochs=1, lr_schedule="cosine", **QUIET)
    assert cosine.fit(train, val).training_state() is None
