"""The typed per-epoch record: today's history JSON loads into it and is written back as is."""

import json
import math
from pathlib import Path

from mtlkit.evaluation.run_record import Diagnostics, EpochRecord, History

FIXTURES = Path(__file__).parents[1] / "training" / "fixtures"

#: A history as cells and model folders hold it (strict JSON: NaN saved as null).
SAVED = {
    "epochs": [
        {
            "epoch": 1,
            "time_s": 0.84,
            "lr": 0.001,
            "steps": 12,
            "train": {"a": {"loss": 0.7, "accuracy": 0.5}, "r": {"loss": 1.5}},
            "val": {"a": {"loss": 0.69, "roc_auc": None}, "r": {"loss": 1.4, "rmse": 1.2}},
            "task_weights": None,
            "diagnostics": None,
        },
        {
            "epoch": 2,
            "time_s": 0.8,
            "lr": 0.0005,
            "steps": 12,
            "train": {"a": {"loss": 0.6, "accuracy": 0.6}, "r": {"loss": 1.2}},
            "val": {"a": {"loss": 0.65, "roc_auc": 0.7}, "r": {"loss": 1.1, "rmse": 1.0}},
            "task_weights": {"a": 0.8, "r": 1.2},
            "diagnostics": {
                "grad_cosine": -0.25,
                "grad_cosine_pairs": {"a|r": -0.25},
                "grad_norm": {"a": 0.5, "r": 0.0},
                "grad_norm_ratio": None,
                "expert_utilization": {"a": [0.75, 0.25], "r": [0.5, 0.5]},
            },
        },
    ],
    "best_epoch": 2,
    "stopped_early": False,
    "converged": False,
    "batch_size": 64,
}


def test_a_saved_history_loads_as_typed_records_and_is_written_back_unchanged():
    history = History.from_dict(json.loads(json.dumps(SAVED)))
    first, second = history.epochs
    assert isinstance(first, EpochRecord) and isinstance(second.diagnostics, Diagnostics)
    assert first.diagnostics is None and first.task_weights is None
    assert math.isnan(first.val["a"]["roc_auc"])  # null is NaN in memory
    assert math.isnan(second.diagnostics.grad_norm_ratio)
    assert second.diagnostics.expert_utilization["a"] == [0.75, 0.25]
    assert (second.epoch, second.steps, second.lr) == (2, 12, 0.0005)
    # The same JSON, key order included (the file format does not change).
    assert json.dumps(history.to_dict(), allow_nan=False) == json.dumps(SAVED)


def test_the_history_a_model_folder_of_8f77496_holds_round_trips():
    text = (FIXTURES / "model_v0" / "history.json").read_text()
    history = History.from_dict(json.loads(text))
    assert history.epochs[0].train["y"]["loss"] > 0 and history.epochs[0].diagnostics is None
    assert json.dumps(history.to_dict()) == json.dumps(json.loads(text))


def test_the_readers_see_nan_alike_in_memory_and_after_loading():
    def history(cosine: float) -> History:
        diagnostics = Diagnostics(grad_cosine=cosine, expert_utilization={"a": [1.0]})
        record = EpochRecord(1, 0.1, 1e-3, 4, {"a": {"loss": 1.0}}, {}, None, diagnostics)
        return History([record, EpochRecord(2, 0.1, 1e-3, 4, {"a": {"loss": 0.5}}, {})])

    for measured in (history(0.5), history(math.nan)):
        loaded = History.from_dict(json.loads(json.dumps(measured.to_dict(), allow_nan=False)))
        for h in (measured, loaded):
            # An epoch without diagnostics: the series is not recorded, and NaN in diagnostic().
            assert h.recorded_diagnostic("grad_cosine") is None
            assert math.isnan(h.diagnostic("grad_cosine")[1])
            assert h.series("train", "a", "loss") == [1.0, 0.5]
            assert math.isnan(h.series("train", "a", "accuracy")[0])  # not measured
    one = History([EpochRecord(1, 0.1, 1e-3, 4, {}, {}, None, Diagnostics(grad_cosine=math.nan))])
    assert one.recorded_diagnostic("grad_cosine") is None  # a NaN cosine is not recorded
    assert History.from_dict(one.to_dict()).recorded_diagnostic("grad_cosine") is None
    one.epochs[0].diagnostics.grad_cosine = 0.3
    assert History.from_dict(one.to_dict()).recorded_diagnostic("grad_cosine") == [0.3]
