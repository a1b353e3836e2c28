"""Load CSV/Parquet files or data frames whose columns differ into one multi-task table.

Rows are concatenated, never joined: a source that lacks a label column contributes rows whose
label for that task is masked out, and a feature a source lacks is NaN for its rows. Values are
checked before any training (:mod:`mtlkit.data.values`): numbers typed as text, infinite or
absurd magnitudes, text that is not in the file's encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mtlkit.data.read_options import text_encoding
from mtlkit.data.schema import FeatureKind, MultiTaskTable, TaskKind
from mtlkit.data.sources import (
    PathLike,
    arrow_type_class,
    check_columns,
    check_label_names,
    check_types,
    csv_convert_options,
    expand_source,
    file_suffix,
    infer_feature_kinds,
    is_numeric,
    label_columns,
    not_numeric,
    reject_empty,
    undecodable,
    unreadable,
    warn_unconnected,
)
from mtlkit.data.tasks import encode_labels, infer_task_spec, label_present
from mtlkit.data.values import (
    Origin,
    Origins,
    check_bad_values,
    check_magnitudes,
    mask_missing_labels,
    missing_markers,
    numbers_typed_as_text,
)
from mtlkit.errors import DataError

Sources = PathLike | pd.DataFrame | Sequence[PathLike | pd.DataFrame] | Mapping[str, pd.DataFrame]


def _read_file(path: Path, encoding: str = "utf8") -> pa.Table:
    csv = file_suffix(path) != ".parquet"
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
        message = undecodable(path, encoding) if csv else None
        raise DataError(message or unreadable(path, err)) from err
    if csv and any(pa.types.is_binary(t) for t in table.schema.types):  # not valid UTF-8
        raise DataError(undecodable(path, encoding) or f"{str(path)!r} is not valid UTF-8.")
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
            pairs.extend((p.name, p) for p in expand_source(item))
    files = [x for _, x in pairs if isinstance(x, Path)]
    if len({p.name for p in files}) < len(files):  # same file name in two folders
        pairs = [(str(x) if isinstance(x, Path) else n, x) for n, x in pairs]
    return pairs


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
        types = dict(zip(columns, map(arrow_type_class, table.schema.types)))
        origin = Origin(name, "parquet" if file_suffix(item) == ".parquet" else "csv")
    else:
        frame = item.set_axis(columns, axis=1)
        types = {c: _frame_type_class(frame[c]) for c in columns}
        origin = Origin(name, "frame", item.index)
    if frame.shape[0] == 0:
        raise DataError(f"Source {name!r} has no rows; remove it or fill it.")
    return frame, types, origin


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


def _check_features(
    features: pd.DataFrame, kinds: Mapping[str, FeatureKind], origins: Origins, bad_values: str
) -> None:
    reject_empty(features.columns[features.isna().all().to_numpy()].tolist())
    for column in features.columns:
        if kinds[column] != "numeric":
            continue
        if not is_numeric(features[column]):
            raise not_numeric(column)
        what = f"Feature {column!r}"
        features[column] = check_magnitudes(what, features[column], origins, bad_values)


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
    labels = label_columns(labels)
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
    check_label_names(labels, task_kinds, drop)
    pairs = _collect(sources)
    names = [name for name, _ in pairs]
    frames, types, origins = zip(*(_load_one(name, item, encoding) for name, item in pairs))
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    check_columns(labels, drop, columns, names)
    drop |= ignore & set(columns)
    if not labels:  # new rows to score: kinds of a fitted model, some columns maybe absent
        feature_kinds = {c: k for c, k in feature_kinds.items() if c in columns}
    roles = _roles(columns, labels, drop, task_kinds, feature_kinds)
    for frame, column_types, origin in zip(frames, types, origins):
        masked = mask_missing_labels(frame, labels, markers)
        numbers_typed_as_text(frame, column_types, origin, roles, bad_values, masked)
    check_types(names, types)
    warn_unconnected(names, [set(f.columns) - set(labels) - drop for f in frames])
    merged = pd.concat(frames, ignore_index=True, sort=False).reindex(columns=columns)
    rows = Origins(origins, [len(f) for f in frames])
    label_arrays, masks, tasks = {}, {}, []
    for name in labels:
        raw = merged[name]
        if is_numeric(raw):
            raw = check_magnitudes(f"Label column {name!r}", raw, rows, bad_values)
        present = label_present(raw)
        spec = infer_task_spec(name, raw[present], task_kinds.get(name))
        tasks.append(spec)
        label_arrays[name] = encode_labels(spec, raw)
        masks[name] = present
    features = merged.drop(columns=[*labels, *sorted(drop)])
    kinds = infer_feature_kinds(
        features.columns, types, lambda c: features[c].nunique(), feature_kinds
    )
    _check_features(features, kinds, rows, bad_values)
    source = np.repeat(np.array(names, dtype=object), [len(f) for f in frames])
    return MultiTaskTable(features, label_arrays, masks, tasks, source, kinds)
