import pandas as pd
import pytest

from mtlkit import DataError
from mtlkit.datasets import load

KAGGLE = pd.DataFrame(
    {
        "PassengerId": range(1, 9),
        "Survived": [0, 1, 1, 1, 0, 0, 0, 1],
        "Pclass": [3, 1, 3, 1, 3, 2, 1, 2],
        "Name": [f"Person {i}" for i in range(8)],
        "Sex": ["male", "female", "female", "female", "male", "male", "male", "female"],
        "Age": [22, 38, 26, 35, None, 54, 2, 27],
        "SibSp": [1, 1, 0, 1, 0, 0, 3, 0],
        "Parch": [0, 0, 0, 0, 0, 0, 1, 2],
        "Ticket": ["A/5", "PC", "STON", "113803", "373450", "330877", "17463", "349909"],
        "Fare": [7.25, 71.28, 7.92, 53.1, 8.05, 8.46, 51.86, 21.07],
        "Cabin": [None, "C85", None, "C123", None, None, "E46", None],
        "Embarked": ["S", "C", "S", "S", "S", "Q", "S", "S"],
    }
)


def test_kaggle_file_gives_survival_and_class(tmp_path):
    path = tmp_path / "train.csv"
    KAGGLE.to_csv(path, index=False)
    table = load("titanic", path=path)
    assert table.task_names == ["survived", "pclass"]
    assert [t.kind for t in table.tasks] == ["binary", "multiclass"]
    assert table.tasks[1].classes == (1, 2, 3)
    columns = set(table.features.columns)
    assert {"sex", "age", "fare", "deck"} <= columns
    assert not columns & {"pclass", "survived", "name", "ticket", "passengerid", "cabin"}
    assert list(table.features["deck"].iloc[:2].fillna("-")) == ["-", "C"]


def test_openml_names_with_sex_as_second_target_and_no_leaks(tmp_path):
    openml = KAGGLE.drop(columns="PassengerId").rename(columns=str.lower)
    openml["boat"] = ["?", "4", "13", "D", "?", "?", "?", "10"]
    openml["body"] = [135, None, None, None, 22, None, None, None]
    openml["home.dest"] = "Somewhere"
    path = tmp_path / "titanic_openml.csv"
    openml.to_csv(path, index=False)
    table = load("titanic", path=path, second="sex")
    assert table.task_names == ["survived", "sex"]
    assert table.tasks[1].classes == ("female", "male")
    assert not set(table.features.columns) & {"boat", "body", "home.dest", "sex"}
    assert "pclass" in table.features.columns


def test_download_through_a_url_and_errors(tmp_path):
    src = tmp_path / "served.csv"
    KAGGLE.to_csv(src, index=False)
    table = load("titanic", url=src.as_uri(), cache_dir=tmp_path / "cache", progress=False)
    assert len(table) == 8 and (tmp_path / "cache" / "titanic" / "titanic.csv").is_file()
    with pytest.raises(DataError, match="second must be one of"):
        load("titanic", path=src, second="age")
    bad = tmp_path / "bad.csv"
    KAGGLE.drop(columns=["Fare"]).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"lacks the Titanic column\(s\) \['fare'\]"):
        load("titanic", path=bad)
