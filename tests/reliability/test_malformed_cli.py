"""Malformed inputs through the command line: each must stop with a non-zero exit and one
``mtlkit CMD: error: ...`` line naming the file, column or setting (no traceback), and most
before any training."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from reliability_helpers import LABELS, assert_clear_error


@dataclass
class Ctx:
    """What a case builds its command line from (fixtures are made only when used)."""

    tmp: Path
    request: pytest.FixtureRequest

    @property
    def csv(self) -> Path:
        return self.request.getfixturevalue("good_csv")

    @property
    def model(self) -> Path:
        return self.request.getfixturevalue("model_copy")

    @property
    def run(self) -> Path:
        return self.request.getfixturevalue("run_copy")

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def csv_with(self, column: str, row: int, value: object, drop: tuple = ()) -> Path:
        frame = self.request.getfixturevalue("frame").drop(columns=list(drop)).astype(object)
        frame.loc[row, column] = value
        path = self.tmp / f"bad_{column}.csv"
        frame.to_csv(path, index=False)
        return path

    def train(self, *extra: object, data: Path | None = None, out: Path | None = None) -> list:
        out = out or self.tmp / "m"
        return ["train", data or self.csv, "--labels", *LABELS, "--out", out, *extra, "--quiet"]

    def compare(self, *extra: object) -> list:
        return ["compare", "synthetic", "--rows", "200", "--models", "mmoe", *extra, "--quiet"]

    def config(self, text: str | bytes, suffix: str = ".yaml") -> list:
        return ["compare", "--config", self.write(f"grid{suffix}", text), "--out", self.tmp / "r"]

    def predict(self, model: Path, *extra: object, data: Path | None = None) -> list:
        new = data or self.csv
        return ["predict", model, new, "--out", self.tmp / "p.csv", *extra]


def _damage(path: Path, how: str) -> Path:
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flipped":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    return path.parent


def _resaved(folder: Path, name: str, data: bytes) -> Path:
    """Replace one file of a model folder and record its new checksum, as a crafted (not a
    damaged) file would be: the checks after the checksums must catch it."""
    import hashlib

    (folder / name).write_bytes(data)
    meta = json.loads((folder / "estimator.json").read_text())
    meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "estimator.json").write_text(json.dumps(meta))
    return folder


def _nan_weights(folder: Path) -> Path:
    import io

    import torch

    state = torch.load(folder / "model.pt", weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first][0] = float("nan")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return _resaved(folder, "model.pt", buffer.getvalue())


def _other_shapes(folder: Path) -> Path:
    import io

    import torch

    state = torch.load(folder / "model.pt", weights_only=True)
    first = next(k for k, v in state.items() if v.ndim == 2)
    state[first] = torch.zeros(state[first].shape[0] + 1, state[first].shape[1])
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return _resaved(folder, "model.pt", buffer.getvalue())


def _edit_params(folder: Path, **params: object) -> Path:
    meta = json.loads((folder / "estimator.json").read_text())
    meta["params"].update(params)
    (folder / "estimator.json").write_text(json.dumps(meta))
    return folder


def _corrupt_cell(run: Path) -> Path:
    cell = sorted((run / "cells").glob("*.json"))[0]
    cell.write_bytes(cell.read_bytes()[:100])
    return run


def _one_class(ctx: Ctx) -> Path:
    path = ctx.tmp / "one.csv"
    pd.read_csv(ctx.csv).assign(label0=1).to_csv(path, index=False)
    return path


Build = Callable[[Ctx], list]
CASES: dict[str, tuple[Build, str]] = {
    # ---- training settings ---------------------------------------------------------------
    "epochs 0": (lambda c: c.train("--epochs", 0), "'epochs' must be >= 1"),
    "lr inf": (lambda c: c.train("--lr", "inf"), "'lr' must be a finite number"),
    "lr nan": (lambda c: c.train("--lr", "nan"), "'lr' must be a finite number"),
    "lr negative": (lambda c: c.train("--lr", "-0.1"), "'lr' must be > 0"),
    "lr not a number": (lambda c: c.train("--lr", "fast"), "--lr"),
    "batch size 0": (lambda c: c.train("--batch-size", 0), "'batch_size' must be >= 1"),
    "patience negative": (lambda c: c.train("--patience", -1), "'patience'"),
    "grad clip 0": (lambda c: c.train("--grad-clip", 0), "'grad_clip' must be > 0"),
    "weight decay negative": (lambda c: c.train("--weight-decay", -1), "'weight_decay'"),
    "unknown monitor": (lambda c: c.train("--monitor", "auc"), "'monitor'"),
    "unknown device": (lambda c: c.train("--device", "tpu"), "device"),
    "negative split seed": (lambda c: c.train("--split-seed", -1), "'split_seed'"),
    "fractions over 1": (lambda c: c.train("--fractions", 0.5, 0.6, 0.1), "fractions"),
    "two fractions": (lambda c: c.train("--fractions", 0.5, 0.5), "fractions"),
    "unknown model": (lambda c: c.train("--model", "mmoee"), "mmoee"),
    "misspelt hyperparameter": (lambda c: c.train("--model", "mmoe:n_expert=4"), "n_expert"),
    "unclosed list in a model": (
        lambda c: c.train("--model", "mmoe:expert_hidden=[16"),
        "expert_hidden",
    ),
    "model setting without value": (lambda c: c.train("--model", "mmoe:n_experts"), "n_experts"),
    "unknown strategy": (lambda c: c.train("--strategy", "joint2"), "joint2"),
    "negative task weights": (lambda c: c.train("--strategy", "joint:weights=[-1,1]"), "weights"),
    "NaN task weight": (lambda c: c.train("--strategy", "joint:weights=[.nan,1]"), "weights"),
    "too few task weights": (lambda c: c.train("--strategy", "joint:weights=[1]"), "weights"),
    "unknown bad_values": (lambda c: c.train("--bad-values", "drop"), "'bad_values'"),
    "unknown encoding": (lambda c: c.train("--encoding", "utf-9"), "utf-9"),
    # ---- output folders ------------------------------------------------------------------
    "--out is a file": (lambda c: c.train(out=c.write("taken.txt", "x")), "taken.txt"),
    "--out inside a file": (lambda c: c.train(out=c.write("f.txt", "x") / "m"), "f.txt"),
    # ---- data ----------------------------------------------------------------------------
    "data path missing": (lambda c: c.train(data=c.tmp / "nowhere.csv"), "nowhere.csv"),
    "unsupported extension": (lambda c: c.train(data=c.write("d.xlsx", "a")), "d.xlsx"),
    "label not in data": (
        lambda c: ["train", c.csv, "--labels", "label9", "--out", c.tmp / "m"],
        "label9",
    ),
    "label listed twice": (
        lambda c: ["train", c.csv, "--labels", "label0", "label0", "--out", c.tmp / "m"],
        "label0",
    ),
    "text in a numeric column": (lambda c: c.train(data=c.csv_with("x0", 5, "oops")), "'x0'"),
    "number beyond float32": (lambda c: c.train(data=c.csv_with("x1", 7, 1e308)), "'x1'"),
    "infinite value": (lambda c: c.train(data=c.csv_with("x2", 9, "inf")), "'x2'"),
    "-1 in a binary label": (lambda c: c.train(data=c.csv_with("label0", 3, -1)), "label0"),
    "stray text in a binary label": (
        lambda c: c.train(data=c.csv_with("label1", 3, "yes")),
        "label1",
    ),
    "not UTF-8": (
        lambda c: c.train(data=c.write("latin.csv", b"x0,label0,label1\n1,0,1\ncaf\xe9,1,0\n")),
        "latin.csv",
    ),
    "empty file": (lambda c: c.train(data=c.write("empty.csv", "")), "empty.csv"),
    "header only": (lambda c: c.train(data=c.write("head.csv", "x0,label0,label1\n")), "head.csv"),
    "too few rows to split": (
        lambda c: c.train(data=c.write("tiny.csv", "x0,label0,label1\n1,0,1\n2,1,0\n3,0,1\n")),
        "split",
    ),
    "one class only": (lambda c: c.train(data=_one_class(c)), "label0"),
    # ---- predict: the model folder -------------------------------------------------------
    "predict: no such folder": (lambda c: c.predict(c.tmp / "nomodel"), "nomodel"),
    "predict: not a model folder": (
        lambda c: c.predict(c.write("x.txt", "x").parent),
        "estimator.json is missing",
    ),
    "predict: estimator.json empty": (
        lambda c: c.predict(_damage(c.model / "estimator.json", "empty")),
        "estimator.json",
    ),
    "predict: estimator.json truncated": (
        lambda c: c.predict(_damage(c.model / "estimator.json", "truncated")),
        "estimator.json",
    ),
    "predict: model.pt missing": (
        lambda c: c.predict(_damage(c.model / "model.pt", "missing")),
        "model.pt is missing",
    ),
    "predict: model.pt empty": (
        lambda c: c.predict(_damage(c.model / "model.pt", "empty")),
        "model.pt is truncated",
    ),
    "predict: model.pt truncated": (
        lambda c: c.predict(_damage(c.model / "model.pt", "truncated")),
        "model.pt is truncated",
    ),
    "predict: model.pt changed": (
        lambda c: c.predict(_damage(c.model / "model.pt", "flipped")),
        "model.pt was changed",
    ),
    "predict: preprocessor.json missing": (
        lambda c: c.predict(_damage(c.model / "preprocessor.json", "missing")),
        "preprocessor.json is missing",
    ),
    "predict: preprocessor.json changed": (
        lambda c: c.predict(_damage(c.model / "preprocessor.json", "flipped")),
        "preprocessor.json was changed",
    ),
    "predict: history.json truncated": (
        lambda c: c.predict(_damage(c.model / "history.json", "truncated")),
        "history.json is truncated",
    ),
    "predict: NaN weights": (lambda c: c.predict(_nan_weights(c.model)), "non-finite weights"),
    "predict: weights of another shape": (
        lambda c: c.predict(_other_shapes(c.model)),
        "incompatible shapes",
    ),
    "predict: crafted preprocessor": (
        lambda c: c.predict(_resaved(c.model, "preprocessor.json", b'{"format": 1}')),
        "preprocessor.json",
    ),
    "predict: edited settings": (
        lambda c: c.predict(_edit_params(c.model, lr=-1)),
        "estimator.json",
    ),
    "predict: unknown model name": (
        lambda c: c.predict(_edit_params(c.model, model="gone")),
        "estimator.json",
    ),
    # ---- predict: the data and --out -----------------------------------------------------
    "predict: --out is a folder": (
        lambda c: ["predict", c.model, c.csv, "--out", c.tmp],
        "is a folder",
    ),
    "predict: a feature missing": (
        lambda c: c.predict(c.model, data=c.csv_with("x0", 0, 1.0, drop=("x1",))),
        "x1",
    ),
    "predict: stray text cell": (
        lambda c: c.predict(
            c.model, data=c.write("new.csv", "x0,x1,x2\n0.1,0.2,0.3\n0.4,oops,0.5\n")
        ),
        "'x1' of 'new.csv' holds declared numeric values but 1 non-numeric cell",
    ),
    "predict: not UTF-8": (
        lambda c: c.predict(c.model, data=c.write("new.csv", b"x0,x1,x2\n0.1,\xff,0.3\n")),
        "new.csv",
    ),
    "predict: unknown encoding": (lambda c: c.predict(c.model, "--encoding", "nope"), "nope"),
    # ---- compare: command line -----------------------------------------------------------
    "compare: --rows 3": (lambda c: c.compare("--rows", 3), "'n_rows' must be >= 10"),
    "compare: --jobs 0": (lambda c: c.compare("--jobs", 0), "--jobs"),
    "compare: correlation 2": (lambda c: c.compare("--correlations", 2), "'correlations'"),
    "compare: seeds twice": (lambda c: c.compare("--seeds", 1, 1), "seeds"),
    "compare: negative synthetic noise": (
        lambda c: c.compare("--dataset-option", "noise=-1"),
        "'noise' must be >= 0",
    ),
    "compare: synthetic noise as text": (
        lambda c: c.compare("--dataset-option", "noise=abc"),
        "'noise'",
    ),
    "compare: unknown synthetic option": (
        lambda c: c.compare("--dataset-option", "nois=1"),
        "Did you mean 'noise'?",
    ),
    "compare: encoding of built-in data": (
        lambda c: c.compare("--encoding", "latin-1"),
        "encoding only reads your own files",
    ),
    "compare: --out is a file": (
        lambda c: c.compare("--out", c.write("taken", "x")),
        "is an existing file",
    ),
    "compare: files without labels": (
        lambda c: ["compare", c.csv, "--models", "mmoe"],
        "--labels",
    ),
    "compare: --resume a folder without a grid": (
        lambda c: ["compare", "--resume", c.tmp],
        "config.json is missing",
    ),
    "compare: --resume a damaged config.json": (
        lambda c: ["compare", "--resume", c.write("config.json", '{"data": ').parent],
        "config.json",
    ),
    # ---- compare: config files -----------------------------------------------------------
    "config: text among fractions": (
        lambda c: c.config("data: synthetic\nmodels: [mmoe]\nfractions: [0.5, 'a', 0.5]\n"),
        "'fractions'",
    ),
    "config: data is a number": (lambda c: c.config("data: 42\nmodels: [mmoe]\n"), "'data'"),
    "config: epochs as text": (
        lambda c: c.config("data: synthetic\nmodels: [mmoe]\nepochs: ten\n"),
        "'epochs'",
    ),
    "config: unknown key": (
        lambda c: c.config("data: synthetic\nmodels: [mmoe]\nepoch: 3\n"),
        "'epoch'",
    ),
    "config: model params not a mapping": (
        lambda c: c.config("data: synthetic\nmodels: [{model: mmoe, params: 3}]\n"),
        "'params' of model 'mmoe'",
    ),
    "config: a date value": (
        lambda c: c.config(
            "data: census-income\nmodels: [mmoe]\ndataset_options: {group: 2020-01-01}\n"
        ),
        "not plain text",
    ),
    "config: not a mapping": (lambda c: c.config("- mmoe\n- ple\n"), "grid.yaml"),
    "config: YAML syntax": (
        lambda c: c.config("data: synthetic\nmodels: [mmoe\n"),
        "cannot parse",
    ),
    "config: recursive alias": (
        lambda c: c.config("data: synthetic\nmodels: [mmoe]\nx: &a [*a]\n"),
        "aliases",
    ),
    "config: not UTF-8": (lambda c: c.config(b"data: synthetic\nmodels: [mm\xf6e]\n"), "grid.yaml"),
    "config: TOML syntax": (
        lambda c: c.config('data = "synthetic"\nmodels = [mmoe]\n', ".toml"),
        "grid.toml",
    ),
    "config: other extension": (lambda c: c.config("{}", ".json"), "grid.json"),
    "config: label fractions a number": (
        lambda c: c.config("data: synthetic\nmodels: [mmoe]\nlabel_fractions: 5\n"),
        "label_fractions",
    ),
    "config: tune not a mapping": (
        lambda c: c.config("data: synthetic\nmodels: [mmoe]\ntune: lots\n"),
        "tune",
    ),
    "config: negative tuning budget": (
        lambda c: c.config("data: synthetic\nmodels: [mmoe]\ntune: {trials: -1}\n"),
        "trials",
    ),
    "compare: label fraction above 1": (
        lambda c: c.compare("--label-fractions", "label0=2"),
        "label",
    ),
    "compare: label fraction without task": (
        lambda c: c.compare("--label-fractions", "0.5"),
        "label",
    ),
    # ---- tune and train --params -----------------------------------------------------------
    "tune: no trials": (
        lambda c: ["tune", c.csv, "--labels", *LABELS, "--model", "mmoe", "--trials", 0],
        "trials",
    ),
    "tune: --out is a file": (
        lambda c: [
            "tune",
            c.csv,
            "--labels",
            *LABELS,
            "--model",
            "mmoe",
            "--trials",
            2,
            "--out",
            c.write("taken", "x"),
        ],
        "taken",
    ),
    "train: --params file missing": (
        lambda c: c.train("--params", c.tmp / "best.json"),
        "best.json",
    ),
    "train: --params file truncated": (
        lambda c: c.train("--params", c.write("best.json", '{"model": "mm')),
        "best.json",
    ),
    # ---- report --------------------------------------------------------------------------
    "report: not a run folder": (lambda c: ["report", c.tmp], "config.json is missing"),
    "report: metric no task reports": (
        lambda c: ["report", c.run, "--metric", "rmse"],
        "'rmse' is not reported by any task",
    ),
    "report: corrupted cell": (lambda c: ["report", _corrupt_cell(c.run)], ".json' is corrupted"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_input_gives_one_clear_line(name, tmp_path, request, capsys):
    build, needle = CASES[name]
    argv = build(Ctx(tmp_path, request))
    assert_clear_error(argv, capsys, needle)
    assert not (tmp_path / "m").exists()  # nothing saved for a refused training
