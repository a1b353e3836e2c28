"""The rules that :func:`~mtlkit.data.loading.load_tables` and
:func:`~mtlkit.data.streaming_table.stream_tables` both apply to their sources, declared once.

Files: which data files a path, folder or glob names, how CSV cells are read (the spellings
of a missing value) and which byte of a file its text encoding cannot decode. Columns: the
type class of each column (a column holds one kind of values in every source), the label
and dropped columns that must exist, a warning when the sources share no feature column (no
information passes between their rows), the feature kinds inferred from the values (numbers are
numeric, except integer columns with few distinct values), and the magnitudes a number may
have.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from mtlkit.data.schema import FEATURE_KINDS, FeatureKind, TaskKind
from mtlkit.data.values import MAX_CATEGORICAL_INTEGERS, RowSources, check_magnitudes
from mtlkit.errors import DataError, DataWarning

PathLike = str | Path

SUFFIXES = (".csv", ".csv.gz", ".parquet")


_NULLS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A"]


def file_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), None)


def expand_source(source: PathLike) -> list[Path]:
    """The data files named by a file path, a folder or a glob pattern."""
    text = str(source)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and file_suffix(p))
        if not files:
            raise DataError(f"Folder {text!r} holds no {', '.join(SUFFIXES)} files.")
        return files
    if path.is_file():
        if file_suffix(path) is None:
            raise DataError(
                f"File {text!r} has an unsupported extension; use one of {', '.join(SUFFIXES)}."
            )
        return [path]
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text) if file_suffix(Path(p)))
        if not files:
            raise DataError(f"Pattern {text!r} matches no {', '.join(SUFFIXES)} files.")
        return files
    raise DataError(f"Path {text!r} does not exist; check the file or folder name.")


def csv_convert_options(
    column_types: Mapping[str, pa.DataType] | None = None,
) -> pa_csv.ConvertOptions:
    """How CSV cells are read: the usual spellings of a missing value become nulls."""
    return pa_csv.ConvertOptions(
        null_values=_NULLS, strings_can_be_null=True, column_types=dict(column_types or {})
    )


def undecodable(path: Path, encoding: str) -> str | None:
    """A message naming the first byte of ``path`` that ``encoding`` cannot decode, if any."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = lines = 0
    gzipped = path.name.lower().endswith(".gz")
    try:
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            for chunk in chain(iter(partial(handle.read, 1 << 20), b""), [b""]):
                pending = decoder.getstate()[0]  # the start of a sequence cut by the last chunk
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as err:
                    data = pending + chunk
                    line = lines + data.count(b"\n", 0, err.start) + 1
                    return (
                        f"{str(path)!r} is not valid {'UTF-8' if encoding == 'utf8' else encoding}"
                        f" text: byte 0x{data[err.start]:02x} at offset "
                        f"{offset - len(pending) + err.start} "
                        f"{'of its uncompressed text ' if gzipped else ''}(line {line}) cannot "
                        "be decoded. Pass its encoding (e.g. encoding='latin-1' or 'cp1252'), "
                        "or save the file as UTF-8."
                    )
                offset += len(chunk)
                lines += chunk.count(b"\n")
    except (OSError, EOFError):  # EOFError: a truncated .gz
        return None
    return None


def unreadable(path: PathLike, error: BaseException) -> str:
    """The one line for a data file that cannot be read (damaged, truncated, not the format
    its name says): the file, the reader's reason on one line, what to check."""
    reason = " ".join(str(error).split()).rstrip(".")
    kind = file_suffix(Path(path)) or "data"
    return f"Cannot read {str(path)!r}: {reason}. Check that it is a valid, complete {kind} file."


