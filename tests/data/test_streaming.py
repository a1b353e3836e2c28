"""Streaming tables against the in-memory path on the same small Parquet data."""

from __future__ import annotations

import gzip
import json
import threading
from contextlib import nullcontext

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mtlkit.data.loading import load_features, load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.stream_fit import fit_preprocessor
from mtlkit.data.streaming_data import StreamingData, shard
from mtlkit.data.streaming_table import RowGroup, csv_to_parquet, stream_features, stream_tables
from mtlkit.errors import ConfigError, DataError, DataWarning
from mtlkit.models import create
from mtlkit.training.losses import masked_task_losses

LABELS = ["income", "marital", "spend"]


def _frames(people) -> dict[str, pd.DataFrame]:
    """Three files with partial labels, a feature only one file has, an integer column that is
    a float in another file, missing values and a blank label."""
    rng = np.random.default_rng(0)
    a = people(130, 1).assign(
        age=rng.integers(18, 80, 130), income=rng.choice([" - 50000.", " 50000+."], 130)
    )
    a.loc[[3, 50], "income"] = [None, " "]
    b = people(90, 2).assign(
        age=rng.integers(18, 80, 90).astype(float),
        region=rng.choice(["north", "south", "east"], 90),
        marital=rng.choice(["married", "single", "divorced"], 90),
    )
    b.loc[::7, "hours"] = np.nan
    c = people(60, 3).assign(
        age=rng.integers(18, 80, 60),
        income=rng.choice([" - 50000.", " 50000+."], 60),
        marital=rng.choice(["married", "single", "divorced", None], 60),
        spend=rng.gamma(2.0, 100.0, 60),
    )
    return {"a": a, "b": b, "c": c}


def write(folder, frames: dict[str, pd.DataFrame], group_rows: int = 16):
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        pq.write_table(pa.Table.from_pandas(frame), folder / f"{name}.parquet", group_rows)
    return folder


@pytest.fixture
def folder(tmp_path, people):
    return write(tmp_path / "data", _frames(people))


def state(prep: Preprocessor, path) -> dict:
    prep.save(path)
    return json.loads(path.read_text())


def assert_same_state(a: Preprocessor, b: Preprocessor, tmp_path) -> None:
    sa, sb = state(a, tmp_path / "a.json"), state(b, tmp_path / "b.json")
    numeric_a, numeric_b = sa.pop("numeric"), sb.pop("numeric")
    assert sa == sb
    assert [(f["name"], f["indicator"]) for f in numeric_a] == [
        (f["name"], f["indicator"]) for f in numeric_b
    ]
    for fa, fb in zip(numeric_a, numeric_b):
        assert fa["mean"] == pytest.approx(fb["mean"], rel=1e-12)
        assert fa["std"] == pytest.approx(fb["std"], rel=1e-12)


def assert_same_batches(expected, actual) -> None:
    expected, actual = list(expected), list(actual)
    assert [len(b) for b in actual] == [len(b) for b in expected]
    for e, a in zip(expected, actual):
        for name in ("x_cat", "x_num", "y", "mask"):
            assert torch.equal(getattr(e, name), getattr(a, name)), name


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_categories": 2, "hash_buckets": 7},  # education and region hashed
        {"max_categories": 2},  # hashed into buckets chosen from the distinct values
        {"max_categories": 2, "min_frequency": 40},  # rare values out of the vocabulary
        {"feature_kinds": {"children": "numeric", "hours": "categorical"}},
    ],
)
def test_one_pass_fit_gives_the_in_memory_state(folder, tmp_path, options):
    # max_categories=2: both fits say which columns they hash
    hashing = "max_categories" in options
    with pytest.warns(UserWarning, match="hashed into") if hashing else nullcontext():
        memory = Preprocessor(**options).fit(load_tables(folder, LABELS))
    with pytest.warns(UserWarning, match="hashed into") if hashing else nullcontext():
        streamed = fit_preprocessor(
            stream_tables(folder, LABELS), Preprocessor(**options), read_rows=7
        )
    assert_same_state(memory, streamed, tmp_path)
    kinds = {t.name: t.kind for t in streamed.schema().tasks}
    assert kinds == {"income": "binary", "marital": "multiclass", "spend": "regression"}
    names = streamed.feature_names
    if not options:  # integers with many values are numeric, with few categorical
        assert names["categorical"] == ["children", "education", "region"]
        assert names["numeric"] == ["hours", "age", "hours__missing"]


