"""The run record's JSON: the label and the model's registry name, in the new and old form."""

from __future__ import annotations

from mtlkit.evaluation.run_record import History, RunRecord
from mtlkit.experiments.tuning_plan import StudyRecord


def _record() -> RunRecord:
    history = History()  # the epochs do not matter here
    metrics = {"test": {"a": {"loss": 0.4}}}
    return RunRecord(
        "mmoe-n_experts=2__joint__seed0", "mmoe:n_experts=2", "mmoe", "joint", 0,
        {"a": "binary"}, 1.0, 10, history, metrics,
    )  # fmt: skip


def test_a_record_keeps_its_label_and_architecture_apart():
    record = _record()
    data = record.to_dict()
    assert data["label"] == "mmoe:n_experts=2" and data["architecture"] == "mmoe"
    assert "model" not in data
    again = RunRecord.from_dict(data)
    assert (again.label, again.architecture) == ("mmoe:n_experts=2", "mmoe")
    row = again.rows()[0]  # the results' column names are unchanged
    assert (row["model"], row["architecture"]) == ("mmoe:n_experts=2", "mmoe")


def test_a_record_written_with_the_old_field_name_loads():
    data = _record().to_dict()
    data["model"] = data.pop("label")  # how cells were written before the rename
    record = RunRecord.from_dict(data)
    assert (record.label, record.architecture) == ("mmoe:n_experts=2", "mmoe")
    assert record.to_dict() == _record().to_dict()


def test_a_study_record_written_with_the_old_field_name_loads():
    new = StudyRecord(
        study="mmoe-n_experts=2__joint", label="mmoe:n_experts=2", architecture="mmoe",
        strategy="joint", monitor="loss", direction="minimize", tune={}, best_value=0.3,
        best_trial=1, best={"model": {}, "strategy": {}, "train": {"lr": 0.01}}, trials=[],
    )  # fmt: skip
    data = new.to_dict()
    assert data["label"] == "mmoe:n_experts=2" and "model" not in data
    data["model"] = data.pop("label")
    old = StudyRecord.from_dict(data)
    assert old == new
