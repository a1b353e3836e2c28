import gzip

import numpy as np
import pandas as pd
import pytest

from mtlkit.data.loading import load_features, load_tables
from mtlkit.errors import DataError


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def income_and_marital_files(tmp_path, people):
    """File A: features + income; file B: features (one that A lacks) + marital."""
    a = people(30, 1).assign(income=[" - 50000.", " 50000+."] * 15)
    b = people(20, 2).assign(city=["x", "y"] * 10, marital=["single", "married"] * 10)
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    return tmp_path, a, b


def test_two_files_one_label_each_are_concatenated_with_masks(income_and_marital_files):
    folder, a, b = income_and_marital_files
    table = load_tables([folder / "a.csv", folder / "b.csv"], ["income", "marital"])

    assert len(table) == len(a) + len(b) == 50
    assert table.task_names == ["income", "marital"]
    assert table.masks["income"].tolist() == [True] * 30 + [False] * 20
    assert table.masks["marital"].tolist() == [False] * 30 + [True] * 20
    assert np.isnan(table.labels["income"][30:]).all()
    assert np.isnan(table.labels["marital"][:30]).all()
    assert table.labels["income"][:30].tolist() == [0.0, 1.0] * 15
    assert table.labels["marital"][30:].tolist() == [1.0, 0.0] * 10  # married=0, single=1
    assert table.source.tolist() == ["a.csv"] * 30 + ["b.csv"] * 20
    assert list(table.features.columns) == ["hours", "children", "education", "city"]
    assert table.features["city"][:30].isna().all()
    assert table.features["city"][30:].tolist() == ["x", "y"] * 10
    assert table.features["hours"].tolist() == pytest.approx(
        a["hours"].tolist() + b["hours"].tolist()
    )


def test_folder_and_glob_read_sorted_files(income_and_marital_files):
    folder, _, _ = income_and_marital_files
    (folder / "notes.txt").write_text("ignored")
    by_folder = load_tables(folder, ["income", "marital"])
    by_glob = load_tables(str(folder / "*.csv"), ["income", "marital"])
    for table in (by_folder, by_glob):
        assert table.source[0] == "a.csv" and table.source[-1] == "b.csv"
        assert len(table) == 50


def test_labels_shared_between_three_sources():
    rng = np.random.default_rng(0)
    only_age = pd.DataFrame({"x": rng.normal(size=4), "age": [20.5, 31.0, 45.2, 60.1]})
    only_gender = pd.DataFrame({"x": rng.normal(size=3), "gender": ["f", "m", "f"]})
    both = pd.DataFrame({"x": rng.normal(size=2), "age": [33.3, 44.4], "gender": ["m", "f"]})
    table = load_tables([only_age, only_gender, both], ["age", "gender"])

    assert table.source.tolist() == ["frame0"] * 4 + ["frame1"] * 3 + ["frame2"] * 2
    assert table.masks["age"].tolist() == [True] * 4 + [False] * 3 + [True] * 2
    assert table.masks["gender"].tolist() == [False] * 4 + [True] * 5
    assert [t.kind for t in table.tasks] == ["regression", "binary"]
    assert table.labels["age"][[0, 7]].tolist() == [20.5, 33.3]
    assert table.labels["gender"][4:].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]


def test_empty_and_nan_label_cells_are_masked_not_filled(tmp_path):
    path = write(tmp_path / "t.csv", "x,y,z\n1,0,a\n2,,b\n3,1,\n4,NaN, \n5,1,c\n")
    table = load_tables(path, ["y", "z"])
    assert table.masks["y"].tolist() == [True, False, True, False, True]
    assert table.labels["y"].tolist()[::2] == [0.0, 1.0, 1.0]
    assert np.isnan(table.labels["y"][[1, 3]]).all()
    assert table.masks["z"].tolist() == [True, True, False, False, True]  # blank = missing


def test_parquet_gzip_dict_and_frame_sources(tmp_path, people):
    frame = people(10, 0).assign(y=[0, 1] * 5)
    frame.to_parquet(tmp_path / "p.parquet")
    with gzip.open(tmp_path / "g.csv.gz", "wt") as handle:
        frame.to_csv(handle, index=False)
    from_files = load_tables([tmp_path / "p.parquet", tmp_path / "g.csv.gz"], ["y"])
    assert from_files.source.tolist() == ["p.parquet"] * 10 + ["g.csv.gz"] * 10
    assert from_files.labels["y"].tolist() == [0.0, 1.0] * 10
    assert load_tables({"train": frame}, ["y"]).source.tolist() == ["train"] * 10
    assert load_tables(frame, ["y"]).source.tolist() == ["frame0"] * 10


def test_feature_kinds_inferred_and_overridden():
    frame = pd.DataFrame(
        {
            "f": [0.5, 1.0, 2.0, 3.0],
            "few_ints": [1, 2, 1, 2],
            "many_ints": range(4),
            "text": list("abab"),
            "flag": [True, False, True, True],
            "y": [0, 1, 0, 1],
        }
    )
    frame["many_ints"] = np.arange(100, 104)
    bigger = pd.concat([frame] * 10, ignore_index=True)
    bigger["many_ints"] = np.arange(40)
    table = load_tables(bigger, ["y"])
    assert table.feature_kinds == {
        "f": "numeric",
        "few_ints": "categorical",
        "many_ints": "numeric",
        "text": "categorical",
        "flag": "categorical",
    }
    table = load_tables(bigger, ["y"], feature_kinds={"few_ints": "numeric", "f": "categorical"})
    assert table.feature_kinds["few_ints"] == "numeric"
    assert table.feature_kinds["f"] == "categorical"