def test_missing_labels_and_bad_values_apply_as_in_memory(tmp_path, people):
    frame = people(200, 5).assign(y=np.arange(200) % 2, score=np.linspace(0.0, 1.0, 200))
    frame.loc[[4, 90], "y"] = -1  # the missing-label marker
    frame.loc[[7, 150], "score"] = [np.inf, 1e39]  # beyond float32
    folder = write(tmp_path / "d", {"f": frame}, group_rows=50)
    with pytest.raises(DataError, match=r"'score' holds infinite.*f\.parquet"):
        fit_preprocessor(stream_tables(folder, ["y"], missing_labels=[-1]))
    with pytest.raises(DataError, match="missing_labels"):  # -1 beside 0/1 without the option
        fit_preprocessor(stream_tables(folder, ["y"]))
    options = {"missing_labels": [-1], "bad_values": "missing"}
    with pytest.warns(DataWarning, match="bad_values='missing'"):
        memory = Preprocessor().fit(load_tables(folder, ["y"], **options))
        streamed = fit_preprocessor(stream_tables(folder, ["y"], **options))
    assert_same_state(memory, streamed, tmp_path)
    assert [t.kind for t in streamed.schema().tasks] == ["binary"]
    with pytest.warns(DataWarning):
        data = StreamingData(stream_tables(folder, ["y"], **options), streamed)
        batch = next(data.batches(200))
    assert batch.mask[:, 0].sum() == 198 and torch.isfinite(batch.x_num).all()


def test_a_label_in_drop_columns_is_refused_when_streaming(folder):
    with pytest.raises(DataError, match=r"\['income'\] are also listed in drop_columns"):
        stream_tables(folder, LABELS, drop_columns=["income"])


@pytest.mark.parametrize("read", [load_tables, stream_tables])
def test_no_label_columns_is_refused_in_memory_and_when_streaming(folder, read):
    with pytest.raises(DataError, match="No label columns given; name at least one"):
        read(folder, iter(()))


def test_load_level_overrides_and_drops_apply_as_in_memory(folder, tmp_path):
    kwargs = {
        "task_kinds": {"income": "binary"},
        "feature_kinds": {"age": "categorical"},
        "drop_columns": ["region"],
    }
    memory = Preprocessor().fit(load_tables(folder, LABELS, **kwargs))
    streamed = fit_preprocessor(stream_tables(folder, LABELS, **kwargs))
    assert_same_state(memory, streamed, tmp_path)
    assert "region" not in streamed.feature_names["categorical"]


def test_unshuffled_batches_equal_the_in_memory_batches(folder):
    table = stream_tables(folder, LABELS)
    prep = fit_preprocessor(table)
    expected = prep.transform(load_tables(folder, LABELS)).batches(50)
    data = StreamingData(table, prep, read_rows=37, buffer_rows=60)
    assert len(data) == 280 and data.num_batches(50) == 6
    assert_same_batches(expected, data.batches(50))
    files = sorted(folder.glob("*.parquet"))
    for sources in (str(folder / "*.parquet"), files, [files[0], str(folder / "[bc].parquet")]):
        again = stream_tables(sources, LABELS)
        assert (again.features, again.num_rows) == (table.features, table.num_rows)


def test_masks_and_missing_labels_behave_as_in_memory(folder):
    table = stream_tables(folder, LABELS)
    prep = fit_preprocessor(table)
    memory = prep.transform(load_tables(folder, LABELS))
    streamed = next(StreamingData(table, prep).batches(1000))
    assert torch.equal(streamed.mask, memory.mask) and torch.equal(streamed.y, memory.y)
    income = streamed.mask[:, 0]
    assert not income[3] and not income[50]  # a missing and a blank label
    assert not income[130:220].any()  # file b has no income column
    assert (streamed.y[~streamed.mask] == 0).all()


