import json
import math

import numpy as np
import pytest
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.splits import split_table
from mtlkit.data.synthetic import make_synthetic
from mtlkit.errors import ConfigError, DataError
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.settings import TrainConfig
from mtlkit.training.state import load_torch, state_copy
from mtlkit.training.trainer import Trainer, TrainingDiverged, fused_adam_supported

FAST = {"epochs": 15, "batch_size": 256, "lr": 3e-3, "patience": 3, "progress": False}


def test_same_seed_gives_the_same_metrics(synthetic_splits):
    train, val, test = synthetic_splits
    a = MultiTaskEstimator("mmoe", seed=1, **{**FAST, "epochs": 3}).fit(train, val).evaluate(test)
    b = MultiTaskEstimator("mmoe", seed=1, **{**FAST, "epochs": 3}).fit(train, val).evaluate(test)
    c = MultiTaskEstimator("mmoe", seed=2, **{**FAST, "epochs": 3}).fit(train, val).evaluate(test)
    assert a == b
    assert a != c


def test_history_records_train_and_validation_per_epoch(synthetic_splits):
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("shared_bottom", **{**FAST, "epochs": 4, "patience": 0}).fit(
        train, val
    )
    hist = est.history_
    assert len(hist.epochs) == 4
    for split in ("train", "val"):
        losses = hist.series(split, "label0", "loss")
        assert all(math.isfinite(v) for v in losses)
        assert losses[-1] < losses[0]
    assert 0.5 < hist.epochs[-1].train["label1"]["accuracy"] <= 1
    assert hist.epochs[0].time_s > 0


def test_early_stopping_restores_the_best_epoch(synthetic_splits):
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("mmoe", **{**FAST, "epochs": 60, "lr": 0.03, "patience": 2}).fit(
        train, val
    )
    hist = est.history_
    assert hist.stopped_early
    best = hist.epochs[hist.best_epoch - 1]
    restored = est.trainer_.evaluate(est.preprocessor_.transform(val))
    for task in ("label0", "label1"):
        assert restored[task]["loss"] == pytest.approx(best.val[task]["loss"], rel=1e-5)


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_good_weights(synthetic_splits):
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("shared_bottom", **{**FAST, "epochs": 2}).fit(train, val)
    data = est.preprocessor_.transform(train)
    good = {k: v.clone() for k, v in est.model_.state_dict().items()}
    data.x_num[5, 0] = float("nan")
    trainer = Trainer(est.model_, TrainConfig(epochs=2, progress=False))
    with pytest.raises(TrainingDiverged, match="non-finite"):
        trainer.fit(data, est.preprocessor_.transform(val))
    for k, v in est.model_.state_dict().items():
        assert torch.equal(v, good[k]), k


def test_save_and_load_predict_the_same(tmp_path, synthetic_splits):
    train, val, test = synthetic_splits
    est = MultiTaskEstimator("mmoe", **{**FAST, "epochs": 2}).fit(train, val)
    est.save(tmp_path / "model")
    loaded = MultiTaskEstimator.load(tmp_path / "model")
    a, b = est.predict_proba(test), loaded.predict_proba(test)
    for task in a:
        np.testing.assert_allclose(a[task], b[task], rtol=1e-6)
    assert set(np.unique(loaded.predict(test)["label0"])) <= {0, 1}


def test_bad_training_settings_are_refused():
    with pytest.raises(ConfigError, match="epochs"):
        MultiTaskEstimator("mmoe", epochs=-1).check_params()
    with pytest.raises(ConfigError, match="monitor"):
        MultiTaskEstimator("mmoe", monitor="auc").check_params()
    with pytest.raises(ConfigError, match="not fitted"):
        MultiTaskEstimator("mmoe").predict_proba(None)


