"""E-commerce funnels for ESMM-style models: click, then conversion, on every impression.

Both load into two binary tasks in funnel order, as ESMM (Ma et al., "Entire Space
Multi-Task Model", SIGIR 2018) trains them: ``ctr`` (clicked) and ``ctcvr`` (clicked *and*
converted), both labelled on every impression.

- ``ali-ccp`` (Alibaba Click and Conversion Prediction, Tianchi data set 408): the common
  preprocessed CSVs ``ali_ccp_train.csv``, ``ali_ccp_val.csv``, ``ali_ccp_test.csv`` with
  label columns ``click`` and ``purchase``; feature columns named ``D...`` are dense
  (numeric), every other one is a categorical id field (``101``, ``121``, ``205``...).
- ``aliexpress`` (AliExpress search logs, Tianchi data set 74690, one folder per country such
  as ``AliExpress_NL``): ``train.csv`` and ``test.csv`` with ``search_id``,
  ``categorical_1..16``, ``numerical_1..63``, ``click``, ``conversion``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mtlkit.data.loading import load_tables
from mtlkit.data.schema import MultiTaskTable
from mtlkit.datasets.manual import data_folder, missing_files_error
from mtlkit.datasets.registry import DATASETS
from mtlkit.errors import DataError

#: What `mtlkit datasets` says about the data set(s) of this module.
ALI_CCP_SOURCE = "Alibaba Ali-CCP on Tianchi (login; place the files)"
ALI_CCP_TASKS = "ctr, ctcvr (binary, every impression)"
ALI_CCP_SIZE = "~85M impressions (train + test)"
ALIEXPRESS_SOURCE = "AliExpress search logs on Tianchi (login; place the files)"
ALIEXPRESS_TASKS = "ctr, ctcvr (binary, every impression)"
ALIEXPRESS_SIZE = "millions of impressions per country"

TASKS = ("ctr", "ctcvr")
ALI_CCP_FILES = ("ali_ccp_train.csv", "ali_ccp_val.csv", "ali_ccp_test.csv")
ALI_CCP_WHERE = "https://tianchi.aliyun.com/dataset/408 (Ali-CCP; preprocessed CSVs)"
ALIEXPRESS_FILES = ("train.csv", "test.csv")
ALIEXPRESS_WHERE = "https://tianchi.aliyun.com/dataset/74690 (AliExpress, one folder per country)"


def _funnel_frame(path: Path, name: str, click: str, conversion: str, drop: Sequence[str]):
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise DataError(f"{name}: cannot read {path}: {err}.") from err
    frame.columns = [str(c) for c in frame.columns]
    missing = [c for c in (click, conversion) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{name}: {path} lacks label column(s) {missing}; the {name} format has "
            f"{click!r} and {conversion!r} columns."
        )
    for column in (click, conversion):
        values = pd.to_numeric(frame[column], errors="coerce")
        if not values.dropna().isin([0, 1]).all():
            raise DataError(f"{name}: {path} column {column!r} must hold 0/1 values.")
        frame[column] = values
    frame["ctr"] = frame[click]
    frame["ctcvr"] = frame[click] * frame[conversion]  # a conversion counts only after a click
    return frame.drop(columns=[click, conversion, *(c for c in drop if c in frame.columns)])


def _load_funnel(
    name: str,
    folder: Path,
    files: Sequence[str],
    where: str,
    click: str,
    conversion: str,
    *,
    drop: Sequence[str] = (),
    is_numeric,
) -> MultiTaskTable:
    found = [folder] if folder.is_file() else [folder / f for f in files if (folder / f).is_file()]
    if not found:
        raise missing_files_error(name, folder, files, where)
    frames = {p.name: _funnel_frame(p, name, click, conversion, drop) for p in found}
    columns = [c for c in next(iter(frames.values())).columns if c not in TASKS]
    return load_tables(
        frames,
        labels=list(TASKS),
        task_kinds={t: "binary" for t in TASKS},
        feature_kinds={c: "numeric" if is_numeric(c) else "categorical" for c in columns},
    )


@DATASETS.register(
    "ali-ccp", ALI_CCP_SOURCE, tasks=ALI_CCP_TASKS, size=ALI_CCP_SIZE, download=False
)
def load_ali_ccp(
    path: str | Path | None = None, *, cache_dir: str | Path | None = None
) -> MultiTaskTable:
    """Ali-CCP with tasks ``ctr`` and ``ctcvr``; ``path`` is the folder with the CSVs (or one
    of them), default ``<cache>/ali-ccp``."""
    folder = data_folder("ali-ccp", path, cache_dir)
    return _load_funnel(
        "ali-ccp",
        folder,
        ALI_CCP_FILES,
        ALI_CCP_WHERE,
        "click",
        "purchase",
        is_numeric=lambda c: c.startswith("D"),
    )


@DATASETS.register(
    "aliexpress", ALIEXPRESS_SOURCE, tasks=ALIEXPRESS_TASKS, size=ALIEXPRESS_SIZE, download=False
)
def load_aliexpress(
    path: str | Path | None = None,
    *,
    country: str = "NL",
    cache_dir: str | Path | None = None,
) -> MultiTaskTable:
    """AliExpress with tasks ``ctr`` and ``ctcvr``; ``path`` is one country's folder (or one
    of its CSVs), default ``<cache>/aliexpress/AliExpress_<country>``."""
    folder = (
        Path(path).expanduser()
        if path is not None
        else data_folder("aliexpress", None, cache_dir) / f"AliExpress_{country}"
    )
    return _load_funnel(
        "aliexpress",
        folder,
        ALIEXPRESS_FILES,
        ALIEXPRESS_WHERE,
        "click",
        "conversion",
        drop=("search_id",),
        is_numeric=lambda c: c.startswith("numerical_"),
    )
