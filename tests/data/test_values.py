"""Value-level validation in load_tables / load_features: numbers typed as text, magnitudes,
missing-label markers, label values that do not fit a task, text encodings."""

import gzip
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from mtlkit.data.loading import load_features, load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.errors import ConfigError, DataError, DataWarning


@pytest.fixture
def clean(people):
    """300 rows: float hours, small-integer children, text education, binary label y."""
    return people(300, 0).assign(y=np.random.default_rng(0).integers(0, 2, 300))


def csv_with(tmp_path, frame, column, cells, name="data.csv"):
    """``frame`` as a CSV whose ``column`` holds ``cells`` ({row position: text})."""
    frame = frame.astype({column: object})
    for row, text in cells.items():
        frame.loc[row, column] = text
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def lines(rows):  # 0-based data rows -> line numbers of the CSV (the header is line 1)
    return ", ".join(str(r + 2) for r in rows)


# --- numbers typed as text ----------------------------------------------------------------


def test_text_cells_in_a_numeric_column_are_an_error_naming_file_column_count_rows(tmp_path, clean):
    path = csv_with(tmp_path, clean, "hours", {6: "oops", 39: "oops", 200: "n/a?"})
    with pytest.raises(DataError) as info:
        load_tables(path, ["y"])
    message = str(info.value)
    assert "'hours'" in message and "'data.csv'" in message
    assert "3 non-numeric cells" in message and "'oops', 'n/a?'" in message
    assert f"lines {lines([6, 39, 200])}" in message
    assert "bad_values='missing'" in message and "\n" not in message


def test_bad_values_missing_reads_them_as_missing_with_a_warning(tmp_path, clean):
    path = csv_with(tmp_path, clean, "hours", {6: "oops", 39: "oops"})
    with pytest.warns(DataWarning, match=r"'hours'.*'data.csv'.*2 cells read as missing"):
        table = load_tables(path, ["y"], bad_values="missing")
    hours = table.features["hours"].to_numpy()
    assert table.feature_kinds["hours"] == "numeric"
    assert np.isnan(hours[[6, 39]]).all()
    others = np.setdiff1d(np.arange(300), [6, 39])
    assert hours[others] == pytest.approx(clean["hours"].to_numpy()[others])


def test_the_first_rows_are_named_and_the_rest_counted(tmp_path, clean):
    path = csv_with(tmp_path, clean, "hours", {r: "x" for r in range(10, 30)})
    with pytest.raises(
        DataError, match=rf"20 non-numeric cells: 'x' at lines {lines(range(10, 15))} and 15 more"
    ):
        load_tables(path, ["y"])


@pytest.mark.parametrize(
    ("column", "cells"),
    [
        ("education", {}),  # words
        ("hours", {r: f"w{r}" for r in range(0, 300, 9)}),  # 34 of 300 (11%) are words
        ("children", {5: "many"}),  # small integers plus a word: categories
    ],
    ids=["words", "11% words", "small integers"],
)
def test_a_textual_column_stays_categorical(tmp_path, clean, column, cells):
    path = csv_with(tmp_path, clean, column, cells)
    table = load_tables(path, ["y"])
    assert table.feature_kinds[column] == "categorical"
    expected = pd.read_csv(path, dtype=str, keep_default_na=False)[column]
    assert table.features[column].tolist() == expected.tolist()


def test_nine_percent_words_in_a_numeric_column_are_still_mistakes(tmp_path, clean):
    path = csv_with(tmp_path, clean, "hours", {r: f"w{r}" for r in range(0, 270, 10)})
    with pytest.raises(DataError, match="'hours' of 'data.csv' holds numbers but 27 non-numeric"):
        load_tables(path, ["y"])


def test_a_column_declared_numeric_must_be_numbers_whatever_their_share():
    frame = pd.DataFrame({"x": ["1", "a", "b", "2.5"], "y": [0, 1, 0, 1]}, index=[10, 11, 12, 13])
    with pytest.raises(
        DataError,
        match=r"'x' of 'frame0' holds declared numeric.*2 non-numeric cells: 'a', 'b' at index 11, 12",
    ):
        load_tables(frame, ["y"], feature_kinds={"x": "numeric"})
    table = load_tables(
        frame.assign(x=["1", "2", " 3 ", "2.5"]), ["y"], feature_kinds={"x": "numeric"}
    )
    assert table.features["x"].tolist() == [1.0, 2.0, 3.0, 2.5]


def test_frame_and_parquet_sources_name_rows_as_their_users_find_them(tmp_path, clean):
    frame = clean.astype({"hours": object}).set_axis(np.arange(300) * 10)
    frame.loc[70, "hours"] = "oops"  # the 8th row
    with pytest.raises(DataError, match=r"'frame0'.*'oops' at index 70;"):
        load_tables(frame, ["y"])
    frame.reset_index(drop=True).astype({"hours": str}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"'p.parquet'.*'oops' at row 8;"):
        load_tables(tmp_path / "p.parquet", ["y"])