def test_minus_one_is_a_label_value_as_in_load_tables(tmp_path, people):
    frame = people(40, 0).assign(y=[-1, 1, np.nan, 1] * 10)
    folder = write(tmp_path / "d", {"f": frame})
    table = stream_tables(folder, ["y"])
    prep = fit_preprocessor(table)
    assert prep.schema().tasks[0].classes == (-1, 1)
    batch = next(StreamingData(table, prep).batches(100))
    assert_same_batches(prep.transform(load_tables(folder, ["y"])).batches(100), [batch])
    assert batch.mask[:, 0].tolist() == [True, True, False, True] * 10


def row_ids(batches) -> list[float]:
    """The values of the last numeric input ('age', standardized): distinct per row here."""
    return [v for b in batches for v in b.x_num[:, 1].tolist()]


def test_shuffled_epochs_cover_every_row_once_and_follow_the_seed(tmp_path, people):
    frame = people(1000, 0).assign(age=np.arange(1000.0), y=np.arange(1000) % 2)
    folder = write(tmp_path / "d", {"f": frame}, group_rows=100)
    table = stream_tables(folder, ["y"])
    prep = fit_preprocessor(table)
    data = StreamingData(table, prep, read_rows=64, buffer_rows=300)
    in_order = row_ids(data.batches(32))

    def epoch(seed):
        return row_ids(
            data.batches(32, shuffle=True, generator=torch.Generator().manual_seed(seed))
        )

    first, again, other = epoch(0), epoch(0), epoch(1)
    assert sorted(first) == sorted(other) == sorted(in_order)  # every row exactly once
    assert len(set(first)) == 1000
    assert first == again and first != other and first != in_order
    # Rows travel further than a record batch: the row groups are permuted, then mixed.
    position = {v: i for i, v in enumerate(in_order)}
    moved = np.abs(np.array([position[v] for v in first]) - np.arange(1000))
    assert np.median(moved) > 100
    generator = torch.Generator().manual_seed(0)
    assert row_ids(data.batches(32, True, generator)) != row_ids(data.batches(32, True, generator))


@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_are_disjoint_cover_the_data_and_have_equal_steps(tmp_path, people, shuffle):
    frame = people(1003, 0).assign(age=np.arange(1003.0), y=np.arange(1003) % 2)
    folder = write(tmp_path / "d", {"f": frame.iloc[:700], "g": frame.iloc[700:]}, 90)
    table = stream_tables(folder, ["y"])
    prep = fit_preprocessor(table)
    world = 3
    for equal_steps in (True, False):
        shards = []
        for rank in range(world):
            data = StreamingData(
                table, prep, rank=rank, world_size=world, equal_steps=equal_steps, read_rows=50
            )
            batches = list(data.batches(40, shuffle, torch.Generator().manual_seed(7)))
            assert len(batches) == data.num_batches(40)
            shards.append(row_ids(batches))
        every = [v for s in shards for v in s]
        assert len(set(every)) == len(every)  # disjoint
        if equal_steps:
            assert [len(s) for s in shards] == [334] * 3  # 1003 // 3; one row left out
        else:
            assert len(every) == 1003 and sorted(len(s) for s in shards) == [334, 334, 335]


def test_shard_rule_on_uneven_row_groups():
    rng = np.random.default_rng(0)
    for _ in range(50):
        sizes = rng.integers(1, 40, rng.integers(1, 12)).tolist()
        groups = [RowGroup(None, str(i), n) for i, n in enumerate(sizes)]
        order = rng.permutation(len(groups)).tolist()
        world = int(rng.integers(1, 5))
        rows = []
        for rank in range(world):
            pieces = shard(groups, order, rank, world)
            assert sum(b - a for _, a, b in pieces) == sum(sizes) // world
            rows.append({(int(g.path), i) for g, a, b in pieces for i in range(a, b)})
        assert sum(map(len, rows)) == len(set().union(*rows))


def test_memory_holds_the_buffer_and_a_record_batch_not_the_data(tmp_path, people):
    frame = people(5000, 0).assign(y=np.arange(5000) % 2)
    folder = write(tmp_path / "d", {"f": frame}, group_rows=250)
    table = stream_tables(folder, ["y"])
    prep = fit_preprocessor(table, read_rows=100)
    data = StreamingData(table, prep, read_rows=100, buffer_rows=400, prefetch=0)
    for shuffle in (False, True):
        n = sum(map(len, data.batches(32, shuffle, torch.Generator().manual_seed(0))))
        assert n == 5000
        assert data.peak_rows <= 400 * shuffle + 100 + 32
        assert data.peak_rows >= (400 if shuffle else 100)  # the measure is live