def test_history_round_trips_through_json_with_nan_and_diagnostics():
    import json
    import math

    from mtlkit.evaluation.run_record import Diagnostics, EpochRecord, History

    record = EpochRecord(
        1,
        0.1,
        1e-3,
        4,
        train={"a": {"loss": 0.5}},
        val={"a": {"roc_auc": math.nan}},
        diagnostics=Diagnostics(expert_utilization={"a": [0.5, 0.5]}),
    )
    h = History([record], best_epoch=1, stopped_early=True)
    back = History.from_dict(json.loads(json.dumps(h.to_dict(), allow_nan=False)))
    assert back.best_epoch == 1 and back.stopped_early
    assert math.isnan(back.series("val", "a", "roc_auc")[0])
    assert back.epochs[0].diagnostics.expert_utilization == {"a": [0.5, 0.5]}


def test_a_loaded_model_scores_a_new_file_without_labels(tmp_path, synthetic_splits):
    train, val, test = synthetic_splits
    est = MultiTaskEstimator("shared_bottom", **{**FAST, "epochs": 2}).fit(train, val)
    est.save(tmp_path / "model")
    new_file = tmp_path / "new.csv"
    test.features.to_csv(new_file, index=False)  # features only, no label column
    scores = MultiTaskEstimator.load(tmp_path / "model").predict_proba(new_file)
    expected = est.predict_proba(test)
    for task in ("label0", "label1"):
        np.testing.assert_allclose(scores[task], expected[task], rtol=1e-5)


def test_device_choice_is_checked_and_auto_trains_here(tmp_path, synthetic_splits):
    train, val, test = synthetic_splits
    with pytest.raises(ConfigError, match="device"):
        MultiTaskEstimator("mmoe", device="tpu").check_params()
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="sees no CUDA GPU"):
            MultiTaskEstimator("mmoe", device="cuda").fit(train, validation=val)
    est = MultiTaskEstimator("mmoe", device="auto", **{**FAST, "epochs": 1}).fit(train, val)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(est.model_.parameters()).device.type == expected
    assert isinstance(est.predict_proba(test)["label0"], np.ndarray)
    # A model saved with device="cuda" still loads (on the CPU) where there is no GPU.
    est.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "estimator.json"
    meta = json.loads(meta_path.read_text())
    meta["params"]["device"] = "cuda"
    meta_path.write_text(json.dumps(meta))
    loaded = MultiTaskEstimator.load(tmp_path / "m")
    assert loaded.device == ("cuda" if torch.cuda.is_available() else "cpu")
    np.testing.assert_allclose(
        loaded.predict_proba(test)["label0"], est.predict_proba(test)["label0"], rtol=1e-5
    )


def test_best_checkpoint_is_written_atomically_while_training(tmp_path, synthetic_splits):
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("shared_bottom", **{**FAST, "epochs": 1}).fit(train, val)
    path = tmp_path / "ckpt" / "best.pt"
    trainer = Trainer(est.model_, TrainConfig(epochs=3, progress=False), checkpoint_path=path)
    trainer.fit(est.preprocessor_.transform(train), est.preprocessor_.transform(val))
    saved = torch.load(path, weights_only=True)
    for k, v in est.model_.state_dict().items():  # the restored best epoch is what was saved
        assert torch.equal(saved[k], v), k
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temporary file left


def _regression_splits():
    frame = make_synthetic(800, n_features=5, task_type="regression", seed=0)
    return split_table(load_tables(frame, labels=["label0", "label1"]), seed=0)


def test_a_monitor_no_task_reports_is_refused_when_fit_starts():
    # Before: roc_auc on regression tasks averaged to +inf, epoch 1 stayed "best" and training
    # stopped silently after `patience` epochs with the epoch-1 weights.
    train, val, _ = _regression_splits()
    est = MultiTaskEstimator("shared_bottom", monitor="roc_auc", **{**FAST, "epochs": 1})
    with pytest.raises(ConfigError) as err:
        est.fit(train, validation=val)
    message = str(err.value)
    assert "monitor 'roc_auc' is not reported by any task" in message
    assert "label0 (regression): loss, rmse, mae, r2" in message


