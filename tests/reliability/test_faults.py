"""Faults: a save that fails half-way, a corrupted cell file, a YAML bomb, a diverging
validation loss, and user strings in report.md."""

from __future__ import annotations

import copy
import errno
import json
import re
import time
import tracemalloc

import numpy as np
import pytest
import torch
from reliability_helpers import LABELS, assert_clear_error, run_cli

import mtlkit.training.state as state_module
from mtlkit.errors import WriteError
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.trainer import Trainer, TrainingDiverged


def _est(**params) -> MultiTaskEstimator:
    return MultiTaskEstimator("shared_bottom", labels=LABELS, progress=False, **params)


def test_a_failed_resave_leaves_the_previous_model_working(model_copy, frame, monkeypatch):
    expected = MultiTaskEstimator.load(model_copy).predict_proba(frame)["label0"]
    (model_copy / "notes.txt").write_text("kept")  # e.g. test_metrics.json, training state
    retrained = _est(epochs=2, seed=7).fit(frame)
    write = state_module.atomic_write_bytes  # what save_torch writes the weights with

    def full_disk(path, data):  # a third of the weights written, then the disk is full
        if path.name == "model.pt":
            path.write_bytes(data[: len(data) // 3])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write(path, data)

    monkeypatch.setattr(state_module, "atomic_write_bytes", full_disk)
    with pytest.raises(WriteError, match="No space left on device; the model saved there before"):
        retrained.save(model_copy)
    monkeypatch.undo()
    kept = MultiTaskEstimator.load(model_copy)  # checksums and weights verified
    np.testing.assert_array_equal(kept.predict_proba(frame)["label0"], expected)
    assert not list(model_copy.glob(".staging-*"))  # nothing half-written left
    retrained.save(model_copy)  # a save that works replaces the model
    replaced = MultiTaskEstimator.load(model_copy).predict_proba(frame)["label0"]
    np.testing.assert_allclose(replaced, retrained.predict_proba(frame)["label0"], rtol=1e-6)
    assert not np.allclose(replaced, expected)
    assert (model_copy / "notes.txt").read_text() == "kept"


def test_a_corrupted_cell_is_named_set_aside_and_run_again(run_copy, capsys):
    cells = sorted((run_copy / "cells").glob("*.json"))
    cell = cells[-1]
    good = RunRecord.from_dict(json.loads(cell.read_text()))
    cell.write_bytes(cell.read_bytes()[:200])  # e.g. a disk fault
    code, printed = run_cli(["compare", "--resume", run_copy, "--quiet"], capsys)
    assert code == 0, printed
    assert f"mtlkit compare: warning: cell file {str(cell)!r} is corrupted" in printed
    assert f"{len(cells)} runs in the grid, {len(cells) - 1} already finished" in printed
    again = RunRecord.from_dict(json.loads(cell.read_text()))
    assert again.run_id == good.run_id and again.metrics.keys() == good.metrics.keys()
    assert len(cell.with_name(cell.name + ".corrupt").read_bytes()) == 200


def _bomb(levels: int) -> str:
    lines = ["data: synthetic", "models: [mmoe]", "a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    for k in range(1, levels):
        previous, name = chr(ord("a") + k - 1), chr(ord("a") + k)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [9, 12])
def test_a_yaml_bomb_is_refused_at_once_in_little_memory(levels, tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(levels))  # 9 levels: 9**9 = 387 million values in 373 bytes
    assert path.stat().st_size < 500
    tracemalloc.start()
    start = time.perf_counter()
    assert_clear_error(["compare", "--config", path], capsys, "through its YAML aliases")
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 5 and peak < 20e6, (seconds, peak)


def test_a_nan_validation_prediction_stops_training_with_the_last_good_weights(frame, monkeypatch):
    validation = Trainer.labelled_scores
    states = []

    def poisoned(self, data, *args, **kwargs):  # the weights went bad in the second epoch
        y, mask, scores = validation(self, data, *args, **kwargs)
        states.append(copy.deepcopy(self.model.state_dict()))
        if len(states) == 2:
            scores["label1"][:] = np.nan
        return y, mask, scores

    monkeypatch.setattr(Trainer, "labelled_scores", poisoned)
    est = _est(epochs=5, patience=0, diagnostic_batches=0)
    with pytest.raises(
        TrainingDiverged,
        match=r"validation predictions of task\(s\) \['label1'\] became non-finite in epoch 2; "
        "the weights of epoch 1 were restored",
    ):
        est.fit(frame)
    restored = est.model_.state_dict()
    assert all(torch.equal(restored[k], states[0][k]) for k in restored)
    assert not all(torch.equal(states[1][k], states[0][k]) for k in restored)


def test_report_md_shows_user_strings_as_text(tmp_path, capsys):
    label = "<img src=x onerror=alert(1)> | [click](http://e.x) *x*"
    config = tmp_path / "grid.yaml"
    config.write_text(
        "data: synthetic\nn_rows: 200\nepochs: 1\nseeds: [0]\n"
        f"models: [{{model: shared_bottom, label: {json.dumps(label)}}}]\n"
    )
    code, printed = run_cli(
        ["compare", "--config", config, "--out", tmp_path / "r", "--quiet"], capsys
    )
    assert code == 0, printed
    report = (tmp_path / "r" / "report.md").read_text()
    text = re.sub(r"```.*?```", "", report, flags=re.S)  # the code blocks show it verbatim
    assert "<img" not in text and not re.search(r"(?<!\\)\]\(http", text)  # no live link
    assert r"&lt;img src=x onerror=alert(1)&gt; \| \[click\](http://e.x) \*x\*" in report
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    unescaped_pipes = {line.replace(r"\|", "").count("|") for line in rows}
    assert len(unescaped_pipes) == 1  # the label's | does not add a table column
    assert "&lt;img" in (tmp_path / "r" / "report.html").read_text()