def test_reading_ahead_in_a_thread_changes_nothing_and_stops_with_the_consumer(tmp_path, people):
    frame = people(600, 0).assign(age=np.arange(600.0), y=np.arange(600) % 2)
    folder = write(tmp_path / "d", {"f": frame}, group_rows=50)
    table = stream_tables(folder, ["y"])
    prep = fit_preprocessor(table)
    epochs = []
    for prefetch in (0, 1, 3):
        data = StreamingData(table, prep, read_rows=20, buffer_rows=100, prefetch=prefetch)
        epochs.append(row_ids(data.batches(16, True, torch.Generator().manual_seed(3))))
    assert epochs[0] == epochs[1] == epochs[2]
    batches = data.batches(16)
    next(batches)
    batches.close()  # e.g. early stopping in the middle of an epoch
    assert not [t for t in threading.enumerate() if t.name == "mtlkit-prefetch"]
    bad = frame.assign(age=np.where(np.arange(600) == 555, np.inf, frame["age"]))
    bad_table = stream_tables(write(tmp_path / "bad", {"f": bad}, group_rows=50), ["y"])
    with pytest.raises(DataError, match=r"'age' holds infinite.*f\.parquet"):
        list(StreamingData(bad_table, prep, read_rows=20, prefetch=2).batches(16))


def test_evaluation_and_prediction_passes(folder, tmp_path, people):
    train = stream_tables(folder, LABELS)
    prep = fit_preprocessor(train)
    val_frames = {"v": _frames(people)["c"].iloc[:25].assign(region="north")}
    val_folder = write(tmp_path / "val", val_frames)
    val = stream_tables(val_folder, LABELS)
    expected = prep.transform(load_tables(val_folder, LABELS))
    assert_same_batches(expected.batches(8), StreamingData(val, prep).batches(8))
    # Two ranks evaluating their halves see every row once, in order.
    halves = [
        next(StreamingData(val, prep, rank=r, world_size=2, equal_steps=False).batches(100))
        for r in (0, 1)
    ]
    assert [len(h) for h in halves] == [12, 13]
    assert torch.equal(torch.cat([h.x_num for h in halves]), expected.x_num)
    new = write(tmp_path / "new", {"n": val_frames["v"].drop(columns=LABELS)})
    scored = StreamingData(stream_features(new), prep, require_labels=False)
    table = load_features(new)
    assert_same_batches(prep.transform(table, require_labels=False).batches(10), scored.batches(10))
    with pytest.raises(DataError, match=r"\['income', 'marital', 'spend'\].*require_labels"):
        StreamingData(stream_features(new), prep)
    lacking = write(tmp_path / "lacking", {"n": val_frames["v"].drop(columns=["hours"])})
    with pytest.raises(DataError, match=r"\['hours'\].*missing"):
        StreamingData(stream_tables(lacking, LABELS), prep)


def test_training_without_shuffling_gives_the_in_memory_weights(folder):
    table = stream_tables(folder, LABELS)
    prep = fit_preprocessor(table)

    def train(batches):
        torch.manual_seed(0)
        model = create("mmoe", prep.schema(), n_experts=2, expert_hidden=[8])
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(2):
            for batch in batches():
                losses = masked_task_losses(
                    model.schema.tasks, model(batch.x_cat, batch.x_num), batch.y, batch.mask
                )
                optimizer.zero_grad()
                losses.sum().backward()
                optimizer.step()
        return model.state_dict()

    memory = prep.transform(load_tables(folder, LABELS))
    streamed = StreamingData(table, prep, read_rows=23)
    a, b = train(lambda: memory.batches(32)), train(lambda: streamed.batches(32))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_hive_partitions_are_feature_columns(tmp_path, people):
    frame = people(60, 0).assign(region=["n", "s", "e"] * 20, y=[0, 1] * 30)
    pq.write_to_dataset(pa.Table.from_pandas(frame), tmp_path / "hive", ["region"])
    table = stream_tables(tmp_path / "hive", ["y"])
    assert table.features == ["hours", "children", "education", "region"]
    assert table.num_rows == 60
    prep = fit_preprocessor(table)
    feature = prep.feature_names["categorical"].index("region")
    ids = torch.cat([b.x_cat[:, feature] for b in StreamingData(table, prep).batches(16)])
    assert sorted(ids.tolist()) == [1] * 20 + [2] * 20 + [3] * 20


