"""``--stream``: mtlkit train, predict and compare on Parquet data read batch by batch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mtlkit.cli.main import main
from mtlkit.data.synthetic import make_synthetic
from mtlkit.evaluation.run_record import RunRecord

FAST = ["--epochs", "3", "--batch-size", "128", "--quiet"]


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pq")
    frame = make_synthetic(2400, n_features=6, correlation=0.9, seed=0)
    frame.loc[frame.index % 4 == 0, "label1"] = np.nan
    for name, part in (("a", frame.iloc[:1200]), ("b", frame.iloc[1200:])):
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=100)
    return folder


def test_train_and_predict_stream_parquet_data(parquet, tmp_path, capsys):
    model = tmp_path / "model"
    labels = ["--labels", "label0", "label1"]
    assert main(["train", str(parquet), *labels, "--stream", "--out", str(model), *FAST]) == 0
    metrics = json.loads((model / "test_metrics.json").read_text())
    assert metrics["label0"]["roc_auc"] > 0.7
    out = tmp_path / "scores.csv"
    assert main(["predict", str(model), str(parquet), "--stream", "--out", str(out)]) == 0
    scores = pd.read_csv(out)
    assert len(scores) == 2400 and scores["source"].str.endswith("a.parquet").sum() == 1200
    in_memory = tmp_path / "memory.csv"
    assert main(["predict", str(model), str(parquet), "--no-stream", "--out", str(in_memory)]) == 0
    expected = pd.read_csv(in_memory)
    columns = ["label0", "label1"]
    np.testing.assert_allclose(scores[columns], expected[columns], rtol=1e-5)


def test_compare_streams_parquet_data(parquet, tmp_path, capsys):
    out = tmp_path / "grid"
    grid = ["compare", str(parquet), "--labels", "label0", "label1", "--models", "mmoe"]
    assert main([*grid, "--stream", "--seeds", "0", "--out", str(out), *FAST]) == 0
    records = [RunRecord.from_dict(json.loads(p.read_text())) for p in (out / "cells").iterdir()]
    assert len(records) == 2  # single_task and mmoe
    for record in records:
        assert record.metrics["test"]["label0"]["roc_auc"] > 0.7
        y, scores = record.predictions["label1"]
        assert 0 < len(y) == len(scores) < 2400 * 0.75  # the test split's labelled rows
    assert json.loads((out / "config.json").read_text())["stream"] is True
