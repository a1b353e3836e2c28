"""Scoring and training the same in memory and streamed (issue #23): a category in another
spelling is the same category, a label column is not needed to score, a damaged or empty
file is named in one line worded for the command run, labels that fell into one split are
said to have, and test metrics that cannot be computed are null with a warning."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from reliability_helpers import LABELS, assert_clear_error, run_cli

from mtlkit.data.loading import load_features, load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.training.estimator import MultiTaskEstimator

MODES = ["--stream", "--no-stream"]


def _flag_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A Parquet-like frame whose categorical feature ``flag`` holds booleans that the
    labels depend on (its two ids must matter to the scores)."""
    rng = np.random.default_rng(seed)
    flag = rng.random(n) < 0.5
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "flag": flag,
            "x": x,
            "label0": (x + 2 * flag + rng.normal(size=n) > 1).astype(int),
            "label1": (x - flag + rng.normal(size=n) > 0).astype(int),
        }
    )


@pytest.fixture(scope="module")
def flag_model(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A model fitted on Parquet booleans, and the frame of its training rows."""
    folder = tmp_path_factory.mktemp("flags")
    frame = _flag_frame()
    frame.to_parquet(folder / "train.parquet", index=False)
    est = MultiTaskEstimator(
        "shared_bottom", labels=LABELS, epochs=1, progress=False, diagnostic_batches=0
    )
    return est.fit(folder / "train.parquet").save(folder / "model"), frame


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=LABELS)


# ---- one category in every spelling ---------------------------------------------------------
#: How the rows to score spell the booleans the model was fitted on.
SPELLINGS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "0/1 integers": lambda f: f.astype(np.int64),
    "0.0/1.0 floats": lambda f: f.astype(np.float64),
    "'1'/'0' text": lambda f: f.astype(int).astype(str),
    "'1.0'/'0.0' text": lambda f: f.astype(float).astype(str),
    "'true'/'false' text": lambda f: f.map({True: "true", False: "false"}),
    "'TRUE'/'False' text": lambda f: f.map({True: "TRUE", False: "False"}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_a_category_in_another_spelling_scores_as_that_category(
    spelling, mode, flag_model, tmp_path, capsys
):
    model, frame = flag_model
    original, respelt = tmp_path / "bools.parquet", tmp_path / "respelt.parquet"
    _features(frame).to_parquet(original, index=False)
    _features(frame).assign(flag=SPELLINGS[spelling](frame["flag"])).to_parquet(respelt)
    scores = []
    for data in (original, respelt):
        out = tmp_path / f"{data.stem}.csv"
        code, printed = run_cli(["predict", model, data, "--out", out, mode], capsys)
        assert code == 0, printed
        scores.append(pd.read_csv(out)[LABELS].to_numpy())
    np.testing.assert_allclose(scores[1], scores[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("stream", [False, True], ids=["loaded", "streamed"])
def test_fitting_counts_every_spelling_of_a_category_as_one(stream, tmp_path):
    """Training rows that spell one truth value several ways give one vocabulary entry, in
    memory and in the one-pass streamed fit."""
    from mtlkit.data import protocol
    from mtlkit.data.streaming_table import stream_tables

    frame = _flag_frame()
    spelt = np.array(["false", "true", "FALSE", "True"], dtype=object)
    frame["flag"] = spelt[frame["flag"].astype(int) + 2 * (frame.index % 2)]
    path = _parquet(tmp_path, frame)
    kinds = {"flag": "categorical"}
    read = stream_tables if stream else load_tables
    prep = protocol.fit(read(path, LABELS, feature_kinds=kinds), Preprocessor())
    assert prep.schema().cat_cardinalities[0] == 3  # two categories and the unseen id 0


# ---- models saved before category keys ------------------------------------------------------
def _saved_before_keys(tmp: Path, column: pd.Series, **settings: object) -> Path:
    """A preprocessor file as mtlkit wrote it before category keys: vocabularies of the
    values' text (``str(True) == "True"``) and no ``category_keys`` entry."""
    table = load_tables(
        pd.DataFrame({"c": column, "label0": [0, 1] * (len(column) // 2)}), ["label0"]
    )
    prep = Preprocessor({"c": "categorical"}, **settings).fit(table)
    path = tmp / "preprocessor.json"
    prep.save(path)
    state = json.loads(path.read_text())
    state.pop("category_keys", None)
    for feature in state["categorical"]:
        if "vocab" in feature:
            feature["vocab"] = sorted({str(v) for v in column.dropna()})
    path.write_text(json.dumps(state))
    return path


def _ids(path: Path, values: list) -> list[int]:
    features = load_features(pd.DataFrame({"c": pd.Series(values, dtype=object)}))
    data = Preprocessor.load(path).transform(features, require_labels=False)
    return data.x_cat[:, 0].tolist()


# (training values, values to score, their ids: before keys, unseen values had id 0)
OLD_FILES: dict[str, tuple[list, list, list[int]]] = {
    "booleans: the ids they had": ([True, False], [True, False], [2, 1]),
    "booleans scored as 0/1: their ids (0 before)": ([True, False], [1, 0], [2, 1]),
    "'1' and 'True' both in the vocabulary: each keeps its id": (
        ["1", "True", "0", "0"],
        ["1", "True", "0"],
        [2, 3, 1],
    ),
}


@pytest.mark.parametrize("name", list(OLD_FILES))
def test_a_preprocessor_saved_before_keys_scores_as_it_did(name, tmp_path):
    trained, scored, ids = OLD_FILES[name]
    path = _saved_before_keys(tmp_path, pd.Series(trained, dtype=object))
    assert _ids(path, scored) == ids


@pytest.mark.filterwarnings("ignore:categorical feature 'c' has 8 distinct values")
def test_an_old_hashed_column_hashes_the_text_it_hashed_then(tmp_path):
    values = pd.Series([f"v{i}" for i in range(6)] + ["True", "False"], dtype=object)
    path = _saved_before_keys(tmp_path, values, max_categories=2, hash_buckets=64)
    text = np.array(["True", "v3"], dtype=object)
    before = (pd.util.hash_array(text, categorize=False) % np.uint64(64)).astype(int) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _ids(path, [True, "v3"]) == before.tolist()


# ---- the command line: the same in memory and streamed ----------------------------------------
def _parquet(tmp: Path, frame: pd.DataFrame, name: str = "d.parquet", **options) -> Path:
    frame.to_parquet(tmp / name, index=False, **options)
    return tmp / name


def _junk_labels(tmp: Path, frame: pd.DataFrame) -> Path:
    """Rows to score whose (unneeded) label column holds text that is no class."""
    labels = frame["label0"].astype(str).where(frame.index != 3, "junk")
    return _parquet(tmp, frame.assign(label0=labels))


def _corrupt(tmp: Path, frame: pd.DataFrame) -> Path:
    """A Parquet file whose footer is intact but one data page's header is damaged."""
    path = _parquet(tmp, frame, "corrupt.parquet", row_group_size=24)
    column = pq.ParquetFile(path).metadata.row_group(2).column(0)
    data = bytearray(path.read_bytes())
    for i in range(column.data_page_offset, column.data_page_offset + 20):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _rare_label(tmp: Path, frame: pd.DataFrame) -> Path:
    """label1 given in 1 of 10 row groups only."""
    rows = frame.assign(label1=frame["label1"].astype(float))
    rows.loc[24:, "label1"] = np.nan
    return _parquet(tmp, rows, "rare.parquet", row_group_size=24)


@pytest.mark.parametrize("mode", MODES)
def test_scoring_ignores_a_label_column_with_junk_text(mode, saved_model, frame, tmp_path, capsys):
    data, out = _junk_labels(tmp_path, frame), tmp_path / "p.csv"
    code, printed = run_cli(["predict", saved_model, data, "--out", out, mode], capsys)
    assert code == 0, printed
    assert len(pd.read_csv(out)) == len(frame)


Build = Callable[[Path, Path, pd.DataFrame], list]
# (command line from (tmp, model folder, frame), text the one error line holds, text it must
# not hold, the modes it runs in)
CLI_CASES: dict[str, tuple[Build, str, str | None, list[str]]] = {
    "predict: corrupt Parquet page": (
        lambda t, m, f: ["predict", m, _corrupt(t, f), "--out", t / "p.csv"],
        "corrupt.parquet",
        None,
        MODES,
    ),
    "train: corrupt Parquet page": (
        lambda t, m, f: ["train", _corrupt(t, f), "--labels", *LABELS, "--out", t / "m"],
        "corrupt.parquet",
        None,
        MODES,
    ),
    "predict: a file of 0 rows": (
        lambda t, m, f: [
            "predict",
            m,
            _parquet(t, f.iloc[:0], "empty.parquet"),
            "--out",
            t / "p.csv",
        ],
        "empty.parquet' has no rows",
        "rank",
        MODES,
    ),
    # in memory, rows are split one by one, stratified on every label
    "train: a label in 1 of 10 row groups": (
        lambda t, m, f: ["train", _rare_label(t, f), "--labels", *LABELS, "--out", t / "m"],
        "its 24 labels all fell into the",
        None,
        ["--stream"],
    ),
}


@pytest.mark.parametrize(
    ("name", "mode"), [(name, mode) for name, case in CLI_CASES.items() for mode in case[3]]
)
def test_a_bad_file_gives_one_line_streamed_or_not(
    name, mode, saved_model, frame, tmp_path, capsys
):
    build, needle, absent, _ = CLI_CASES[name]
    argv = [*build(tmp_path, saved_model, frame), mode]
    message = assert_clear_error(argv, capsys, needle)
    assert absent is None or absent not in message, message
    assert not (tmp_path / "m").exists()


def test_metrics_undefined_on_a_tiny_streamed_test_split_are_null(tmp_path, capsys):
    """label0 is constant within each row group: the test split's 2 row groups hold one
    class, where ROC-AUC and PR-AUC are undefined."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(10), 30)
    classes = np.random.default_rng(0).permutation(10) < 5
    rows = pd.DataFrame({"x": rng.normal(size=300), "label0": classes[groups].astype(int)}).assign(
        label1=rng.integers(0, 2, 300)
    )
    data = _parquet(tmp_path, rows, row_group_size=30)
    argv = ["train", data, "--labels", *LABELS, "--out", tmp_path / "m", "--epochs", 1]
    code, printed = run_cli([*argv, "--stream", "--quiet"], capsys)
    assert code == 0, printed
    metrics = json.loads((tmp_path / "m" / "test_metrics.json").read_text())
    assert metrics["label0"]["roc_auc"] is None and metrics["label0"]["pr_auc"] is None
    assert isinstance(metrics["label1"]["roc_auc"], float)
    warned = [line for line in printed.splitlines() if ": warning: " in line]
    assert any("roc_auc" in line and "a class is missing" in line for line in warned), printed
