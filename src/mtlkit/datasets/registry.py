"""Name -> loader, with what each built-in data set holds and where it comes from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mtlkit.data.schema import MultiTaskTable
from mtlkit.datasets.census import load_census
from mtlkit.datasets.funnel import load_ali_ccp, load_aliexpress
from mtlkit.datasets.synthetic import load_synthetic
from mtlkit.datasets.tencent import load_tencent_ads
from mtlkit.datasets.titanic import load_titanic
from mtlkit.errors import ConfigError
from mtlkit.validation import check_choice


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in data set: its loader, tasks, size and source (``download``: fetched
    automatically; otherwise the user places the files)."""

    name: str
    loader: Callable[..., MultiTaskTable]
    tasks: str
    size: str
    source: str
    download: bool


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo(
            "synthetic",
            load_synthetic,
            "label0, label1 (binary; correlation=..., partial_labels=True: one label per file)",
            "n_rows (default 10,000) x 100 numeric features",
            "generated (Ma et al., KDD 2018)",
            True,
        ),
        DatasetInfo(
            "census-income",
            load_census,
            "group=1: income, marital; group=2: education, marital (binary)",
            "299,285 rows (199,523 train + 99,762 test) x 39 features",
            "UCI Census-Income (KDD), downloaded on first use",
            True,
        ),
        DatasetInfo(
            "titanic",
            load_titanic,
            "survived (binary) + pclass (3 classes) or sex (second='sex')",
            "891 rows (Kaggle train) or 1,309 (OpenML)",
            "public CSV, downloaded on first use",
            True,
        ),
        DatasetInfo(
            "tencent-ads-2020",
            load_tencent_ads,
            "age (10 classes), gender (binary); test users unlabelled",
            "900,000 labelled + 1,000,000 test users (preliminary round), ~30M click records",
            "Tencent Ads Algorithm Competition 2020 (login; place the files)",
            False,
        ),
        DatasetInfo(
            "ali-ccp",
            load_ali_ccp,
            "ctr, ctcvr (binary, every impression)",
            "~85M impressions (train + test)",
            "Alibaba Ali-CCP on Tianchi (login; place the files)",
            False,
        ),
        DatasetInfo(
            "aliexpress",
            load_aliexpress,
            "ctr, ctcvr (binary, every impression)",
            "millions of impressions per country",
            "AliExpress search logs on Tianchi (login; place the files)",
            False,
        ),
    )
}


def available() -> dict[str, DatasetInfo]:
    """The built-in data sets by name."""
    return dict(DATASETS)


def load(name: str, path: str | Path | None = None, **kwargs: object) -> MultiTaskTable:
    """The merged multi-task table (with its task specs) of built-in data set ``name``.

    ``path`` points to a local copy; the other keyword arguments are the loader's (e.g.
    ``group=2`` for census-income, ``cache_dir=...``).
    """
    check_choice("data set", name, DATASETS)
    loader = DATASETS[name].loader
    try:
        return loader(path, **kwargs)
    except TypeError as err:
        if "unexpected keyword" not in str(err):
            raise
        raise ConfigError(f"data set {name!r}: {err}; see help({loader.__name__}).") from None
