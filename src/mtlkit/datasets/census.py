"""UCI Census-Income (KDD): the two task groups of the MMoE paper.

Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, section 6.2: group 1 predicts ``income`` (more than $50k) and
``marital`` (ever married); group 2 predicts ``education`` (at least a bachelor's degree) and
``marital``. The column a task is derived from is never a feature; the paper's groups keep
its other columns as features. ``group=3`` (six targets, for the task-grouping study of
docs/reproductions.md) also drops the columns that restate a target (:data:`TARGETS`).

Checksums: the UCI archive's own SHA-256 is not pinned (it could not be verified when this was
written), so the archive is checked against the digest recorded at its first download. The
test split extracted from it is checked against a pinned SHA-256 of its uncompressed content
(:data:`TEST_SPLIT_SHA256`, computed from the project's reference copy of
``census-income.test``).
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from mtlkit.data.loading import load_tables
from mtlkit.data.schema import MultiTaskTable
from mtlkit.datasets.cache import CHUNK, cache_root, download
from mtlkit.datasets.registry import DATASETS
from mtlkit.errors import DataError

#: What `mtlkit datasets` says about the data set(s) of this module.
ABOUT_SOURCE = "UCI Census-Income (KDD), downloaded on first use"
ABOUT_TASKS = (
    "group=1: income, marital; group=2: education, marital; group=3: income, marital, "
    "education, sex, citizenship, hispanic (binary; each target's proxy columns dropped)"
)
ABOUT_SIZE = "299,285 rows (199,523 train + 99,762 test) x 39 features (31 in group=3)"

URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/census.tar.gz"
ARCHIVE = "census.tar.gz"
FOLDER = "census-income"
SPLIT_FILES = {"train": "census-income.data", "test": "census-income.test"}
#: SHA-256 of the uncompressed ``census-income.test`` (99,762 rows).
TEST_SPLIT_SHA256 = "98402b1ab879573d0a7f38a699a40258080e25e33d3401e7bf9c96d3fa0fab8c"

#: The README's continuous columns (``num_emp`` has only 7 values but counts people).
NUMERIC_COLUMNS = (
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "num_emp",
    "weeks_worked",
)

COLUMNS = (
    "age",
    "class_worker",
    "det_ind_code",
    "det_occ_code",
    "education",
    "wage_per_hour",
    "hs_college",
    "marital_stat",
    "major_ind_code",
    "major_occ_code",
    "race",
    "hisp_origin",
    "sex",
    "union_member",
    "unemp_reason",
    "full_or_part_emp",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "tax_filer_stat",
    "region_prev_res",
    "state_prev_res",
    "det_hh_fam_stat",
    "det_hh_summ",
    "instance_weight",
    "mig_chg_msa",
    "mig_chg_reg",
    "mig_move_reg",
    "mig_same",
    "mig_prev_sunbelt",
    "num_emp",
    "fam_under_18",
    "country_father",
    "country_mother",
    "country_self",
    "citizenship",
    "own_or_self",
    "vet_question",
    "vet_benefits",
    "weeks_worked",
    "year",
    "income_50k",
)
#: Integer codes that name categories, not quantities.
CODE_COLUMNS = ("det_ind_code", "det_occ_code", "own_or_self", "vet_benefits", "year")
DEGREES = ("Bachelors", "Masters", "Prof school", "Doctorate")


class Target(NamedTuple):
    """A binary target: its source column, the rule giving 1/0 from the stripped source values,
    and the proxy columns that restate it (dropped from the features in group 3 only)."""

    source: str
    rule: Callable[[pd.Series], pd.Series]
    proxies: tuple[str, ...] = ()


#: Hispanic origin: a named origin ("NA" and "Do not know" are not a yes).
HISPANIC = ("Mexican", "Chicano", "Puerto Rican", "Cuban", "Central or South", "Other Spanish")

#: The one table of targets. Proxies: ``det_hh_fam_stat`` / ``det_hh_summ`` name the spouse of
#: the householder and married or never-married children, ``tax_filer_stat`` joint filing (each
#: restates marital status); ``country_self`` restates the native-born part of ``citizenship``
#: (born in the United States, 88,353 of the 88,355 such rows). Not targets: ``vet_benefits``
#: code 1 is exactly "answered the veterans' questionnaire" (``vet_question``), not veteran
#: status, and weeks worked > 0 is fixed by the employment columns that income needs.
TARGETS = {
    "income": Target("income_50k", lambda s: s.eq("50000+.")),
    "marital": Target(
        "marital_stat",
        lambda s: s.ne("Never married"),
        ("det_hh_fam_stat", "det_hh_summ", "tax_filer_stat"),
    ),
    "education": Target("education", lambda s: s.str.startswith(DEGREES)),
    "sex": Target("sex", lambda s: s.eq("Female")),
    "citizenship": Target("citizenship", lambda s: s.str.startswith("Native"), ("country_self",)),
    "hispanic": Target("hisp_origin", lambda s: s.str.startswith(HISPANIC)),
}
#: The MMoE paper's two task pairs (its features: only the targets' sources are dropped), and
#: the six targets of the task-grouping study (docs/reproductions.md §5), where every target's
#: proxies are dropped too: female, native-born (incl. Puerto Rico, outlying areas and born
#: abroad of American parents), of Hispanic origin.
GROUPS = {
    1: ("income", "marital"),
    2: ("education", "marital"),
    3: ("income", "marital", "education", "sex", "citizenship", "hispanic"),
}
#: The groups that follow the paper's features (proxies stay).
PAPER_GROUPS = (1, 2)


def dropped_columns(group: int) -> tuple[str, ...]:
    """The columns of the file that are not features in ``group``: the survey weight, each
    target's source and (outside the paper's groups) each target's proxies."""
    targets = [TARGETS[t] for t in GROUPS[group]]
    proxies = () if group in PAPER_GROUPS else tuple(c for t in targets for c in t.proxies)
    return ("instance_weight", *(t.source for t in targets), *proxies)


