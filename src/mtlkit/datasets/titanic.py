"""Titanic passenger survival with a second target (passenger class or sex).

Reads the Kaggle column names (``PassengerId, Survived, Pclass, Name, Sex, Age, SibSp, Parch,
Ticket, Fare, Cabin, Embarked``) or the OpenML ones (``pclass, survived, name, sex, age, sibsp,
parch, ticket, fare, cabin, embarked, boat, body, home.dest``). Columns that give the survival
away (``boat``, ``body``) and identifiers (name, ticket, passenger id, home.dest) are dropped;
the cabin becomes its deck letter. The second target's column is not a feature.

The default URL's SHA-256 is not pinned (it could not be verified when this was written): the
download is checked against the digest recorded at first download.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtlkit.data.loading import load_tables
from mtlkit.data.schema import MultiTaskTable
from mtlkit.datasets.cache import cache_root, download
from mtlkit.datasets.registry import DATASETS
from mtlkit.errors import DataError

#: What `mtlkit datasets` says about the data set(s) of this module.
ABOUT_SOURCE = "public CSV, downloaded on first use"
ABOUT_TASKS = "survived (binary) + pclass (3 classes) or sex (second='sex')"
ABOUT_SIZE = "891 rows (Kaggle train) or 1,309 (OpenML)"

URL = "https://raw.githubusercontent.com/datasciencedojo/datasets/master/titanic.csv"
FILE = "titanic.csv"
SECOND_TARGETS = ("pclass", "sex")
DROPPED = ("passengerid", "name", "ticket", "boat", "body", "home.dest", "cabin")
REQUIRED = ("survived", "pclass", "sex", "age", "sibsp", "parch", "fare", "embarked")


@DATASETS.register("titanic", ABOUT_SOURCE, tasks=ABOUT_TASKS, size=ABOUT_SIZE, download=True)
def load_titanic(
    path: str | Path | None = None,
    *,
    second: str = "pclass",
    url: str = URL,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> MultiTaskTable:
    """Tasks ``survived`` (binary) and ``second`` ("pclass": 3 classes, or "sex": binary).

    ``path`` is a local CSV with the Kaggle or OpenML column names; without it ``url`` is
    downloaded into the cache folder on first use.
    """
    if second not in SECOND_TARGETS:
        raise DataError(f"titanic: second must be one of {list(SECOND_TARGETS)}, got {second!r}.")
    if path is None:
        path = download(
            url,
            cache_root(cache_dir) / "titanic" / FILE,
            what="the Titanic passenger list",
            progress=progress,
        )
    path = Path(path).expanduser()
    try:
        raw = pd.read_csv(path, na_values=["?"])
    except (OSError, ValueError) as err:
        raise DataError(f"Cannot read Titanic file {str(path)!r}: {err}.") from err
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise DataError(
            f"{str(path)!r} lacks the Titanic column(s) {missing}; expected the Kaggle "
            f"(Survived, Pclass, Sex, ...) or OpenML (survived, pclass, sex, ...) names, got "
            f"{list(raw.columns)}."
        )
    frame = raw[[c for c in raw.columns if c not in DROPPED]].copy()
    if "cabin" in raw.columns:
        frame["deck"] = raw["cabin"].astype("string").str.strip().str[0]
    frame["pclass"] = frame["pclass"].astype("Int64")
    return load_tables(
        {path.name: frame},
        labels=["survived", second],
        task_kinds={"survived": "binary", second: "multiclass" if second == "pclass" else "binary"},
    )
