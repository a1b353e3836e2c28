"""--track tensorboard / track="tensorboard": event files whose scalars equal the History."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mtlkit.cli.main import main
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.training.estimator import MultiTaskEstimator

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def _scalars(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder))
    events.Reload()
    return events


def _assert_series(events: EventAccumulator, tag: str, values: list[float]) -> None:
    """The scalar ``tag`` holds ``values`` (NaN: not logged) at steps 1, 2, ..."""
    logged = [(e.step, e.value) for e in events.Scalars(tag)]
    expected = [(k, v) for k, v in enumerate(values, start=1) if not math.isnan(v)]
    assert [s for s, _ in logged] == [s for s, _ in expected], tag
    assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6), tag


def test_estimator_track_writes_one_run_folder_with_the_history(
    synthetic_splits, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("mmoe", n_experts=3, epochs=3, progress=False, track="tensorboard")
    est.fit(train, validation=val)
    folder = Path(est.tracked_run_)
    assert folder.parent == tmp_path / "runs" / "tensorboard"
    events = _scalars(folder)
    history = est.history_
    for split, metric in (("train", "loss"), ("train", "accuracy"), ("val", "roc_auc")):
        for task in ("label0", "label1"):
            _assert_series(events, f"{split}/{task}/{metric}", history.series(split, task, metric))
    _assert_series(events, "diagnostics/grad_cosine", history.diagnostic("grad_cosine"))
    use = [e.diagnostics.expert_utilization["label1"][2] for e in history.epochs]
    _assert_series(events, "diagnostics/expert_use/label1/expert2", use)
    best = events.Scalars("best_epoch")
    assert [e.value for e in best] == [history.best_epoch]
    assert "params" in "".join(events.Tags()["tensors"])  # the settings, as text


def test_compare_writes_one_run_folder_per_cell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["compare", "synthetic", "--models", "shared_bottom", "--seeds", "0", "1"]
    args += ["--rows", "500", "--epochs", "2", "--out", "grid", "--track", "tensorboard"]
    assert main([*args, "--quiet"]) == 0
    cells = sorted((tmp_path / "grid" / "cells").glob("*.json"))
    root = tmp_path / "runs" / "tensorboard" / "grid"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [c.stem for c in cells]
    for cell in cells:
        record = RunRecord.from_dict(json.loads(cell.read_text()))
        events = _scalars(root / cell.stem)
        _assert_series(events, "val/label0/loss", record.history.series("val", "label0", "loss"))
        (test,) = events.Scalars("test/label1/roc_auc")
        assert test.value == pytest.approx(record.metrics["test"]["label1"]["roc_auc"], rel=1e-6)