def test_a_monitor_undefined_in_one_epoch_does_not_freeze_the_best_epoch():
    from mtlkit.training.trainer import _improves

    nan = float("nan")
    assert _improves(0.3, nan) and not _improves(nan, 0.3) and _improves(0.2, 0.3)


def test_feature_kind_typos_are_refused_by_the_estimator(synthetic_splits):
    # Before: feature_kinds={"x0": "numerc"} silently made x0 categorical.
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("mmoe", feature_kinds={"x0": "numerc"}, **FAST)
    with pytest.raises(ConfigError, match=r"feature_kinds\['x0'\] is 'numerc'"):
        est.fit(train, validation=val)


def test_a_task_without_validation_labels_is_refused_before_training(synthetic_splits):
    # Before: check_splits was never called; early stopping ran on nothing.
    train, val, _ = synthetic_splits
    unlabelled = val.take(np.arange(len(val)))
    unlabelled.masks["label1"][:] = False
    with pytest.raises(DataError, match="'label1' has no labelled rows in the validation"):
        MultiTaskEstimator("mmoe", **FAST).fit(train, validation=unlabelled)


def test_the_state_saved_after_each_epoch_continues_a_stopped_fit(tmp_path, synthetic_splits):
    train, val, _ = synthetic_splits
    settings = {**FAST, "epochs": 4, "patience": 0, "strategy": "uncertainty"}
    whole = MultiTaskEstimator("mmoe", **settings).fit(train, val)
    path = tmp_path / "state.pt"
    # A fit that stopped after 2 epochs (as if killed) leaves its state on disk...
    MultiTaskEstimator("mmoe", **{**settings, "epochs": 2}).fit(train, val, state_path=path)
    saved = load_torch(path)
    assert len(saved["history"]["epochs"]) == 2 and not list(tmp_path.glob(".*"))
    # ...from which the same fit continues to the model of one uninterrupted fit.
    resumed = MultiTaskEstimator("mmoe", **settings).fit(train, val, state=saved)
    for name, value in whole.model_.state_dict().items():
        assert torch.equal(resumed.model_.state_dict()[name], value), name


def test_the_epoch_callback_sees_the_monitored_value_and_may_stop_training(synthetic_splits):
    train, val, _ = synthetic_splits
    seen = []

    class Stop(Exception):
        pass

    def on_epoch(epoch, value):
        seen.append((epoch, value))
        if epoch == 2:
            raise Stop

    est = MultiTaskEstimator("shared_bottom", **{**FAST, "epochs": 5, "monitor": "roc_auc"})
    with pytest.raises(Stop):
        est.fit(train, validation=val, on_epoch=on_epoch)
    epochs = est.trainer_.history.epochs
    assert [e for e, _ in seen] == [1, 2] and len(epochs) == 2  # stopped after epoch 2
    for (_, value), record in zip(seen, epochs):
        assert value == pytest.approx(np.mean([m["roc_auc"] for m in record.val.values()]))


def test_fused_adam_only_for_parameters_its_kernel_takes():
    cpu = torch.zeros(2)
    assert fused_adam_supported([cpu])  # torch 2.13 has the CPU kernel
    assert not fused_adam_supported([cpu, torch.zeros(2, device="meta")])
    assert not fused_adam_supported([cpu, torch.zeros(2, dtype=torch.int64)])


def test_state_copy_equals_the_state_and_stays_as_it_was():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model(torch.randn(8, 3))  # running statistics and the batch counter move
    copied = state_copy(model)
    state = model.state_dict()
    assert list(copied) == list(state)
    assert all(torch.equal(copied[k], v) for k, v in state.items())
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(8, 3))
    assert not torch.equal(copied["0.weight"], model[0].weight)
    assert copied["1.num_batches_tracked"] == 1
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    fresh.load_state_dict(copied)
    assert torch.equal(fresh[1].running_mean, copied["1.running_mean"])