def arrow_type_class(dtype: pa.DataType) -> str:
    if pa.types.is_dictionary(dtype):
        return arrow_type_class(dtype.value_type)
    checks = [
        ("integer", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("bool", pa.types.is_boolean),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
        ("empty", pa.types.is_null),
        ("datetime", lambda t: pa.types.is_temporal(t)),
    ]
    return next((name for name, check in checks if check(dtype)), str(dtype))


_COMPATIBLE = {"integer": "number", "float": "number"}


def check_types(names: Sequence[str], types: Sequence[dict[str, str]]) -> None:
    """A column must hold the same kind of values (numbers, strings...) in every source."""
    first: dict[str, tuple[str, str]] = {}
    for name, column_types in zip(names, types):
        for column, kind in column_types.items():
            if kind == "empty":
                continue
            seen = first.setdefault(column, (name, kind))
            if _COMPATIBLE.get(seen[1], seen[1]) != _COMPATIBLE.get(kind, kind):
                raise DataError(
                    f"Column {column!r} holds {seen[1]} values in {seen[0]!r} but {kind} "
                    f"values in {name!r}; make the column the same type in every file "
                    "(e.g. fix stray text in a numeric column)."
                )


def is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def infer_feature_kinds(
    columns: Iterable[str],
    types: Sequence[dict[str, str]],
    n_distinct: Callable[[str], int],
    overrides: Mapping[str, FeatureKind],
) -> dict[str, FeatureKind]:
    """Numbers are numeric, except integer columns with at most MAX_CATEGORICAL_INTEGERS
    distinct values (``n_distinct(column)``); other columns are categorical."""
    kinds: dict[str, FeatureKind] = {}
    for column in columns:
        classes = {t[column] for t in types if column in t} - {"empty"}
        if classes == {"integer"}:
            many = n_distinct(column) > MAX_CATEGORICAL_INTEGERS
            kinds[column] = "numeric" if many else "categorical"
        else:
            kinds[column] = "numeric" if classes <= {"integer", "float"} else "categorical"
    for column, kind in overrides.items():
        if column not in kinds:
            raise DataError(f"feature_kinds names {column!r}, which is not a feature column.")
        if kind not in FEATURE_KINDS:
            raise DataError(
                f"feature_kinds[{column!r}] is {kind!r}; use one of {list(FEATURE_KINDS)}."
            )
        kinds[column] = kind
    return kinds


def reject_empty(columns: Sequence[str]) -> None:
    """Feature columns without a single value in any source are an error."""
    if columns:
        raise DataError(
            f"Feature column(s) {list(columns)} are empty (all values missing) in every source; "
            "pass them in drop_columns or fill them."
        )


def not_numeric(column: str) -> DataError:
    return DataError(
        f"Feature {column!r} is declared numeric but holds non-numeric values; "
        "declare it categorical or fix the values."
    )


def check_finite(
    what: str, values: pd.Series, source: np.ndarray, bad_values: str | None = None
) -> pd.Series:
    """Reject infinite and out-of-range numbers, naming the sources that hold them (for tables
    whose rows are known by their source only, e.g. streamed ones); under
    ``bad_values="missing"`` they become NaN (the column returned)."""
    return check_magnitudes(what, values, RowSources(source), bad_values)


def label_columns(labels: Iterable[str]) -> list[str]:
    """The label columns given to ``load_tables`` or ``stream_tables``, at least one."""
    labels = list(labels)
    if not labels:
        raise DataError("No label columns given; name at least one label column.")
    return labels


def check_label_names(
    labels: Sequence[str], task_kinds: Mapping[str, TaskKind], drop: Iterable[str] = ()
) -> None:
    if len(set(labels)) < len(labels):
        raise DataError(f"Label columns {labels} contain duplicates; list each label once.")
    unknown_kinds = sorted(set(task_kinds) - set(labels))
    if unknown_kinds:
        raise DataError(f"task_kinds names {unknown_kinds}, which are not label columns.")
    dropped = [c for c in labels if c in set(drop)]
    if dropped:
        raise DataError(
            f"Label column(s) {dropped} are also listed in drop_columns; a label is never a "
            "feature, so remove it from drop_columns (or from the labels)."
        )


def warn_unconnected(names: Sequence[str], features: Sequence[set[str]]) -> None:
    """Warn (:class:`~mtlkit.errors.DataWarning`) when the sources ``names`` (with the feature
    columns ``features``) fall into groups that share no feature column: a model cannot relate
    one group's rows to another's, as each lacks the other's features entirely."""
    groups: list[tuple[list[str], set[str]]] = []
    for name, columns in zip(names, features):
        joined = [g for g in groups if g[1] & columns]
        groups = [g for g in groups if not g[1] & columns]
        merged = [n for g in joined for n in g[0]] + [name]
        groups.append((merged, columns.union(*(g[1] for g in joined))))
    if len(groups) > 1:
        listed = " and ".join(str([Path(n).name for n in g[0][:3]])[:80] for g in groups[:2])
        more = f" (and {len(groups) - 2} more groups)" if len(groups) > 2 else ""
        warnings.warn(
            f"the files {listed}{more} have no feature column in common: no information can "
            "pass between their rows; check that their column names match.",
            DataWarning,
            stacklevel=4,
        )


def check_columns(
    labels: Sequence[str], drop: set[str], columns: Sequence[str], names: Sequence[str]
) -> None:
    """Every label column and every column to drop is in at least one of the sources."""
    missing = [c for c in labels if c not in columns]
    if missing:
        raise DataError(
            f"Label column(s) {missing} are in none of the sources {names}; the columns found "
            f"are {columns[:30]}. Check the spelling of the labels."
        )
    not_found = sorted(drop - set(columns))
    if not_found:
        raise DataError(f"drop_columns names {not_found}, which are in none of {names}.")
