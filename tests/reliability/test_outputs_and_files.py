"""Writing files, exporting, config and settings files, compat (issue #23): nothing written
over a saved model, nothing lost when converting, no traceback for a damaged or oversized
input, user text escaped in the Markdown mtlkit writes."""

from __future__ import annotations

import gzip
import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reliability_helpers import LABELS, MAX_MESSAGE, assert_clear_error

from mtlkit import compat
from mtlkit.data.loading import load_tables
from mtlkit.data.streaming_table import csv_to_parquet, stream_tables
from mtlkit.errors import DataError, DataWarning
from mtlkit.export.contract import contract_readme

BEST = {
    "model": "shared_bottom",
    "model_params": {},
    "strategy": "joint",
    "strategy_params": {},
    "train_params": {"epochs": 1},
}


def _fingerprints(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _best(tmp: Path, **changes: object) -> Path:
    path = tmp / "best.json"
    path.write_text(json.dumps({**BEST, **changes}))
    return path


def _train(tmp: Path, csv: Path, *extra: object) -> list:
    return ["train", csv, "--labels", *LABELS, "--out", tmp / "m", *extra, "--quiet"]


def _config(tmp: Path, name: str, text: str) -> list:
    (tmp / name).write_text(text)
    return ["compare", "--config", tmp / name, "--out", tmp / "r"]


def _nested_toml(depth: int) -> str:
    return "data = 'synthetic'\nmodels = ['mmoe']\nx = " + "[" * depth + "]" * depth + "\n"


# (command line from (tmp, model folder, data file), the text the one error line must hold)
Build = Callable[[Path, Path, Path], list]
CLI_CASES: dict[str, tuple[Build, str]] = {
    "export: torchscript over the model's weights": (
        lambda t, m, d: ["export", m, "--format", "torchscript", "--out", m / "model.pt"],
        "is a file of the model saved in",
    ),
    "export: onnx over the preprocessor (a .json name)": (
        lambda t, m, d: ["export", m, "--out", m / "preprocessor.json"],
        "must end in .onnx",
    ),
    "export: onnx to a .pt name": (
        lambda t, m, d: ["export", m, "--out", t / "serving" / "model.pt"],
        "must end in .onnx",
    ),
    "export: torchscript to an .onnx name": (
        lambda t, m, d: ["export", m, "--format", "torchscript", "--out", t / "model.onnx"],
        "must end in .pt",
    ),
    "predict: --out over the model's history (not .csv)": (
        lambda t, m, d: ["predict", m, d, "--out", m / "history.json"],
        "must end in .csv",
    ),
    "compare: --out a model folder": (
        lambda t, m, d: ["compare", "synthetic", "--rows", 200, "--models", "mmoe", "--out", m],
        "holds a saved model",
    ),
    "tune: --out a model folder": (
        lambda t, m, d: ["tune", d, "--labels", *LABELS, "--trials", 2, "--out", m],
        "holds a saved model",
    ),
    "train --params: misspelt training setting": (
        lambda t, m, d: _train(t, d, "--params", _best(t, train_params={"epochz": 1})),
        "Did you mean 'epochs'?",
    ),
    "train --params: model_params a list": (
        lambda t, m, d: _train(t, d, "--params", _best(t, model_params=[])),
        "'model_params' in",
    ),
    "train --params: train_params null": (
        lambda t, m, d: _train(t, d, "--params", _best(t, train_params=None)),
        "'train_params' in",
    ),
    "train --params: model not a name": (
        lambda t, m, d: _train(t, d, "--params", _best(t, model=3)),
        "'model' in",
    ),
    "config: TOML nested 3,000 levels": (
        lambda t, m, d: _config(t, "deep.toml", _nested_toml(3000)),
        "nested too deeply",
    ),
    "config: a YAML file of 2 MiB": (
        lambda t, m, d: _config(t, "big.yaml", "data: synthetic\nx: [" + "0," * (1 << 20) + "]"),
        "at most 1 MiB",
    ),
    "config: a YAML list of 120,000 values, no aliases": (
        lambda t, m, d: _config(t, "long.yaml", "data: synthetic\nx: [" + "0," * 120_000 + "]"),
        "holds more than 100,000 values (settings, not data)",
    ),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_refused_output_or_settings_file_gives_one_line(
    name, tmp_path, model_copy, good_csv, capsys
):
    before = _fingerprints(model_copy)
    message = assert_clear_error(CLI_CASES[name][0](tmp_path, model_copy, good_csv), capsys, "")
    assert CLI_CASES[name][1] in message
    assert "aliases" not in message or "alias" in name  # the cause named is the real one
    assert _fingerprints(model_copy) == before  # the saved model untouched, nothing added
    assert not (tmp_path / "m").exists() and not (tmp_path / "serving").exists()


def _gz(path: Path, frame: pd.DataFrame) -> Path:
    path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    return path


def _same_stem(tmp: Path, frame: pd.DataFrame) -> Path:
    frame.iloc[:100].to_csv(tmp / "x.csv", index=False)
    _gz(tmp / "x.csv.gz", frame.iloc[100:160])
    return tmp


def _truncated_gz(tmp: Path, frame: pd.DataFrame) -> Path:
    path = _gz(tmp / "cut.csv.gz", frame)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


Call = Callable[[Path, pd.DataFrame], object]
API_CASES: dict[str, tuple[Call, str]] = {
    "csv_to_parquet: x.csv and x.csv.gz to one x.parquet": (
        lambda t, f: csv_to_parquet(_same_stem(t, f), t / "pq"),
        "would both be written to",
    ),
    "csv_to_parquet: a truncated .csv.gz": (
        lambda t, f: csv_to_parquet(_truncated_gz(t, f), t / "pq"),
        "cut.csv.gz",
    ),
    "load_tables: a truncated .csv.gz": (
        lambda t, f: load_tables(_truncated_gz(t, f), LABELS),
        "cut.csv.gz",
    ),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_damaged_or_clashing_csv_gives_one_data_error(name, tmp_path, frame):
    call, needle = API_CASES[name]
    with pytest.raises(DataError) as err:
        call(tmp_path, frame)
    message = str(err.value)
    assert needle in message and "\n" not in message and len(message) < MAX_MESSAGE, message
    assert not list(tmp_path.glob("pq/*.parquet"))  # nothing half converted


@pytest.mark.parametrize("stream", [False, True], ids=["loaded", "streamed"])
@pytest.mark.parametrize(
    ("columns", "warned"),
    [
        ((["x0"], ["x1"]), True),  # nothing in common
        ((["x0"], ["x1"], ["x0", "x1"]), False),  # the third file links them
        ((["x0"], ["x0"], ["x2"], ["x2"]), True),  # two groups, each linked inside
        ((["x0", "x1"], ["x1", "x2"]), False),
    ],
)
def test_files_sharing_no_feature_column_are_warned_about(columns, warned, stream, tmp_path, frame):
    paths = []
    for i, names in enumerate(columns):
        part = frame.iloc[i * 40 : (i + 1) * 40][[*names, *LABELS]]
        paths.append(tmp_path / f"f{i}.{'parquet' if stream else 'csv'}")
        part.to_parquet(paths[-1], index=False) if stream else part.to_csv(paths[-1], index=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        (stream_tables if stream else load_tables)(paths, LABELS)
    found = [str(w.message) for w in seen if issubclass(w.category, DataWarning)]
    assert len(found) == warned, found
    if warned:
        assert "no feature column in common" in found[0] and "f0." in found[0]


NASTY = ["cat|pipe", "new\nline", "<script>alert(1)</script>", "back`tick"]


def test_export_readme_escapes_column_and_task_names():
    state = {
        "hash_buckets": 100,
        "categorical": [{"name": NASTY[0], "vocab": ["a"]}, {"name": NASTY[3], "hashed": True}],
        "numeric": [
            {"name": NASTY[1], "mean": 0.0, "std": 1.0, "indicator": True},
            {"name": NASTY[2], "mean": 1.0, "std": 2.0, "indicator": False},
        ],
    }
    text = contract_readme(state, [], ["a|b"], "m|x.onnx", "m.preprocessor.json", "onnx", "")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 + 2 + 3 + 1 + 3  # headers, 2 categorical, 2 numeric + 1 indicator...
    for row in rows:  # every row keeps its 2 or 3 cells: no '|' of a name splits it
        cells = row.replace("\\|", "").count("|")
        assert cells in (3, 4), row
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "cat\\|pipe" in text and "new line" in text and "back\\`tick" in text
    assert text.splitlines()[0].startswith("# m\\|x.onnx")


@pytest.fixture
def compat_data(frame):
    data = frame.copy()
    data["score"] = np.linspace(-2.0, 3.0, len(data))  # a regression label
    data.loc[0, "score"] = -1.0  # a value, not a missing label
    return data


def test_two_compat_trainings_keep_their_own_plots(frame, tmp_path):
    first = compat.mmoe_model(3).train(
        frame, LABELS, "loss", epochs=1, verbose=0, plot_dir=tmp_path
    )
    kept = first.plots["loss"].read_bytes()
    second = compat.mmoe_model(3).train(
        frame, LABELS, ["loss"], epochs=2, verbose=0, plot_dir=tmp_path
    )
    assert list(first.plots) == ["loss"]  # a single string is one plot name, not letters
    assert first.plots["loss"] != second.plots["loss"]
    assert first.plots["loss"].read_bytes() == kept  # the first training's plot unchanged
    assert second.plots["loss"].is_file() and second.plots["loss"].parent.parent == tmp_path


def test_compat_regression_label_and_single_label_string(compat_data, tmp_path, capsys):
    path = tmp_path / "reg.csv"
    compat_data.drop(columns=["label1"]).to_csv(path, index=False)
    data = compat.get_data(path, labels=["score", "label0"])
    got, want = data["score"].dropna().round(6), compat_data["score"].iloc[1:].round(6)
    assert sorted(got) == sorted(want)  # the values, not class ids (-1 in a file: missing)
    assert data["score"].isna().sum() == 1
    table = compat.to_table(compat_data, "score")  # one label given as a string: not s, c...
    assert table.task_names == ["score"] and table.masks["score"].all()  # -1.0 is a value
    result = compat.mmoe_model(3).train(data, ["score", "label0"], [], epochs=1, verbose=0)
    assert "rmse" in result.test_metrics["score"]
    result = compat.mmoe_model(4).train(data, "label0", [], epochs=1, verbose=0)
    assert list(result.test_metrics) == ["label0"]
