"""benchmarks/peers/worker.py's mtlkit runner times ``Trainer`` (and compiles the models) by
patching them for one fit only: a worker process may run several fits (the diagnostics-cost
pairs), and each must start from mtlkit's own classes."""

from __future__ import annotations

import importlib
import pickle
import sys
from pathlib import Path

import pytest
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.splits import split_table
from mtlkit.data.synthetic import make_synthetic
from mtlkit.errors import ConfigError
from mtlkit.training import estimator as estimator_mod
from mtlkit.training.trainer import Trainer

PEERS = Path(__file__).resolve().parents[2] / "benchmarks" / "peers"


@pytest.fixture
def worker(tmp_path, monkeypatch):
    """The worker module, reading a small split with the benchmark's task names."""
    monkeypatch.syspath_prepend(str(PEERS))
    module = importlib.import_module("worker")
    frame = make_synthetic(400, n_features=6, seed=0, label_prefix="t")
    frame = frame.rename(columns={"t0": "income", "t1": "marital"})
    splits = split_table(load_tables(frame, labels=list(module.TASKS)), seed=0)
    path = tmp_path / "split.pkl"
    path.write_bytes(pickle.dumps(splits))
    monkeypatch.setattr(module, "RAW_SPLIT", path)
    yield module
    for name in ("worker", "common", "lean", "step_parts"):  # imported from its folder
        sys.modules.pop(name, None)


def _data(worker) -> dict:
    with open(worker.RAW_SPLIT, "rb") as fh:
        train, _, test = pickle.load(fh)
    encoded = Preprocessor().fit(train).transform(test)
    return {"test": {"x_cat": encoded.x_cat, "x_num": encoded.x_num}}


SPEC = {"model": "mmoe", "preset": "small", "epochs": 2, "seed": 0, "device": "cpu"}


def test_a_compiled_run_leaves_trainer_and_build_model_as_they_were(worker, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self: compiled.append(self))
    fit, validate, create = Trainer.fit, Trainer._validate, estimator_mod.build_model
    out = worker.run_mtlkit({**SPEC, "compile": True}, _data(worker))
    assert len(compiled) == 1  # the model was compiled: the patch was in place during the fit
    assert len(out["epoch_s"]) == 2 and out["timer"].wall > 0
    assert (Trainer.fit, Trainer._validate, estimator_mod.build_model) == (fit, validate, create)


def test_a_failed_run_leaves_trainer_as_it_was(worker):
    fit, validate = Trainer.fit, Trainer._validate
    with pytest.raises(ConfigError, match="epochs"):
        worker.run_mtlkit({**SPEC, "epochs": 0}, _data(worker))
    assert (Trainer.fit, Trainer._validate) == (fit, validate)


def test_step_parts_trains_mtlkits_model_in_the_lean_loop(worker, monkeypatch):
    """benchmarks/peers/step_parts.py: mtlkit's model, built from the schema the worker's fit
    returns, trains in the lean loop (its task outputs stacked as the loop's logits)."""
    step_parts = importlib.import_module("step_parts")
    with open(worker.RAW_SPLIT, "rb") as fh:
        train, _, _ = pickle.load(fh)
    encoded = Preprocessor().fit(train).transform(train)
    data = {"train": {"x_cat": encoded.x_cat, "x_num": encoded.x_num, "y": encoded.y}}
    fitted = worker.run_mtlkit({**SPEC, "epochs": 1}, _data(worker))
    seen = []
    original = step_parts.lean.train

    def recording(model, *args, **kwargs):
        before = [p.detach().clone() for p in model.parameters()]
        times = original(model, *args, **kwargs)
        seen.append(any(not torch.equal(b, p) for b, p in zip(before, model.parameters())))
        return times

    monkeypatch.setattr(step_parts.lean, "train", recording)
    times = step_parts.run_model_in_lean_loop(SPEC, data, fitted["schema"])
    assert len(times) == SPEC["epochs"] and seen == [True]
