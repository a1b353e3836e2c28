"""One measured run in its own process: ``python worker.py '<json spec>'``.

The spec names the system, model, preset, seed, torch threads (a number, or "default" for
torch's own count) and device (and optional variants: ``diagnostic_batches`` for mtlkit,
``compile``). The worker trains on the shared encoded split, times the training epochs only
(no validation pass), scores the test split and prints one line ``RESULT {json}``:
samples/s, per-epoch seconds, test AUC per task, parameter count, peak RSS and the torch
threads it ran with.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest.mock import patch

import numpy as np
import torch
from common import PRESETS, RAW_SPLIT, TASKS, TRAINING, aucs, load_split, peak_rss_mb, warm_up


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Timer:
    """Wall and CPU (this process, all threads) seconds, accumulated over ``with`` blocks;
    ``minus`` takes a part out (e.g. validation passes)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Timer:
        self._start = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._start[0]
        self.cpu += time.process_time() - self._start[1]

    def minus(self, other: Timer) -> Timer:
        self.wall -= other.wall
        self.cpu -= other.cpu
        return self


def run_lean(spec: dict, data: dict) -> dict:
    import lean

    torch.manual_seed(spec["seed"])
    n_num = data["train"]["x_num"].shape[1]
    model = lean.build(spec["model"], data["cards"], n_num, len(TASKS), PRESETS[spec["preset"]])
    model.to(spec["device"])
    if spec.get("compile"):
        model.compile()
    with Timer() as timer:
        times = lean.train(
            model,
            data["train"],
            spec["epochs"],
            TRAINING["batch_size"],
            TRAINING["lr"],
            spec["seed"],
        )
    test = data["test"]
    scores = lean.predict(model, test["x_cat"], test["x_num"]).cpu().numpy()
    return {"timer": timer, "epoch_s": times, "scores": scores, "params": n_params(model)}


def run_mtlkit(spec: dict, data: dict) -> dict:
    """Through ``MultiTaskEstimator`` on the raw split tables, as a user would call it.

    Training time = ``Trainer.fit`` minus the validation passes in it (once per epoch:
    ``Trainer._validate``, or ``Trainer.evaluate`` in mtlkit before the merge of issue #12);
    per-epoch times are the history's minus the validation pass.
    """
    import mtlkit
    from mtlkit.training.estimator import MultiTaskEstimator

    with open(RAW_SPLIT, "rb") as fh:
        train, val, test = pickle.load(fh)
    preset = PRESETS[spec["preset"]]
    fit_timer, eval_timer, eval_s = Timer(), Timer(), []
    with instrumented(fit_timer, eval_timer, eval_s, compile=spec.get("compile", False)):
        est = MultiTaskEstimator(
            spec["model"],
            epochs=spec["epochs"],
            batch_size=TRAINING["batch_size"],
            lr=TRAINING["lr"],
            patience=0,
            progress=False,
            seed=spec["seed"],
            device=spec["device"],
            diagnostic_batches=spec.get("diagnostic_batches", 4),
            embedding_dim=preset["embedding_dim"],
            **preset["models"][spec["model"]],
        )
        est.fit(train, val)
    assert len(eval_s) == spec["epochs"], f"{len(eval_s)} validation passes timed"
    # Typed epoch records; a --baseline commit from before them keeps dicts.
    epochs = [e if isinstance(e, dict) else vars(e) for e in est.history_.epochs]
    times = [e["time_s"] - v for e, v in zip(epochs, eval_s)]
    encoded = est.preprocessor_.transform(test)
    assert torch.equal(encoded.x_cat, data["test"]["x_cat"].cpu()), "encodings differ"
    assert torch.equal(encoded.x_num, data["test"]["x_num"].cpu()), "encodings differ"
    proba = est.predict_proba(test)
    scores = np.stack([proba[t] for t in TASKS], 1)
    return {
        "timer": fit_timer.minus(eval_timer),
        "epoch_s": times,
        "scores": scores,
        "params": est.n_parameters_,
        "mtlkit_path": os.path.dirname(mtlkit.__file__),
        "schema": est.model_.schema,  # for step_parts.py
    }


