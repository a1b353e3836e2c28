"""Training from a stream: the same model as from the same rows in memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.stream_fit import fit_preprocessor
from mtlkit.data.stream_split import split_stream
from mtlkit.data.streaming_data import StreamingData
from mtlkit.data.streaming_table import stream_tables
from mtlkit.data.synthetic import make_synthetic
from mtlkit.errors import ConfigError, DataError
from mtlkit.models import create
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.settings import TrainConfig
from mtlkit.training.strategies import available_strategies
from mtlkit.training.strategies.base import streaming_strategies
from mtlkit.training.trainer import Trainer

LABELS = ["label0", "label1"]
SETTINGS = {"epochs": 3, "batch_size": 64, "lr": 3e-3, "patience": 0, "progress": False}


def _write(folder, frame, group_rows):
    folder.mkdir(parents=True)
    half = len(frame) // 2
    for name, part in (("a", frame.iloc[:half]), ("b", frame.iloc[half:])):
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=group_rows)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    frame = make_synthetic(1400, n_features=6, correlation=0.9, seed=0)
    frame.loc[frame.index % 3 == 0, "label1"] = np.nan  # partial labels
    return _write(root / "train", frame.iloc[:1000], 70), _write(
        root / "val", frame.iloc[1000:], 50
    )


def test_a_stream_trains_the_weights_of_the_same_rows_in_memory(folders):
    train, val = folders
    memory = MultiTaskEstimator("mmoe", n_experts=2, shuffle=False, **SETTINGS)
    memory.fit(load_tables(train, LABELS), validation=load_tables(val, LABELS))
    streamed = MultiTaskEstimator("mmoe", n_experts=2, shuffle=False, **SETTINGS)
    streamed.fit(stream_tables(train, LABELS), validation=stream_tables(val, LABELS))
    assert streamed.preprocessor_.feature_names == memory.preprocessor_.feature_names
    for name, value in memory.model_.state_dict().items():
        torch.testing.assert_close(streamed.model_.state_dict()[name], value, msg=name)
    for task in LABELS:
        last = streamed.history_.epochs[-1].val[task]
        assert last == pytest.approx(memory.history_.epochs[-1].val[task])
    predicted = streamed.predict_proba(stream_tables(val, LABELS))
    expected = memory.predict_proba(load_tables(val, LABELS))
    for task in LABELS:
        np.testing.assert_allclose(predicted[task], expected[task], rtol=1e-6)
    metrics = streamed.evaluate(stream_tables(val, LABELS))
    for task, values in memory.evaluate(load_tables(val, LABELS)).items():
        assert metrics[task] == pytest.approx(values)


def test_a_shuffled_stream_learns(folders):
    train, val = folders
    est = MultiTaskEstimator("shared_bottom", **{**SETTINGS, "epochs": 6})
    est.fit(stream_tables(train, LABELS))  # validation: a share of the row groups
    assert est.evaluate(stream_tables(val, LABELS))["label0"]["roc_auc"] > 0.75


def test_row_group_split_is_seeded_disjoint_and_near_the_fractions(folders):
    table = stream_tables(folders[0], LABELS)  # 16 row groups of at most 70 rows
    parts = split_stream(table, (0.6, 0.2, 0.2), seed=3)
    assert sum(p.num_rows for p in parts) == table.num_rows
    ids = [{(g.path, g.fragment.row_groups[0].id) for g in p.row_groups} for p in parts]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    for part, share in zip(parts, (0.6, 0.2, 0.2)):
        assert abs(part.num_rows - share * table.num_rows) <= 70
    again = split_stream(table, (0.6, 0.2, 0.2), seed=3)
    assert [p.row_groups for p in again] == [p.row_groups for p in parts]
    assert [p.row_groups for p in split_stream(table, (0.6, 0.2, 0.2), seed=4)] != [
        p.row_groups for p in parts
    ]
    with pytest.raises(DataError, match="too few to give the validation split"):
        split_stream(table, (0.98, 0.01, 0.01))


def test_a_strategy_that_needs_rows_in_memory_says_which_stream(folders):
    est = MultiTaskEstimator("mmoe", strategy="alternating", **SETTINGS)
    with pytest.raises(
        ConfigError, match=r"'alternating' needs the training data in memory.*joint"
    ):
        est.fit(stream_tables(folders[0], LABELS), validation=stream_tables(folders[1], LABELS))


@pytest.fixture(scope="module")
def encoded_stream(folders):
    """The training and validation folders as encoded streams, and their schema."""
    train = stream_tables(folders[0], LABELS)
    prep = fit_preprocessor(train)
    val = stream_tables(folders[1], LABELS)
    return StreamingData(train, prep), StreamingData(val, prep), prep.schema()


@pytest.mark.parametrize("strategy", list(available_strategies()))
def test_every_strategy_trains_from_a_stream_or_refuses_it_before_training(
    encoded_stream, strategy
):
    train, val, schema = encoded_stream
    torch.manual_seed(0)
    model = create("shared_bottom", schema)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=256, progress=False), strategy)
    if strategy not in streaming_strategies():
        with pytest.raises(ConfigError, match=f"'{strategy}' needs the training data in memory"):
            trainer.fit(train, val)
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
        return
    trainer.fit(train, val)
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
