"""Streamed tables take the reading options of ``load_tables`` and their splits are checked
as the in-memory ones are (issue #20)."""

from __future__ import annotations

import numpy as np
import pytest
from parquet_files import write_parquet

from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.splits import check_splits
from mtlkit.data.stream_fit import fit_preprocessor
from mtlkit.data.streaming_table import stream_features, stream_tables
from mtlkit.errors import ConfigError, DataError

LABELS = ["label0", "label1"]


def test_check_splits_refuses_a_streamed_split_without_labels_of_a_task(tmp_path, frame):
    train = stream_tables(write_parquet(tmp_path / "train", frame), LABELS)
    unlabelled = frame.assign(label1=np.nan)
    val = stream_tables(write_parquet(tmp_path / "val", unlabelled), LABELS)
    with pytest.raises(DataError, match=r"'label1' has no labelled rows in the validation split"):
        check_splits(train, val)
    one_class = stream_tables(write_parquet(tmp_path / "one", frame.assign(label0=1)), LABELS)
    with pytest.raises(DataError, match=r"'label0' has a single class \(1\) in the training"):
        check_splits(one_class, train)
    # Streamed and in-memory splits are checked alike, and may be mixed.
    check_splits(train, load_tables(frame, LABELS), train)
    with pytest.raises(DataError, match=r"'label1' has no labelled rows in the validation split"):
        check_splits(load_tables(frame, LABELS), val)


def test_stream_tables_takes_the_reading_options_of_load_tables(tmp_path, frame):
    text = frame.assign(city=np.where(frame.index % 2, "Zürich", "Genève"))
    folder = write_parquet(tmp_path / "pq", text)
    options = {"missing_labels": [-1], "bad_values": "missing", "encoding": "latin-1"}
    streamed = stream_tables(folder, LABELS, **options)
    assert (streamed.bad_values, streamed.encoding) == ("missing", "latin-1")
    prep = fit_preprocessor(streamed)
    memory = load_tables(folder / "a.parquet", LABELS, **options)  # Parquet text is UTF-8
    assert prep.schema() == Preprocessor().fit(memory).schema()
    assert set(prep._categorical[0]["vocab"]) == {"Zürich", "Genève"}
    features = stream_features(folder, ignore=LABELS, bad_values="missing", encoding="cp1252")
    assert features.bad_values == "missing" and "city" in features.feature_names
    for opener in (stream_tables, load_tables):
        with pytest.raises(ConfigError, match="'no-such-codec' is not a known text encoding"):
            opener(folder, LABELS, encoding="no-such-codec")


def test_csv_sources_are_refused_with_the_conversion_in_their_encoding(tmp_path, frame):
    folder = tmp_path / "csv"
    folder.mkdir()
    frame.to_csv(folder / "a.csv", index=False, encoding="cp1252")
    call = r"csv_to_parquet\('.*', 'parquet_folder', encoding='cp1252'\)"
    for source in (folder, folder / "a.csv"):
        with pytest.raises(DataError, match=f"holds no .parquet files.*{call}"):
            stream_tables(source, LABELS, encoding="cp1252")
