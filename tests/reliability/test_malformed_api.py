"""Malformed inputs through the Python API: each raises a specific mtlkit exception with one
line naming the file, column or setting."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reliability_helpers import LABELS, MAX_MESSAGE

from mtlkit.data.loading import load_features, load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.splits import check_splits, split_table
from mtlkit.data.streaming_table import csv_to_parquet, stream_tables
from mtlkit.errors import ConfigError, DataError, ModelFileError
from mtlkit.experiments.choices import parse_choice
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.config_files import load_config_file, read_yaml
from mtlkit.files import check_output_file, check_output_folder
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.settings import TrainConfig


def _est(**params) -> MultiTaskEstimator:
    return MultiTaskEstimator("shared_bottom", **{"labels": LABELS, "progress": False, **params})


def _with(frame: pd.DataFrame, column: str, row: int, value: object) -> pd.DataFrame:
    frame = frame.astype({column: object})
    frame.loc[row, column] = value
    return frame


def _write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _parquet(tmp: Path, frame: pd.DataFrame) -> Path:
    frame.to_parquet(tmp / "d.parquet")
    return tmp / "d.parquet"


def _empty_validation(frame: pd.DataFrame) -> None:
    train, val, test = split_table(load_tables(frame, LABELS), seed=0)
    val.masks["label1"][:] = False
    check_splits(train, val, test)


def _tampered_preprocessor(tmp: Path, saved: Path) -> None:
    state = json.loads((saved / "preprocessor.json").read_text())
    del state["numeric"]
    Preprocessor.load(_write(tmp, "p.json", json.dumps(state)))


Call = Callable[[Path, pd.DataFrame, Callable[[], Path]], object]
CASES: dict[str, tuple[Call, type[Exception], str]] = {
    "lr infinite": (lambda t, f, m: _est(lr=float("inf")).check_params(), ConfigError, "'lr'"),
    "epochs 0": (lambda t, f, m: _est(epochs=0).fit(f), ConfigError, "'epochs'"),
    "NaN task weight": (
        lambda t, f, m: _est(strategy_params={"weights": [float("nan"), 1.0]}).check_params(),
        ConfigError,
        "'weights'",
    ),
    "negative task weight": (
        lambda t, f, m: _est(strategy_params={"weights": [-1.0, 1.0]}).check_params(),
        ConfigError,
        "'weights'",
    ),
    "hyperparameters as a dict": (
        lambda t, f, m: _est(model_params={"bottom_hidden": [16]}),
        ConfigError,
        "'model_params'",
    ),
    "hyperparameter named like a method": (
        lambda t, f, m: _est().set_params(fit=3),
        ConfigError,
        "'fit'",
    ),
    "unknown bad_values": (
        lambda t, f, m: _est(bad_values="drop").check_params(),
        ConfigError,
        "'bad_values'",
    ),
    "unknown encoding": (
        lambda t, f, m: _est(encoding="utf-9").check_params(),
        ConfigError,
        "utf-9",
    ),
    "missing_labels not a list": (
        lambda t, f, m: _est(missing_labels={"a": 1}).check_params(),
        ConfigError,
        "'missing_labels'",
    ),
    "text in a numeric feature": (
        lambda t, f, m: _est().fit(_with(f, "x0", 20, "oops")),
        DataError,
        "'x0'",
    ),
    "-1 in a label without missing_labels": (
        lambda t, f, m: _est().fit(_with(f, "label1", 5, -1)),
        DataError,
        "missing_labels=[-1]",
    ),
    "infinite y in fit(X, y)": (
        lambda t, f, m: _est(labels=None).fit(
            f[["x0", "x1", "x2"]], f[LABELS].astype(float).replace({1.0: np.inf})
        ),
        DataError,
        "label0",
    ),
    "label in drop_columns": (
        lambda t, f, m: load_tables(f, LABELS, drop_columns=["label0"]),
        DataError,
        "drop_columns",
    ),
    "streamed label in drop_columns": (
        lambda t, f, m: stream_tables(_parquet(t, f), LABELS, drop_columns=["label1"]),
        DataError,
        "drop_columns",
    ),
    "streamed unknown bad_values": (
        lambda t, f, m: stream_tables(_parquet(t, f), LABELS, bad_values="skip"),
        ConfigError,
        "bad_values",
    ),
    "csv_to_parquet of latin-1 text": (
        lambda t, f, m: csv_to_parquet(_write(t, "l.csv", b"a,b\ncaf\xe9,1\n"), t / "pq"),
        DataError,
        "l.csv",
    ),
    "declared numeric with text": (
        lambda t, f, m: load_features(
            _write(t, "n.csv", "x0,x1\n1,2\nn/a!,3\n"), feature_kinds={"x0": "numeric"}
        ),
        DataError,
        "'x0' of 'n.csv'",
    ),
    "validation split without labels": (
        lambda t, f, m: _empty_validation(f),
        DataError,
        "'label1' has no labelled rows in the validation split",
    ),
    "save into a file": (
        lambda t, f, m: MultiTaskEstimator.load(m()).save(_write(t, "taken", "x")),
        ConfigError,
        "taken",
    ),
    "load from nowhere": (
        lambda t, f, m: MultiTaskEstimator.load(t / "nowhere"),
        ModelFileError,
        "nowhere",
    ),
    "predict on rows lacking a feature": (
        lambda t, f, m: MultiTaskEstimator.load(m()).predict_proba(f.drop(columns=["x2"])),
        DataError,
        "'x2'",
    ),
    "tampered preprocessor state": (
        lambda t, f, m: _tampered_preprocessor(t, m()),
        DataError,
        "p.json",
    ),
    "training settings NaN": (lambda t, f, m: TrainConfig(lr=float("nan")), ConfigError, "'lr'"),
    "config data a number": (
        lambda t, f, m: CompareConfig.from_mapping({"data": 42, "models": ["mmoe"]}),
        ConfigError,
        "'data'",
    ),
    "config key a number": (
        lambda t, f, m: CompareConfig.from_mapping({"data": "synthetic", "models": ["x"], 1: 2}),
        ConfigError,
        "unknown setting 1",
    ),
    "config file of binary bytes": (
        lambda t, f, m: load_config_file(_write(t, "g.yaml", bytes(range(200, 256)))),
        ConfigError,
        "g.yaml",
    ),
    "YAML value unclosed": (
        lambda t, f, m: read_yaml("[1, 2", "--dataset-option x"),
        ConfigError,
        "--dataset-option x",
    ),
    "YAML nested too deep": (
        lambda t, f, m: read_yaml("[" * 5000 + "]" * 5000, "the setting"),
        ConfigError,
        "the setting",
    ),
    "model setting unparsable": (
        lambda t, f, m: parse_choice("mmoe:expert_hidden={", "model", "mmoe:n_experts=4"),
        ConfigError,
        "expert_hidden",
    ),
    "output file is a folder": (
        lambda t, f, m: check_output_file(t, "--out"),
        ConfigError,
        "--out",
    ),
    "output folder under a file": (
        lambda t, f, m: check_output_folder(_write(t, "f", "x") / "sub", "--out"),
        ConfigError,
        "--out",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_api_input_raises_one_clear_error(name, tmp_path, frame, request):
    call, expected, needle = CASES[name]
    model = lambda: request.getfixturevalue("model_copy")  # noqa: E731 - made only when used
    with pytest.raises(expected) as err:
        call(tmp_path, frame, model)
    message = str(err.value)
    assert needle in message
    assert "\n" not in message and len(message) < MAX_MESSAGE, message
