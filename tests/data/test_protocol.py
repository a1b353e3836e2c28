"""One data protocol: in-memory and streamed data answer the same questions alike, and only
the data layer knows which one it holds."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from parquet_files import write_parquet

from mtlkit.data import protocol, streaming_data
from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.protocol import EncodedData
from mtlkit.data.streaming_table import stream_tables
from mtlkit.errors import DataError

SRC = Path(__file__).resolve().parents[2] / "src" / "mtlkit"
DATA_TYPES = {"MultiTaskTable", "StreamingTable", "TensorData", "StreamingData"}
LABELS = ["label0", "label1"]


def _switches(text: str) -> list[str]:
    """The isinstance / issubclass calls of ``text`` that name a table or data type."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2
        ):
            names = {
                n.id if isinstance(n, ast.Name) else getattr(n, "attr", "")
                for n in ast.walk(node.args[1])
            }
            if names & DATA_TYPES:
                found.append(ast.unparse(node))
    return found


def test_the_switch_finder_finds_the_switches_it_forbids():
    assert _switches("if isinstance(X, StreamingTable): pass")
    assert _switches("if isinstance(\n    X, (MultiTaskTable, streaming.StreamingTable)\n): pass")
    assert _switches("complete = isinstance(train, TensorData) and train.mask.all()")
    assert not _switches("if isinstance(value, Mapping): pass")


def test_no_isinstance_on_in_memory_or_streamed_types_outside_the_data_layer():
    found = {
        str(path.relative_to(SRC)): _switches(path.read_text(encoding="utf-8"))
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] != "data"
    }
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_no_module_imports_another_modules_private_names():
    private = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mtlkit"):
                names = [a.name for a in node.names if a.name.startswith("_")]
                private += [f"{path.relative_to(SRC)}: {node.module}.{n}" for n in names]
    assert private == []


@pytest.fixture
def tables(tmp_path, frame):
    """The same rows in memory and streamed, with a preprocessor fitted on them."""
    memory = load_tables(frame, LABELS)
    streamed = stream_tables(write_parquet(tmp_path / "pq", frame), LABELS)
    return memory, streamed, protocol.fit(streamed, Preprocessor())


def test_in_memory_and_streamed_rows_answer_the_protocol_alike(tables, monkeypatch):
    memory, streamed, prep = tables
    assert protocol.fit(memory, Preprocessor()).schema() == prep.schema()
    assert protocol.tasks(memory) == protocol.tasks(streamed) == list(prep.schema().tasks)
    assert memory.feature_names == streamed.feature_names == [f"x{i}" for i in range(4)]
    encoded = [protocol.encode(memory, prep), protocol.encode(streamed, prep)]
    methods = {n for n, v in vars(EncodedData).items() if callable(v) and not n.startswith("__")}
    members = {*EncodedData.__annotations__, *methods, "__len__"}
    assert {"batches", "shard", "label_chunks", "kept_rows", "in_memory"} <= set(members)
    for data in encoded:
        assert all(hasattr(data, m) for m in members), type(data).__name__
        assert len(data) == 300 and data.num_batches(64) == 5
        assert data.to("cpu").num_batches(64) == 5
        assert not data.all_labelled()  # label1 is partial
        assert data.shard(1, 2).num_batches(64) == 5  # its share of each batch
        assert sum(len(b) for b in data.shard(1, 2).batches(64)) == 150
    assert [data.in_memory for data in encoded] == [True, False]
    (y, mask), chunks = next(encoded[0].label_chunks()), list(encoded[1].label_chunks())
    torch.testing.assert_close(torch.cat([c[0] for c in chunks]), y)
    torch.testing.assert_close(torch.cat([c[1] for c in chunks]), mask)
    # Predictions kept by a run record: all of a table's, a seeded sample of a stream's.
    monkeypatch.setattr(streaming_data, "KEPT_PREDICTIONS", 50)
    mask = mask.numpy()
    np.testing.assert_array_equal(encoded[0].kept_rows(mask), mask)
    kept = encoded[1].kept_rows(mask)
    assert (kept.sum(axis=0) == 50).all() and not (kept & ~mask).any()
    np.testing.assert_array_equal(encoded[1].kept_rows(mask), kept)


def test_split_dispatches_on_the_table_and_refuses_other_values(tables):
    memory, streamed, _ = tables
    parts = protocol.split(memory, (0.6, 0.2, 0.2), seed=0)
    assert [len(p) for p in parts] == [180, 60, 60]
    parts = protocol.split(streamed, (0.6, 0.2, 0.2), seed=0)  # whole row groups of 25 rows
    assert sum(len(p) for p in parts) == 300 and all(len(p) % 25 == 0 for p in parts)
    with pytest.raises(DataError, match="expected a MultiTaskTable .* got DataFrame"):
        protocol.split(pd.DataFrame(), (0.5, 0.5, 0.0))
    assert protocol.is_table(memory) and protocol.is_table(streamed)
    assert not protocol.is_table(pd.DataFrame())