def test_a_pandas_index_written_to_parquet_is_no_feature(tmp_path, people):
    frame = people(15, 0).assign(y=[0, 1] * 7 + [0])
    frame.index = pd.Index(np.arange(15) ** 2)  # not a range: pandas writes it as a column
    folder = tmp_path / "d"
    folder.mkdir()
    frame.to_parquet(folder / "f.parquet")
    frame.rename_axis("row").to_parquet(folder / "g.parquet")
    table = stream_tables(folder, ["y"])
    assert table.features == ["hours", "children", "education"]
    prep = fit_preprocessor(table)
    memory = prep.transform(load_tables(folder, ["y"]))
    assert_same_batches(memory.batches(8), StreamingData(table, prep).batches(8))


def test_csv_folder_converts_to_the_same_data(tmp_path, people):
    frames = _frames(people)
    csv = tmp_path / "csv"
    csv.mkdir()
    frames["a"].to_csv(csv / "a.csv", index=False)
    frames["b"].to_csv(csv / "b.csv", index=False)
    with gzip.open(csv / "c.csv.gz", "wt") as handle:
        frames["c"].to_csv(handle, index=False)
    with pytest.raises(DataError, match="csv_to_parquet"):
        stream_tables(csv, LABELS)
    written = csv_to_parquet(csv, tmp_path / "pq", rows_per_group=40)
    assert [p.name for p in written] == ["a.parquet", "b.parquet", "c.parquet"]
    metadata = pq.ParquetFile(written[0]).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [40] * 3 + [
        10
    ]
    table = stream_tables(tmp_path / "pq", LABELS)
    prep = fit_preprocessor(table)
    memory = load_tables(csv, LABELS)
    assert_same_batches(prep.transform(memory).batches(64), StreamingData(table, prep).batches(64))


def test_csv_whose_type_changes_late_needs_column_types(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("x,y\n" + "1,0\n" * 300_000 + "1.5,1\n")
    with pytest.raises(DataError, match="late.csv.*column_types"):
        csv_to_parquet(path, tmp_path / "out")
    assert not (tmp_path / "out" / "late.parquet").exists()
    (written,) = csv_to_parquet(path, tmp_path / "out", column_types={"x": "float64"})
    assert pq.read_table(written).column("x").type == pa.float64()


def test_bad_input_gives_clear_errors(folder, tmp_path, people):
    with pytest.raises(DataError, match=r"Label column\(s\) \['nope'\]"):
        stream_tables(folder, ["nope"])
    with pytest.raises(DataError, match="does not exist"):
        stream_tables(tmp_path / "absent", LABELS)
    mixed = write(
        tmp_path / "mixed",
        {"a": people(5, 0).assign(y=[0, 1] * 2 + [0]), "b": people(5, 1).assign(y=["u"] * 5)},
    )
    with pytest.raises(DataError, match="'y' holds integer values in .*a.parquet"):
        stream_tables(mixed, ["y"])
    infinite = people(20, 0).assign(hours=np.inf, y=[0, 1] * 10)
    with pytest.raises(
        DataError, match=r"'hours' holds infinite or too large values \(\d+ beyond.*f.parquet"
    ):
        fit_preprocessor(stream_tables(write(tmp_path / "inf", {"f": infinite}), ["y"]))
    empty = people(20, 0).assign(blank=np.nan, y=[0, 1] * 10)
    with pytest.raises(DataError, match=r"\['blank'\] are empty"):
        fit_preprocessor(stream_tables(write(tmp_path / "empty", {"f": empty}), ["y"]))
    table = stream_tables(folder, LABELS)
    prep = fit_preprocessor(table)
    with pytest.raises(ConfigError, match="rank must be below world_size"):
        StreamingData(table, prep, rank=2, world_size=2)
    with pytest.raises(DataError, match="too few"):
        StreamingData(table, prep, world_size=1000)
