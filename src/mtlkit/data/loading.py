"""Load CSV/Parquet files or data frames whose columns differ into one multi-task table.

Rows are concatenated, never joined: a source that lacks a label column contributes rows whose
label for that task is masked out, and a feature a source lacks is NaN for its rows. Values are
checked before any training (:mod:`mtlkit.data.values`): numbers typed as text, infinite or
absurd magnitudes, text that is not in the file's encoding.
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
import pyarrow.parquet as pq

from mtlkit.data.errors import DataError
from mtlkit.data.read_options import text_encoding
from mtlkit.data.schema import FeatureKind, MultiTaskTable, TaskKind
from mtlkit.data.tasks import encode_labels, infer_task_spec, label_present
from mtlkit.data.values import (
    MAX_CATEGORICAL_INTEGERS,
    Origin,
    Origins,
    RowSources,
    check_bad_values,
    check_magnitudes,
    mask_missing_labels,
    missing_markers,
    numbers_typed_as_text,
)
from mtlkit.errors import DataWarning

PathLike = str | Path
Sources = PathLike | pd.DataFrame | Sequence[PathLike | pd.DataFrame] | Mapping[str, pd.DataFrame]

SUFFIXES = (".csv", ".csv.gz", ".parquet")
_NULLS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A"]


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), None)


def _expand(source: PathLike) -> list[Path]:
    """The data files named by a file path, a folder or a glob pattern."""
    text = str(source)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _suffix(p))
        if not files:
            raise DataError(f"Folder {text!r} holds no {', '.join(SUFFIXES)} files.")
        return files
    if path.is_file():
        if _suffix(path) is None:
            raise DataError(
                f"File {text!r} has an unsupported extension; use one of {', '.join(SUFFIXES)}."
            )
        return [path]
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text) if _suffix(Path(p)))
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


def _undecodable(path: Path, encoding: str) -> str | None:
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
    except (OSError, EOFError):
        return None
    return None


def _read_file(path: Path, encoding: str = "utf8") -> pa.Table:
    csv = _suffix(path) != ".parquet"
    try:
        if not csv:
            table = pq.read_table(path)
        else:
            reading = pa_csv.ReadOptions(encoding=encoding)
            table = pa_csv.read_csv(
                path, read_options=reading, convert_options=csv_convert_options()
            )
            table.column_names  # noqa: B018 - a header that is not valid UTF-8 raises here
    except (pa.ArrowException, OSError, ValueError, EOFError) as err:  # EOFError: cut .gz
        message = _undecodable(path, encoding) if csv else None
        raise DataError(
            message
            or f"Cannot read {str(path)!r}: {err}. Check that it is a valid, non-empty "
            f"{_suffix(path)} file."
        ) from err
    if csv and any(pa.types.is_binary(t) for t in table.schema.types):  # not valid UTF-8
        raise DataError(_undecodable(path, encoding) or f"{str(path)!r} is not valid UTF-8.")
    return table


def _collect(sources: Sources) -> list[tuple[str, pd.DataFrame | Path]]:
    """(source name, frame or file) pairs in the given order."""
    if isinstance(sources, pd.DataFrame):
        return [("frame0", sources)]
    if isinstance(sources, Mapping):
        for key, frame in sources.items():
            if not isinstance(frame, pd.DataFrame):
                raise DataError(f"Source {key!r} must be a pandas DataFrame, got {type(frame)}.")
        return [(str(k), f) for k, f in sources.items()]
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not items:
        raise DataError("No sources given; pass a file, a folder, a glob or data frames.")
    pairs: list[tuple[str, pd.DataFrame | Path]] = []
    n_frames = 0
    for item in items:
        if isinstance(item, pd.DataFrame):
            pairs.append((f"frame{n_frames}", item))
            n_frames += 1
        else:
            pairs.extend((p.name, p) for p in _expand(item))
    files = [x for _, x in pairs if isinstance(x, Path)]
    if len({p.name for p in files}) < len(files):  # same file name in two folders
        pairs = [(str(x) if isinstance(x, Path) else n, x) for n, x in pairs]
    return pairs


def _arrow_type_class(dtype: pa.DataType) -> str:
    if pa.types.is_dictionary(dtype):
        return _arrow_type_class(dtype.value_type)
    checks = [
        ("integer", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("bool", pa.types.is_boolean),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
        ("empty", pa.types.is_null),
        ("datetime", lambda t: pa.types.is_temporal(t)),
    ]
    return next((name for name, check in checks if check(dtype)), str(dtype))


def _frame_type_class(column: pd.Series) -> str:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _frame_type_class(pd.Series(dtype.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    classes = {"integer": "integer", "floating": "float", "mixed-integer-float": "float"}
    classes |= {"boolean": "bool", "empty": "empty", "datetime": "datetime"}
    return classes.get(inferred, "string")


_COMPATIBLE = {"integer": "number", "float": "number"}


def _load_one(
    name: str, item: pd.DataFrame | Path, encoding: str
) -> tuple[pd.DataFrame, dict[str, str], Origin]:
    """One source as a frame, with the type class of each column and where its rows come from."""
    table = _read_file(item, encoding) if isinstance(item, Path) else None
    columns = table.column_names if table is not None else [str(c) for c in item.columns]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise DataError(f"Source {name!r} has duplicate column name(s) {duplicates}; rename them.")
    if table is not None:
        frame = table.to_pandas()
        types = dict(zip(columns, map(_arrow_type_class, table.schema.types)))
        origin = Origin(name, "parquet" if _suffix(item) == ".parquet" else "csv")
    else:
        frame = item.set_axis(columns, axis=1)
        types = {c: _frame_type_class(frame[c]) for c in columns}
        origin = Origin(name, "frame", item.index)
    if frame.shape[0] == 0:
        raise DataError(f"Source {name!r} has no rows; remove it or fill it.")
    return frame, types, origin


def _check_types(names: Sequence[str], types: Sequence[dict[str, str]]) -> None:
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


def _roles(
    columns: Sequence[str],
    labels: Sequence[str],
    drop: set[str],
    task_kinds: Mapping[str, TaskKind],
    feature_kinds: Mapping[str, FeatureKind],
) -> dict[str, str]:
    """How :func:`numbers_typed_as_text` reads each label and feature column."""
    roles = {}
    for column in columns:
        if column in labels:
            kind = task_kinds.get(column)
            regression = "numeric label" if kind == "regression" else "class label"
            roles[column] = "label" if kind is None else regression
        elif column not in drop and feature_kinds.get(column) != "categorical":
            declared = feature_kinds.get(column) == "numeric"
            roles[column] = "numeric feature" if declared else "feature"
    return roles


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _feature_kinds(
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
        if kind not in ("numeric", "categorical"):
            raise DataError(
                f"feature_kinds[{column!r}] is {kind!r}; use 'numeric' or 'categorical'."
            )
        kinds[column] = kind
    return kinds


def _reject_empty(columns: Sequence[str]) -> None:
    """Feature columns without a single value in any source are an error."""
    if columns:
        raise DataError(
            f"Feature column(s) {list(columns)} are empty (all values missing) in every source; "
            "pass them in drop_columns or fill them."
        )


def _not_numeric(column: str) -> DataError:
    return DataError(
        f"Feature {column!r} is declared numeric but holds non-numeric values; "
        "declare it categorical or fix the values."
    )


def _check_features(
    features: pd.DataFrame, kinds: Mapping[str, FeatureKind], origins: Origins, bad_values: str
) -> None:
    _reject_empty(features.columns[features.isna().all().to_numpy()].tolist())
    for column in features.columns:
        if kinds[column] != "numeric":
            continue
        if not _is_number(features[column]):
            raise _not_numeric(column)
        what = f"Feature {column!r}"
        features[column] = check_magnitudes(what, features[column], origins, bad_values)


def _check_finite(
    what: str, values: pd.Series, source: np.ndarray, bad_values: str | None = None
) -> pd.Series:
    """Reject infinite and out-of-range numbers, naming the sources that hold them (for tables
    whose rows are known by their source only, e.g. streamed ones); under
    ``bad_values="missing"`` they become NaN (the column returned)."""
    return check_magnitudes(what, values, RowSources(source), bad_values)


def _check_labels(
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


def _warn_unconnected(names: Sequence[str], features: Sequence[set[str]]) -> None:
    """Warn when the files fall into groups that share no feature column: a model cannot
    relate one group's rows to another's (each lacks the other's features entirely)."""
    groups: list[tuple[list[str], set[str]]] = []
    for name, columns in zip(names, features):
        joined = [g for g in groups if g[1] & columns]
        groups = [g for g in groups if not g[1] & columns]
        merged_names = [n for g in joined for n in g[0]] + [name]
        groups.append((merged_names, columns.union(*(g[1] for g in joined))))
    if len(groups) > 1:
        listed = " and ".join(str(g[0][:3])[:80] for g in groups[:2])
        more = f" (and {len(groups) - 2} more groups)" if len(groups) > 2 else ""
        warnings.warn(
            f"the files {listed}{more} have no feature column in common: no information can "
            "pass between their rows; check that their column names match.",
            DataWarning,
            stacklevel=4,
        )


def _check_columns(
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


def load_tables(
    sources: Sources,
    labels: Iterable[str],
    *,
    task_kinds: Mapping[str, TaskKind] | None = None,
    feature_kinds: Mapping[str, FeatureKind] | None = None,
    drop_columns: Iterable[str] = (),
    missing_labels: Sequence[object] | None = None,
    bad_values: str = "error",
    encoding: str = "utf-8",
) -> MultiTaskTable:
    """Concatenate the rows of all sources into one table with per-task labels and masks.

    ``sources`` is a CSV/Parquet file, a folder, a glob, a list of those or of data frames, a
    data frame or a dict name -> data frame. ``labels`` lists the label columns (the task
    order); a source without a label column gets that task masked out for its rows. Features
    are the union of the other columns, minus ``drop_columns``. ``task_kinds`` and
    ``feature_kinds`` override the inferred task and feature kinds.

    Values are checked (:mod:`mtlkit.data.values`): ``missing_labels`` lists label values that
    mean "label missing" (e.g. ``[-1]``), masked like empty cells; ``bad_values="missing"``
    reads the non-numeric cells of a numeric column, infinities and values beyond the float32
    range as missing (with a warning) instead of raising; ``encoding`` is the CSV files' text
    encoding (UTF-8 by default).
    """
    labels = list(labels)
    if not labels:
        raise DataError("No label columns given; name at least one label column.")
    settings = {"missing_labels": missing_labels, "bad_values": bad_values, "encoding": encoding}
    return _load(sources, labels, task_kinds, feature_kinds, drop_columns, **settings)


def load_features(
    sources: Sources,
    *,
    ignore: Iterable[str] = (),
    feature_kinds: Mapping[str, FeatureKind] | None = None,
    bad_values: str = "error",
    encoding: str = "utf-8",
) -> MultiTaskTable:
    """The rows of ``sources`` as a table without tasks, e.g. new data to score with a fitted
    model. Columns named in ``ignore`` (such as label columns) are left out where present;
    ``feature_kinds`` may name columns the sources lack (pass a fitted model's kinds: the
    model names the missing ones); the other settings are those of :func:`load_tables`."""
    settings = {"bad_values": bad_values, "encoding": encoding}
    return _load(sources, [], None, feature_kinds, (), ignore=set(ignore), **settings)


def _load(
    sources: Sources,
    labels: list[str],
    task_kinds: Mapping[str, TaskKind] | None,
    feature_kinds: Mapping[str, FeatureKind] | None,
    drop_columns: Iterable[str],
    ignore: set[str] = frozenset(),
    *,
    missing_labels: Sequence[object] | None = None,
    bad_values: str = "error",
    encoding: str = "utf-8",
) -> MultiTaskTable:
    task_kinds, feature_kinds = dict(task_kinds or {}), dict(feature_kinds or {})
    drop = set(drop_columns)
    bad_values, markers = check_bad_values(bad_values), missing_markers(missing_labels)
    encoding = text_encoding(encoding)
    _check_labels(labels, task_kinds, drop)
    pairs = _collect(sources)
    names = [name for name, _ in pairs]
    frames, types, origins = zip(*(_load_one(name, item, encoding) for name, item in pairs))
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    _check_columns(labels, drop, columns, names)
    drop |= ignore & set(columns)
    if not labels:  # new rows to score: kinds of a fitted model, some columns maybe absent
        feature_kinds = {c: k for c, k in feature_kinds.items() if c in columns}
    roles = _roles(columns, labels, drop, task_kinds, feature_kinds)
    for frame, column_types, origin in zip(frames, types, origins):
        masked = mask_missing_labels(frame, labels, markers)
        numbers_typed_as_text(frame, column_types, origin, roles, bad_values, masked)
    _check_types(names, types)
    _warn_unconnected(names, [set(f.columns) - set(labels) - drop for f in frames])
    merged = pd.concat(frames, ignore_index=True, sort=False).reindex(columns=columns)
    rows = Origins(origins, [len(f) for f in frames])
    label_arrays, masks, tasks = {}, {}, []
    for name in labels:
        raw = merged[name]
        if _is_number(raw):
            raw = check_magnitudes(f"Label column {name!r}", raw, rows, bad_values)
        present = label_present(raw)
        spec = infer_task_spec(name, raw[present], task_kinds.get(name))
        tasks.append(spec)
        label_arrays[name] = encode_labels(spec, raw)
        masks[name] = present
    features = merged.drop(columns=[*labels, *sorted(drop)])
    kinds = _feature_kinds(features.columns, types, lambda c: features[c].nunique(), feature_kinds)
    _check_features(features, kinds, rows, bad_values)
    source = np.repeat(np.array(names, dtype=object), [len(f) for f in frames])
    return MultiTaskTable(features, label_arrays, masks, tasks, source, kinds)