@contextmanager
def instrumented(
    fit_timer: Timer, eval_timer: Timer, eval_s: list[float], compile: bool = False
) -> Iterator[None]:
    """Within the block, ``Trainer.fit`` runs under ``fit_timer`` and its validation passes
    under ``eval_timer`` (each pass's seconds appended to ``eval_s``), and with ``compile``
    the estimator's models are compiled. The originals are back after the block, also when it
    raises: a worker may run several fits (``diagnostics_cost``)."""
    from mtlkit.training import estimator as estimator_mod
    from mtlkit.training.trainer import Trainer

    validation = "_validate" if hasattr(Trainer, "_validate") else "evaluate"
    # The estimator builds its model with build_model; before #20's checks-once, with create
    # (a --baseline commit may be that old).
    builder = "build_model" if hasattr(estimator_mod, "build_model") else "create"
    evaluate, fit, build = (
        getattr(Trainer, validation),
        Trainer.fit,
        getattr(estimator_mod, builder),
    )

    def timed_evaluate(self, *args, **kwargs):
        start = eval_timer.wall
        with eval_timer:
            result = evaluate(self, *args, **kwargs)
        eval_s.append(eval_timer.wall - start)
        return result

    def timed_fit(self, *args, **kwargs):
        with fit_timer:
            return fit(self, *args, **kwargs)

    def build_compiled(*args, **kwargs):
        model = build(*args, **kwargs)
        model.compile()
        return model

    with ExitStack() as patches:
        patches.enter_context(patch.object(Trainer, "fit", timed_fit))
        patches.enter_context(patch.object(Trainer, validation, timed_evaluate))
        if compile:
            patches.enter_context(patch.object(estimator_mod, builder, build_compiled))
        yield


def _columns(split: dict) -> dict[str, np.ndarray]:
    x_cat, x_num = split["x_cat"].cpu().numpy(), split["x_num"].cpu().numpy()
    cols = {f"c{i}": x_cat[:, i] for i in range(x_cat.shape[1])}
    cols.update({f"n{j}": x_num[:, j] for j in range(x_num.shape[1])})
    return cols


def run_deepctr(spec: dict, data: dict) -> dict:
    """DeepCTR-Torch's ``fit`` without validation data (so no validation pass), verbose=0;
    no L2 terms (mtlkit and the lean loop have none); gates are linear (no gate DNN)."""
    from deepctr_torch.inputs import DenseFeat, SparseFeat
    from deepctr_torch.models import MMOE, PLE, SharedBottom

    preset = PRESETS[spec["preset"]]
    hp, emb = preset["models"][spec["model"]], preset["embedding_dim"]
    n_num = data["train"]["x_num"].shape[1]
    feats = [SparseFeat(f"c{i}", c, embedding_dim=emb) for i, c in enumerate(data["cards"])]
    feats += [DenseFeat(f"n{j}", 1) for j in range(n_num)]
    device = "cuda:0" if spec["device"].startswith("cuda") else "cpu"
    common = {
        "l2_reg_linear": 0.0,
        "l2_reg_embedding": 0.0,
        "l2_reg_dnn": 0.0,
        "seed": spec["seed"],
        "task_types": ("binary",) * len(TASKS),
        "task_names": TASKS,
        "device": device,
    }
    if spec["model"] == "mmoe":
        model = MMOE(
            feats,
            num_experts=hp["n_experts"],
            expert_dnn_hidden_units=tuple(hp["expert_hidden"]),
            gate_dnn_hidden_units=(),
            tower_dnn_hidden_units=tuple(hp["tower_hidden"]),
            **common,
        )
    elif spec["model"] == "shared_bottom":
        model = SharedBottom(
            feats,
            bottom_dnn_hidden_units=tuple(hp["bottom_hidden"]),
            tower_dnn_hidden_units=tuple(hp["tower_hidden"]),
            **common,
        )
    elif spec["model"] == "ple":
        model = PLE(
            feats,
            shared_expert_num=hp["n_shared_experts"],
            specific_expert_num=hp["n_task_experts"],
            num_levels=hp["n_levels"],
            expert_dnn_hidden_units=tuple(hp["expert_hidden"]),
            gate_dnn_hidden_units=(),
            tower_dnn_hidden_units=tuple(hp["tower_hidden"]),
            **common,
        )
    else:
        raise ValueError(f"DeepCTR-Torch has no {spec['model']}")
    optimizer = torch.optim.Adam(model.parameters(), lr=TRAINING["lr"])
    model.compile(optimizer, loss=["binary_crossentropy"] * len(TASKS))
    x, y = _columns(data["train"]), data["train"]["y"].cpu().numpy()
    with Timer() as timer:
        model.fit(x, y, batch_size=TRAINING["batch_size"], epochs=spec["epochs"], verbose=0)
    scores = model.predict(_columns(data["test"]), batch_size=16384)
    return {"timer": timer, "scores": scores, "params": n_params(model)}