def read_census_file(path: Path) -> pd.DataFrame:
    """One split file (plain or ``.gz``) as a frame with the README's column names."""
    try:
        frame = pd.read_csv(
            path,
            header=None,
            skipinitialspace=True,
            na_values=["?"],
            keep_default_na=False,
            low_memory=False,
        )
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"Cannot read census file {str(path)!r}: {err}.") from err
    if frame.shape[1] != len(COLUMNS):
        raise DataError(
            f"{str(path)!r} has {frame.shape[1]} columns, a Census-Income (KDD) file has "
            f"{len(COLUMNS)}; is it census-income.data or census-income.test from UCI?"
        )
    frame.columns = COLUMNS
    return frame


def _content_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(archive: Path, folder: Path) -> None:
    """Write the split files found in the UCI archive (any folder, ``.gz`` or not) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if not member.isfile() or name.removesuffix(".gz") not in SPLIT_FILES.values():
                    continue
                dest = folder / name
                tmp = dest.with_name(f".{name}.part")
                with tar.extractfile(member) as src, open(tmp, "wb") as out:
                    for chunk in iter(lambda: src.read(CHUNK), b""):
                        out.write(chunk)
                tmp.replace(dest)
    except (tarfile.TarError, OSError) as err:
        raise DataError(
            f"Cannot unpack {archive}: {err}. Is it the UCI census.tar.gz? (A cached download: "
            "delete it to download it again.)"
        ) from err


def _find(folder: Path, split: str) -> Path | None:
    stem = SPLIT_FILES[split]
    return next((folder / n for n in (stem, stem + ".gz") if (folder / n).is_file()), None)


def _split_files(
    path: str | Path | None, split: str, cache_dir: str | Path | None, progress: bool
) -> list[Path]:
    if split not in ("all", "train", "test"):
        raise DataError(f"split must be 'all', 'train' or 'test', got {split!r}.")
    wanted = ["train", "test"] if split == "all" else [split]
    if path is not None:
        path = Path(path).expanduser()
        if path.is_file() and not path.name.endswith(".tar.gz"):
            return [path]
        if not path.exists():
            raise DataError(
                f"{str(path)!r} does not exist; pass a Census-Income file "
                "(census-income.test.gz...), a folder holding them, or the UCI census.tar.gz."
            )
    folder = path if path is not None and path.is_dir() else cache_root(cache_dir) / FOLDER
    if folder is not path and any(_find(folder, s) is None for s in wanted):
        archive = path or download(
            URL, folder / ARCHIVE, what="the UCI Census-Income (KDD) archive", progress=progress
        )
        _extract(archive, folder)
        test = _find(folder, "test")
        if test is not None and _content_sha256(test) != TEST_SPLIT_SHA256:
            raise DataError(
                f"{test} does not match the published test split (sha256 of its content "
                f"differs from {TEST_SPLIT_SHA256}); delete {folder} to download again."
            )
    files = [_find(folder, s) for s in wanted]
    missing = [SPLIT_FILES[s] for s, f in zip(wanted, files) if f is None]
    if missing:
        raise DataError(
            f"No {' or '.join(missing)}(.gz) in {folder}; put the UCI files there "
            f"(from {URL}) or pass path=... to a copy."
        )
    return [f for f in files if f is not None]


@DATASETS.register("census-income", ABOUT_SOURCE, tasks=ABOUT_TASKS, size=ABOUT_SIZE, download=True)
def load_census(
    path: str | Path | None = None,
    *,
    group: int = 1,
    split: str = "all",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> MultiTaskTable:
    """The Census-Income (KDD) table for the paper's task ``group`` (1: income + marital,
    2: education + marital), or ``group=3``: six binary targets for task grouping (income,
    marital, education, sex, citizenship, hispanic; see :data:`GROUPS`).

    ``path`` is a split file (plain or ``.gz``), a folder holding ``census-income.data`` /
    ``census-income.test``, or the UCI ``census.tar.gz``; without it the archive is downloaded
    into the cache folder on first use. ``split`` ("all", "train" or "test") chooses the UCI
    splits to load from a folder or the archive. ``instance_weight`` (a survey weight) and
    the source columns of the group's tasks are dropped (no task's column is a feature of
    another). Groups 1 and 2 keep the paper's features, so columns that restate a target stay
    (``det_hh_fam_stat`` beside marital); group 3 also drops every target's proxy columns
    (:data:`TARGETS`), so that none of its targets is given away. The continuous columns are
    numeric, all others (the code columns included) categorical.
    """
    if group not in GROUPS:
        raise DataError(
            f"group must be 1 (income + marital), 2 (education + marital) or 3 (six targets: "
            f"{', '.join(GROUPS[3])}), got {group!r}."
        )
    tasks = GROUPS[group]
    dropped = dropped_columns(group)
    frames = {}
    for file in _split_files(path, split, cache_dir, progress):
        raw = read_census_file(file)
        frame = raw.drop(columns=list(dropped))
        for task in tasks:
            target = TARGETS[task]
            frame[task] = target.rule(raw[target.source].astype(str).str.strip()).astype("int64")
        frames[file.name] = frame
    kinds = {c: "categorical" for c in CODE_COLUMNS} | {c: "numeric" for c in NUMERIC_COLUMNS}
    return load_tables(
        frames,
        labels=list(tasks),
        task_kinds={t: "binary" for t in tasks},
        feature_kinds={c: k for c, k in kinds.items() if c not in dropped},
    )