def test_a_declared_categorical_column_is_not_checked(tmp_path, clean):
    path = csv_with(tmp_path, clean, "hours", {6: "oops"})
    table = load_tables(path, ["y"], feature_kinds={"hours": "categorical"})
    assert table.features["hours"][6] == "oops"
    assert len(load_tables(path, ["y"], drop_columns=["hours"])) == 300


# --- magnitudes -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e308", "-4e38", "inf"])
def test_values_beyond_float32_are_an_error_naming_file_column_and_line(tmp_path, clean, value):
    path = csv_with(tmp_path, clean, "hours", {12: value})
    with pytest.raises(
        DataError,
        match=rf"Feature 'hours' holds infinite or too large values \(1 beyond.*'data.csv' line {lines([12])};",
    ):
        load_tables(path, ["y"])


def test_with_bad_values_missing_a_huge_value_no_longer_zeroes_the_column(tmp_path, clean):
    path = csv_with(tmp_path, clean, "hours", {12: "1e308"})
    with pytest.warns(DataWarning, match="1 cell read as missing"):
        table = load_tables(path, ["y"], bad_values="missing")
    x = Preprocessor().fit_transform(table).x_num.numpy()[:, 0]
    assert np.isfinite(x).all() and x.std() == pytest.approx(1.0, abs=0.01)  # not all zeros
    near_limit = csv_with(tmp_path, clean, "hours", {12: "3e38"}, "near.csv")
    assert load_tables(near_limit, ["y"]).features["hours"][12] == 3e38  # within float32


def test_a_regression_label_beyond_float32_is_an_error():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "v": [0.5, 1e300, 2.0]})
    with pytest.raises(DataError, match=r"Label column 'v'.*too large.*'frame0' index 1"):
        load_tables(frame, ["v"])


def test_the_preprocessor_refuses_huge_and_non_numeric_values(clean):
    table = load_tables(clean, ["y"])
    table.features.loc[3, "hours"] = 1e308
    with pytest.raises(DataError, match=r"'hours' holds infinite or too large values \(1 beyond"):
        Preprocessor().fit(table)
    fitted = Preprocessor().fit(load_tables(clean, ["y"]))
    table.features["hours"] = table.features["hours"].astype(object)
    table.features.loc[3, "hours"] = "oops"
    with pytest.raises(
        DataError, match=r"'hours' is numeric but holds 1 non-numeric value.*'oops'"
    ):
        fitted.transform(table)


# --- labels -------------------------------------------------------------------------------


def test_a_binary_label_with_minus_one_suggests_missing_labels(tmp_path, clean):
    marked = clean.assign(y=clean["y"].where(np.arange(300) % 7 != 0, -1))
    marked.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DataError, match=r"'y' holds -1 in 43 row.*missing_labels=\[-1\]"):
        load_tables(tmp_path / "m.csv", ["y"])
    table = load_tables(tmp_path / "m.csv", ["y"], missing_labels=[-1])
    assert table.tasks[0].kind == "binary" and table.tasks[0].classes == (0, 1)
    assert table.masks["y"].tolist() == (np.arange(300) % 7 != 0).tolist()
    assert table.labels["y"][table.masks["y"]].tolist() == marked["y"][marked["y"] >= 0].tolist()
    declared = load_tables(tmp_path / "m.csv", ["y"], task_kinds={"y": "multiclass"})
    assert declared.tasks[0].classes == (-1, 0, 1)


def test_a_stray_string_in_a_label_is_an_error_or_a_marker(tmp_path, clean):
    path = csv_with(tmp_path, clean, "y", {4: "oops", 9: "oops"})
    with pytest.raises(
        DataError,
        match=rf"'y' of 'data.csv'.*2 non-numeric cells: 'oops' at lines {lines([4, 9])}.*missing_labels",
    ):
        load_tables(path, ["y"])
    for options in ({"missing_labels": ["oops"]}, {"bad_values": "missing"}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            table = load_tables(path, ["y"], **options)
        assert table.tasks[0].classes == (0, 1)  # numbers, as in a clean file
        assert not table.masks["y"][[4, 9]].any() and table.masks["y"].sum() == 298
        keep = table.masks["y"]
        assert table.labels["y"][keep].tolist() == clean["y"][keep].astype(float).tolist()


def test_missing_labels_on_a_declared_binary_label_of_text():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["yes", "?", "no", "yes"]})
    frame["z"] = pd.Series(["0", "1", "-1", "1"], dtype="str")
    kinds = {"y": "binary", "z": "binary"}
    table = load_tables(frame, ["y", "z"], task_kinds=kinds, missing_labels=["?", -1])
    assert table.tasks[0].classes == ("no", "yes") and table.tasks[1].classes == (0, 1)
    assert table.masks["y"].tolist() == [True, False, True, True]
    assert table.masks["z"].tolist() == [True, True, False, True]
    assert table.labels["z"][[0, 1, 3]].tolist() == [0.0, 1.0, 1.0]