def run_rechub(spec: dict, data: dict) -> dict:
    """torch-rechub's ``MTLTrainer.train_one_epoch`` (its ``fit`` minus the validation pass)
    on its ``DataGenerator`` loaders; no weight decay (its default is 1e-5)."""
    from torch.utils.data import DataLoader
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.models.multi_task import MMOE, PLE, SharedBottom
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator, PredictDataset

    preset = PRESETS[spec["preset"]]
    hp, emb = preset["models"][spec["model"]], preset["embedding_dim"]
    n_num = data["train"]["x_num"].shape[1]
    feats = [SparseFeature(f"c{i}", c, embed_dim=emb) for i, c in enumerate(data["cards"])]
    feats += [DenseFeature(f"n{j}") for j in range(n_num)]
    task_types = ["classification"] * len(TASKS)
    towers = [{"dims": hp["tower_hidden"]} for _ in TASKS]
    if spec["model"] == "mmoe":
        model = MMOE(feats, task_types, hp["n_experts"], {"dims": hp["expert_hidden"]}, towers)
    elif spec["model"] == "shared_bottom":
        model = SharedBottom(feats, task_types, {"dims": hp["bottom_hidden"]}, towers)
    elif spec["model"] == "ple":
        model = PLE(
            feats,
            task_types,
            hp["n_levels"],
            hp["n_task_experts"],
            hp["n_shared_experts"],
            {"dims": hp["expert_hidden"]},
            towers,
        )
    else:
        raise ValueError(f"torch-rechub has no {spec['model']}")
    y = data["train"]["y"].cpu().numpy()
    loader = DataGenerator(_columns(data["train"]), y).generate_dataloader(
        x_val=_columns(data["val"]),
        y_val=data["val"]["y"].cpu().numpy(),
        x_test=_columns(data["test"]),
        y_test=data["test"]["y"].cpu().numpy(),
        batch_size=TRAINING["batch_size"],
    )[0]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = MTLTrainer(
            model,
            task_types,
            optimizer_params={"lr": TRAINING["lr"], "weight_decay": 0.0},
            n_epoch=spec["epochs"],
            device=spec["device"],
            model_path=tmp,
        )
        timer, times = Timer(), []
        for _ in range(spec["epochs"]):
            start = timer.wall
            with timer:
                trainer.train_one_epoch(loader)
            times.append(timer.wall - start)
    test = DataLoader(PredictDataset(_columns(data["test"])), batch_size=16384)
    scores = np.asarray(trainer.predict(model, test))
    return {"timer": timer, "epoch_s": times, "scores": scores, "params": n_params(model)}


RUNNERS = {"lean": run_lean, "mtlkit": run_mtlkit, "deepctr": run_deepctr, "rechub": run_rechub}


def main() -> None:
    spec = json.loads(sys.argv[1])
    threads = str(spec["threads"]).rstrip("p")
    if threads != "default":  # "default": torch's own thread count, as a user's process has
        torch.set_num_threads(int(threads))
    data = load_split(spec["device"])
    warm_up(spec["device"])
    if spec["system"] == "predict":
        from predict import measure

        print("RESULT " + json.dumps({**spec, "rates": measure(spec, data)}), flush=True)
        return
    if spec["system"] == "diagnostics":
        from diagnostics_cost import measure

        print("RESULT " + json.dumps({**spec, **measure(spec, data, run_mtlkit)}), flush=True)
        return
    out = RUNNERS[spec["system"]](spec, data)
    samples = len(data["train"]["y"]) * spec["epochs"]
    timer = out["timer"]
    y_test = data["test"]["y"].cpu().numpy()
    result = {
        **spec,
        "samples_per_s": samples / timer.wall,
        "samples_per_cpu_s": samples / timer.cpu,
        "n_train": len(data["train"]["y"]),
        "epoch_s": out.get("epoch_s"),
        "auc": aucs(y_test, np.asarray(out["scores"], dtype=np.float64)),
        "params": out["params"],
        "peak_rss_mb": peak_rss_mb(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if "mtlkit_path" in out:
        result["mtlkit_path"] = out["mtlkit_path"]
    if spec["device"].startswith("cuda"):
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
