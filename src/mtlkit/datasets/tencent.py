"""Tencent Advertising Algorithm Competition 2020: a user's age and gender from ad clicks.

The competition's files (a Tencent login is needed to download them):

- ``click_log.csv``: ``time, user_id, creative_id, click_times`` (``time`` is a day, 1..91);
- ``ad.csv``: ``creative_id, ad_id, product_id, product_category, advertiser_id, industry``
  (``\\N`` marks an unknown value);
- ``user.csv``: ``user_id, age, gender`` (age bucket 1..10, gender 1..2) - training users only.

They may sit in one folder, or in the competition's sub-folders (``train_preliminary/``,
``train_semi_final/``, ``test/``); all of them are read. Click logs are aggregated per user:
clicks, active days, distinct creatives/ads/products/advertisers/industries, click share per
product category, and each user's most-clicked product category, industry and advertiser.
Users without a row in ``user.csv`` (the test users) get both labels masked; a ``user.csv``
with only one of the label columns labels only that task.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtlkit.data.loading import load_tables
from mtlkit.data.schema import MultiTaskTable
from mtlkit.datasets.manual import data_folder, missing_files_error
from mtlkit.datasets.registry import DATASETS
from mtlkit.errors import DataError

#: What `mtlkit datasets` says about the data set(s) of this module.
ABOUT_SOURCE = "Tencent Ads Algorithm Competition 2020 (login; place the files)"
ABOUT_TASKS = "age (10 classes), gender (binary); test users unlabelled"
ABOUT_SIZE = "900,000 labelled + 1,000,000 test users (preliminary round), ~30M click records"

NAME = "tencent-ads-2020"
WHERE = "https://algo.qq.com (Tencent Advertising Algorithm Competition 2020, data page)"
SUBFOLDERS = (".", "train_preliminary", "train_semi_final", "test")
CLICK_COLUMNS = ("time", "user_id", "creative_id", "click_times")
AD_COLUMNS = ("creative_id", "ad_id", "product_id", "product_category", "advertiser_id", "industry")
TASK_KINDS = {"age": "multiclass", "gender": "binary"}
EXPECTED = ("click_log.csv", "ad.csv", "user.csv")


def _read(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, na_values=["\\N"])
    except (OSError, ValueError) as err:
        raise DataError(f"{NAME}: cannot read {path}: {err}.") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{NAME}: {path} lacks column(s) {missing}; expected {list(columns)}, got "
            f"{list(frame.columns)}."
        )
    return frame


def _files(folder: Path, name: str) -> list[Path]:
    return [folder / sub / name for sub in SUBFOLDERS if (folder / sub / name).is_file()]


def _stack(files: list[Path], columns: tuple[str, ...], key: str) -> pd.DataFrame:
    frames = [_read(f, columns) for f in files]
    return pd.concat(frames, ignore_index=True).drop_duplicates(subset=key, keep="last")


def _top(clicks: pd.DataFrame, column: str) -> pd.Series:
    """Per user, the value of ``column`` with the most clicks."""
    counts = clicks.groupby(["user_id", column])["click_times"].sum().reset_index()
    counts = counts.sort_values(["user_id", "click_times"], ascending=[True, False], kind="stable")
    return counts.drop_duplicates("user_id").set_index("user_id")[column]


def user_features(clicks: pd.DataFrame, ads: pd.DataFrame) -> pd.DataFrame:
    """One row per user from the click log joined with the ad attributes."""
    merged = clicks.merge(ads, on="creative_id", how="left")
    grouped = merged.groupby("user_id")
    out = pd.DataFrame(
        {
            "clicks": grouped["click_times"].sum(),
            "click_records": grouped.size(),
            "active_days": grouped["time"].nunique(),
            "first_day": grouped["time"].min(),
            "last_day": grouped["time"].max(),
            **{f"n_{c}": grouped[c].nunique() for c in AD_COLUMNS if c != "product_category"},
        }
    )
    out["clicks_per_day"] = out["clicks"] / out["active_days"]
    share = merged.pivot_table(
        index="user_id",
        columns="product_category",
        values="click_times",
        aggfunc="sum",
        fill_value=0,
    )
    share = share.div(share.sum(axis=1).replace(0, 1), axis=0)
    share.columns = [f"share_category_{int(c)}" for c in share.columns]
    out = out.join(share)
    for column in ("product_category", "industry", "advertiser_id"):
        top = _top(merged.dropna(subset=[column]), column)
        out[f"top_{column}"] = top.astype("Int64").astype("string")
    return out.fillna({c: 0.0 for c in share.columns}).reset_index()


@DATASETS.register(
    "tencent-ads-2020", ABOUT_SOURCE, tasks=ABOUT_TASKS, size=ABOUT_SIZE, download=False
)
def load_tencent_ads(
    path: str | Path | None = None, *, cache_dir: str | Path | None = None
) -> MultiTaskTable:
    """Per-user table with tasks ``age`` (10 classes) and ``gender`` (binary).

    ``path`` is the folder with the competition files (default ``<cache>/tencent-ads-2020``).
    """
    folder = data_folder(NAME, path, cache_dir)
    click_files, ad_files, user_files = (_files(folder, n) for n in EXPECTED)
    if not click_files or not ad_files:
        raise missing_files_error(NAME, folder, EXPECTED, WHERE)
    clicks = pd.concat([_read(f, CLICK_COLUMNS) for f in click_files], ignore_index=True)
    ads = _stack(ad_files, AD_COLUMNS, "creative_id")
    features = user_features(clicks, ads)
    users = _stack(user_files, ("user_id",), "user_id") if user_files else pd.DataFrame()
    labels = [c for c in TASK_KINDS if c in users.columns]
    if not labels:
        raise missing_files_error(NAME, folder, ["user.csv (user_id, age, gender)"], WHERE)
    frame = features.merge(users[["user_id", *labels]], on="user_id", how="left")
    for label in labels:
        frame[label] = frame[label].astype("Int64")
    labelled = frame[labels].notna().any(axis=1).to_numpy()
    parts = {"train users": frame[labelled], "test users": frame[~labelled]}
    parts = {k: v.drop(columns="user_id") for k, v in parts.items() if len(v)}
    return load_tables(
        parts,
        labels=labels,
        task_kinds={k: v for k, v in TASK_KINDS.items() if k in labels},
        feature_kinds={c: "categorical" for c in features.columns if c.startswith("top_")},
    )