def test_integer_column_with_missing_cells_stays_integer_kind(tmp_path):
    path = write(tmp_path / "t.csv", "k,y\n1,0\n,1\n2,0\n1,1\n")
    assert load_tables(path, ["y"]).feature_kinds == {"k": "categorical"}


def test_drop_columns_and_task_kinds(income_and_marital_files):
    folder, _, _ = income_and_marital_files
    table = load_tables(
        folder, ["income", "marital"], drop_columns=["city"], task_kinds={"marital": "multiclass"}
    )
    assert "city" not in table.features.columns
    assert table.tasks[1].kind == "multiclass" and table.tasks[1].n_classes == 2


# --- bad input: a DataError whose message names the file and/or column ---------------------


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="nope.csv.*does not exist"):
        load_tables(tmp_path / "nope.csv", ["y"])


def test_empty_folder_and_unmatched_glob(tmp_path):
    with pytest.raises(DataError, match="holds no"):
        load_tables(tmp_path, ["y"])
    with pytest.raises(DataError, match=r"\*\.parquet.*matches no"):
        load_tables(str(tmp_path / "*.parquet"), ["y"])


@pytest.mark.parametrize("text", ["", "a,b\n"], ids=["empty", "header-only"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path / "empty.csv", text)
    with pytest.raises(DataError, match="empty.csv"):
        load_tables(path, ["a"])


def test_unreadable_files(tmp_path):
    ragged = write(tmp_path / "ragged.csv", "a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match="Cannot read.*ragged.csv") as info:
        load_tables(ragged, ["a"])
    assert "Traceback" not in str(info.value)
    broken = write(tmp_path / "broken.parquet", "not parquet")
    with pytest.raises(DataError, match="Cannot read.*broken.parquet"):
        load_tables(broken, ["a"])


def test_unsupported_extension(tmp_path):
    path = write(tmp_path / "data.xlsx", "a,b\n1,2\n")
    with pytest.raises(DataError, match="data.xlsx.*unsupported extension"):
        load_tables(path, ["a"])


def test_label_in_no_source(income_and_marital_files):
    folder, _, _ = income_and_marital_files
    with pytest.raises(DataError, match="'incme'.*none of the sources.*a.csv"):
        load_tables(folder, ["incme"])


def test_column_type_differs_between_files(tmp_path):
    write(tmp_path / "one.csv", "code,y\n3,0\n4,1\n")
    write(tmp_path / "two.csv", "code,y\nx3,0\n4,1\n")
    with pytest.raises(DataError, match="'code'.*'one.csv'.*'two.csv'"):
        load_tables(tmp_path, ["y"])
    frames = {"ints": pd.DataFrame({"c": [3, 4], "y": [0, 1]})}
    frames["strings"] = pd.DataFrame({"c": ["3", "4"], "y": [0, 1]})
    with pytest.raises(DataError, match="'c'.*integer.*'ints'.*string.*'strings'"):
        load_tables(frames, ["y"])


def test_int_and_float_columns_are_compatible(tmp_path):
    write(tmp_path / "one.csv", "v,y\n3,0\n4,1\n")
    write(tmp_path / "two.csv", "v,y\n3.5,0\n,1\n")
    table = load_tables(tmp_path, ["y"])
    assert table.features["v"].tolist()[:3] == [3.0, 4.0, 3.5]


def test_duplicate_column_names_in_a_file(tmp_path):
    path = write(tmp_path / "dup.csv", "a,b,a,y\n1,2,3,0\n4,5,6,1\n")
    with pytest.raises(DataError, match=r"'dup.csv'.*duplicate.*\['a'\]"):
        load_tables(path, ["y"])


def test_feature_empty_in_every_source(tmp_path):
    write(tmp_path / "one.csv", "blank,x,y\n,1,0\n,2,1\n")
    write(tmp_path / "two.csv", "x,y\n3,0\n")
    with pytest.raises(DataError, match=r"\['blank'\].*all values missing.*drop_columns"):
        load_tables(tmp_path, ["y"])
    assert len(load_tables(tmp_path, ["y"], drop_columns=["blank"])) == 3


def test_infinite_values(tmp_path):
    write(tmp_path / "ok.csv", "x,y\n1,0.5\n2,1.5\n")
    write(tmp_path / "bad_x.csv", "x,y\ninf,0.5\n2,1.5\n")
    with pytest.raises(DataError, match=r"Feature 'x'.*infinite.*bad_x.csv"):
        load_tables([tmp_path / "ok.csv", tmp_path / "bad_x.csv"], ["y"])
    write(tmp_path / "bad_y.csv", "x,y\n1,-inf\n2,1.5\n")
    with pytest.raises(DataError, match=r"Label column 'y'.*infinite.*bad_y.csv"):
        load_tables([tmp_path / "ok.csv", tmp_path / "bad_y.csv"], ["y"])


def test_bad_arguments():
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    with pytest.raises(DataError, match="task_kinds.*'z'"):
        load_tables(frame, ["y"], task_kinds={"z": "binary"})
    with pytest.raises(DataError, match="feature_kinds.*'z'"):
        load_tables(frame, ["y"], feature_kinds={"z": "numeric"})
    with pytest.raises(DataError, match="drop_columns.*'z'"):
        load_tables(frame, ["y"], drop_columns=["z"])
    with pytest.raises(DataError, match="'x'.*numeric.*non-numeric"):
        load_tables(frame.assign(x=["a", "b"]), ["y"], feature_kinds={"x": "numeric"})


def test_load_features_reads_rows_without_tasks_and_ignores_label_columns(tmp_path):
    path = tmp_path / "new.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.5], "b": ["x", "y", "x"], "label": [0, 1, 0]}).to_csv(
        path, index=False
    )
    table = load_features(path, ignore=["label", "not_there"])
    assert list(table.features.columns) == ["a", "b"]
    assert table.tasks == [] and len(table) == 3