def test_a_binary_label_with_a_rare_third_value_is_an_error(clean):
    rare = clean.assign(y=clean["y"].where(np.arange(300) != 5, 2))
    with pytest.raises(DataError, match=r"'y' looks binary \(0, 1\) but also holds 2 in 1 of 300"):
        load_tables(rare, ["y"])
    assert load_tables(rare, ["y"], task_kinds={"y": "multiclass"}).tasks[0].n_classes == 3
    balanced = clean.assign(y=np.arange(300) % 3)  # a real 3-class task is untouched
    assert load_tables(balanced, ["y"]).tasks[0].n_classes == 3


def test_many_singleton_classes_are_refused_like_identifiers(clean):
    frame = pd.concat([clean] * 2, ignore_index=True).assign(user=[f"u{i}" for i in range(600)])
    with pytest.raises(
        DataError, match=r"'user' has 600 distinct classes, 600 of them on a single row.*identifier"
    ):
        load_tables(frame, ["user"])
    assert load_tables(frame, ["user"], task_kinds={"user": "multiclass"}).tasks[0].n_classes == 600


def test_a_label_listed_in_drop_columns_is_an_error(clean):
    with pytest.raises(DataError, match=r"\['y'\] are also listed in drop_columns"):
        load_tables(clean, ["y"], drop_columns=["y"])


# --- settings, valid data, load_features ---------------------------------------------------


def test_valid_data_is_unaffected_by_the_options(clean):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all on clean data
        plain = load_tables(clean, ["y"])
        relaxed = load_tables(clean, ["y"], bad_values="missing", missing_labels=[-1])
    pd.testing.assert_frame_equal(plain.features, relaxed.features)
    assert plain.tasks == relaxed.tasks and plain.feature_kinds == relaxed.feature_kinds
    np.testing.assert_array_equal(plain.labels["y"], relaxed.labels["y"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bad_values": "skip"}, "bad_values must be one of"),
        ({"missing_labels": "-1"}, r"missing_labels must be a list of values such as \[-1\]"),
        ({"encoding": "klingon"}, "encoding 'klingon' is not a known text encoding"),
    ],
)
def test_bad_settings_are_config_errors(clean, options, message):
    with pytest.raises(ConfigError, match=message):
        load_tables(clean, ["y"], **options)


def test_load_features_checks_values_too(tmp_path, clean):
    path = csv_with(tmp_path, clean, "hours", {6: "oops"})
    with pytest.raises(DataError, match=rf"'hours' of 'data.csv'.*at line {lines([6])}"):
        load_features(path, ignore=["y"])
    with pytest.warns(DataWarning):
        assert np.isnan(load_features(path, bad_values="missing").features["hours"][6])
    stray_label = csv_with(tmp_path, clean, "y", {6: "oops"}, "y.csv")
    assert len(load_features(stray_label, ignore=["y"])) == 300  # ignored columns: unchecked


# --- text encodings -------------------------------------------------------------------------


def test_a_file_that_is_not_utf8_names_the_byte_offset_and_an_encoding_option(tmp_path):
    text = "x,town,y\n1,Paris,0\n2,Orl\xe9ans,1\n3,Paris,0\n"
    (tmp_path / "towns.csv").write_bytes(text.encode("latin-1"))
    offset = text.index("\xe9")
    with pytest.raises(
        DataError,
        match=rf"'.*towns.csv' is not valid UTF-8 text: byte 0xe9 at offset {offset} \(line 3\).*encoding='latin-1'",
    ):
        load_tables(tmp_path / "towns.csv", ["y"])
    table = load_tables(tmp_path / "towns.csv", ["y"], encoding="latin-1")
    assert table.features["town"].tolist() == ["Paris", "Orl\xe9ans", "Paris"]
    assert (
        load_features(tmp_path / "towns.csv", encoding="cp1252").features["town"][1] == "Orl\xe9ans"
    )


def test_a_non_utf8_header_and_a_compressed_file(tmp_path):
    (tmp_path / "h.csv").write_bytes("x,ann\xe9e,y\n1,2,0\n2,3,1\n".encode("latin-1"))
    with pytest.raises(
        DataError, match=r"'.*h.csv' is not valid UTF-8 text: byte 0xe9 at offset 5 \(line 1\)"
    ):
        load_tables(tmp_path / "h.csv", ["y"])
    body = "x,y\n" + "1,0\n" * 5000 + "\xe9,1\n"
    with gzip.open(tmp_path / "z.csv.gz", "wb") as handle:
        handle.write(body.encode("latin-1"))
    expected = re.escape(f"byte 0xe9 at offset {4 + 4 * 5000} of its uncompressed text (line 5002)")
    with pytest.raises(DataError, match=expected):
        load_tables(tmp_path / "z.csv.gz", ["y"])
    wrong = tmp_path / "w.csv"
    wrong.write_bytes("x,y\n\xe9,0\na,1\n".encode())
    with pytest.raises(DataError, match=r"not valid ascii text: byte 0xc3 at offset 4 \(line 2\)"):
        load_tables(wrong, ["y"], encoding="ascii")
