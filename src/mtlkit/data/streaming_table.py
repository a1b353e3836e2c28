"""Parquet datasets larger than memory, read record batch by record batch with pyarrow.dataset.

:func:`stream_tables` is the streaming counterpart of :func:`~mtlkit.data.loading.load_tables`:
it reads only the files' footers (schemas, row-group sizes) and applies the same column rules
(labels must exist, a column holds one type of values in every file, the features are the
union of the other columns, a feature a file lacks is missing for its rows). Label and
feature values are read later, by :func:`mtlkit.data.stream_fit.fit_preprocessor` (one pass)
and :class:`mtlkit.data.streaming_data.StreamingData` (training and evaluation batches).

:func:`csv_to_parquet` converts CSV files to such a dataset without loading them whole.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mtlkit.data.read_options import text_encoding
from mtlkit.data.schema import FeatureKind, LabelSummary, MultiTaskTable, TaskKind, TaskSpec
from mtlkit.data.sources import (
    PathLike,
    arrow_type_class,
    check_columns,
    check_finite,
    check_label_names,
    check_types,
    csv_convert_options,
    expand_source,
    file_suffix,
    is_numeric,
    label_columns,
    undecodable,
    unreadable,
    warn_unconnected,
)
from mtlkit.data.tasks import encode_labels, label_present
from mtlkit.data.values import check_bad_values, mask_missing_labels, missing_markers
from mtlkit.errors import DataError
from mtlkit.validation import check_positive_int

#: Rows per record batch read from a Parquet file (and per row group written by csv_to_parquet).
READ_ROWS = 65_536


@dataclass(frozen=True)
class RowGroup:
    """One row group of one file: the unit that is permuted and dealt out to ranks."""

    fragment: ds.ParquetFileFragment
    path: str
    num_rows: int


#: Rows ``start:stop`` of a row group.
Piece = tuple[RowGroup, int, int]


@dataclass
class StreamingTable:
    """A Parquet dataset read in record batches: the streaming counterpart of
    :class:`~mtlkit.data.schema.MultiTaskTable` (which holds its rows in memory).

    ``features`` are the feature columns in order of first appearance (files sorted by path,
    hive partition columns last); ``schema`` is the files' schemas unified (integers and floats
    in one column become floats; a column a file lacks reads as nulls); ``types`` holds every
    file's type class per column (what feature-kind inference looks at); ``row_groups`` are
    in file order. ``task_kinds``, ``feature_kinds``, ``missing_labels``, ``bad_values`` and
    ``encoding`` are the settings given when opening (see
    :func:`~mtlkit.data.loading.load_tables`).
    """

    source: str
    labels: list[str]
    features: list[str]
    schema: pa.Schema
    row_groups: list[RowGroup]
    types: list[dict[str, str]]
    task_kinds: dict[str, TaskKind] = field(default_factory=dict)
    feature_kinds: dict[str, FeatureKind] = field(default_factory=dict)
    missing_labels: list | None = None
    bad_values: str = "error"
    encoding: str = "utf8"

    @property
    def num_rows(self) -> int:
        return sum(g.num_rows for g in self.row_groups)

    def __len__(self) -> int:
        return self.num_rows

    @property
    def feature_names(self) -> list[str]:
        """The feature columns, in order."""
        return list(self.features)

    def label_summary(self) -> dict[str, LabelSummary]:
        """Per label column, its labelled rows and up to two of its values, read in one pass
        over the label columns alone (with the value checks of :meth:`checked`)."""
        counts = dict.fromkeys(self.labels, 0)
        values: dict[str, dict] = {name: {} for name in self.labels}
        for path, frame in self.frames(self.pieces(), self.labels):
            frame = self.checked(frame, path)
            for name in self.labels:
                raw = frame[name]
                present = label_present(raw)
                counts[name] += int(present.sum())
                if len(values[name]) < 2:
                    values[name].update(dict.fromkeys(raw[present].drop_duplicates()[:2]))
        return {
            name: LabelSummary(
                counts[name], tuple(values[name])[:2], self.task_kinds.get(name) == "regression"
            )
            for name in self.labels
        }

    def pieces(self) -> list[Piece]:
        """Every row of every row group, in file order."""
        return [(g, 0, g.num_rows) for g in self.row_groups]

    def frames(
        self, pieces: Iterable[Piece], columns: Sequence[str], read_rows: int = READ_ROWS
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """``(file path, frame)`` of at most ``read_rows`` rows each, for the given pieces in
        order; only ``columns`` (those of the schema) are read."""
        columns = [c for c in columns if c in self.schema.names]
        for group, start, stop in pieces:
            offset = 0
            batches = group.fragment.to_batches(
                schema=self.schema, columns=columns, batch_size=read_rows, batch_readahead=1
            )
            while (batch := _next_batch(batches, group)) is not None:
                lo, hi = max(start - offset, 0), min(stop - offset, len(batch))
                offset += len(batch)
                if lo < hi:
                    yield group.path, batch.slice(lo, hi - lo).to_pandas()
                if offset >= stop:
                    break

    def empty_frame(self) -> pd.DataFrame:
        """A frame with every column of the schema and no rows."""
        return self.schema.empty_table().to_pandas()

    def checked(self, frame: pd.DataFrame, path: str) -> pd.DataFrame:
        """A record batch's frame with the value checks of ``load_tables``: missing-label
        markers blanked, infinite and out-of-range numbers refused (or, under
        ``bad_values="missing"``, blanked)."""
        mask_missing_labels(frame, self.labels, missing_markers(self.missing_labels))
        source = np.broadcast_to(np.array(path, dtype=object), len(frame))
        for name in frame.columns:
            column = frame[name]
            if is_numeric(column):
                what = f"Label column {name!r}" if name in self.labels else f"Feature {name!r}"
                frame[name] = check_finite(what, column, source, self.bad_values)
        return frame


def _next_batch(batches: Iterator[pa.RecordBatch], group: RowGroup) -> pa.RecordBatch | None:
    """The next record batch of ``group`` (None after the last); a damaged file is named."""
    try:
        return next(batches, None)
    except (pa.ArrowException, OSError) as err:
        raise DataError(unreadable(group.path, err)) from err


def labelled_table(frame: pd.DataFrame, path: str, tasks: Sequence[TaskSpec]) -> MultiTaskTable:
    """Rows of one record batch (checked by :meth:`StreamingTable.checked`) as a table whose
    labels are encoded with ``tasks`` (those whose column is in the frame), with the same
    masks as :func:`load_tables`."""
    source = np.broadcast_to(np.array(path, dtype=object), len(frame))
    labels, masks, present_tasks = {}, {}, []
    for spec in tasks:
        if spec.name not in frame.columns:
            continue
        raw = frame[spec.name]
        masks[spec.name] = label_present(raw)
        labels[spec.name] = encode_labels(spec, raw)
        present_tasks.append(spec)
    features = frame.drop(columns=[t.name for t in present_tasks])
    return MultiTaskTable(features, labels, masks, present_tasks, source)


def stream_tables(
    sources: PathLike | Sequence[PathLike],
    labels: Iterable[str],
    *,
    task_kinds: Mapping[str, TaskKind] | None = None,
    feature_kinds: Mapping[str, FeatureKind] | None = None,
    drop_columns: Iterable[str] = (),
    missing_labels: Sequence[object] | None = None,
    bad_values: str = "error",
    encoding: str = "utf-8",
) -> StreamingTable:
    """Open a Parquet dataset too large for memory, with the arguments of ``load_tables``.

    ``sources`` is a folder (searched recursively; ``key=value`` folders are hive partitions
    whose keys become columns), a Parquet file, a glob or a list of those. Only the files'
    footers are read here; :func:`mtlkit.data.stream_fit.fit_preprocessor` infers the task
    and feature kinds in its one pass over the values. ``missing_labels`` and ``bad_values``
    apply as in ``load_tables`` to every record batch read (text in a numeric column cannot
    occur: a Parquet column has one type). ``encoding`` is, as in ``load_tables``, the text
    encoding of CSV files: Parquet stores its text as UTF-8 whatever it says, and CSV
    sources are refused with the :func:`csv_to_parquet` call (in that encoding) that
    converts them.
    """
    labels = label_columns(labels)
    encoding = text_encoding(encoding)
    kinds = dict(task_kinds or {}), dict(feature_kinds or {})
    table = _open(sources, labels, *kinds, drop_columns, encoding=encoding)
    missing_markers(missing_labels)  # checked now, used when reading
    table.missing_labels = None if missing_labels is None else list(missing_labels)
    table.bad_values = check_bad_values(bad_values)
    return table


def stream_features(
    sources: PathLike | Sequence[PathLike],
    *,
    ignore: Iterable[str] = (),
    bad_values: str = "error",
    encoding: str = "utf-8",
) -> StreamingTable:
    """A Parquet dataset without tasks, e.g. new rows to score; columns in ``ignore`` (such
    as label columns) are left out where present. ``bad_values`` and ``encoding`` are those
    of :func:`stream_tables` (and of :func:`~mtlkit.data.loading.load_features`)."""
    table = _open(sources, [], {}, {}, (), set(ignore), encoding=text_encoding(encoding))
    table.bad_values = check_bad_values(bad_values)
    return table


def _open(
    sources: PathLike | Sequence[PathLike],
    labels: list[str],
    task_kinds: dict[str, TaskKind],
    feature_kinds: dict[str, FeatureKind],
    drop_columns: Iterable[str],
    ignore: set[str] = frozenset(),
    *,
    encoding: str = "utf8",
) -> StreamingTable:
    drop_columns = list(drop_columns)
    check_label_names(labels, task_kinds, drop_columns)
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not items:
        raise DataError("No sources given; pass a Parquet file, a folder or a glob.")
    fragments, partition_fields = [], []
    for item in items:
        found, partitions = _discover(item, encoding)
        fragments += found
        partition_fields += [f for f in partitions if f.name not in partition_fields]
    names = [f.path for f in fragments]
    physical = [_physical_schema(f) for f in fragments]
    partition_types = {f.name: arrow_type_class(f.type) for f in partition_fields}
    types = [{f.name: arrow_type_class(f.type) for f in s} | partition_types for s in physical]
    check_types(names, types)
    try:
        schema = pa.unify_schemas(
            [*physical, pa.schema(partition_fields)], promote_options="permissive"
        )
    except (pa.ArrowException, TypeError) as err:
        raise DataError(
            f"The files of {_describe(items)} have incompatible columns: {err}"
        ) from err
    columns = schema.names
    drop = set(drop_columns)
    check_columns(labels, drop, columns, [_describe(items)])
    drop |= (ignore | _pandas_index_columns(physical)) & set(columns)
    features = [c for c in columns if c not in labels and c not in drop]
    warn_unconnected(names, [set(t) & set(features) for t in types])
    groups = [
        RowGroup(group, fragment.path, group.row_groups[0].num_rows)
        for fragment in fragments
        for group in fragment.split_by_row_group()
    ]
    return StreamingTable(
        _describe(items),
        labels,
        features,
        schema.remove_metadata(),  # pandas' index and dtype notes would not fit record batches
        groups,
        types,
        task_kinds,
        feature_kinds,
        encoding=encoding,
    )


def _pandas_index_columns(schemas: Iterable[pa.Schema]) -> set[str]:
    """Columns that hold a data frame's index (written by pandas): ``load_tables`` reads them
    as the index, so they are no features here either."""
    return {
        column
        for schema in schemas
        for column in (schema.pandas_metadata or {}).get("index_columns", [])
        if isinstance(column, str)
    }


def _describe(items: Sequence[PathLike]) -> str:
    return str(items[0]) if len(items) == 1 else f"{len(items)} sources"


def _discover(item: PathLike, encoding: str) -> tuple[list[ds.ParquetFileFragment], list[pa.Field]]:
    """The Parquet files named by a folder, a file or a glob, sorted by path, and the hive
    partition fields of a folder. CSV files (which cannot be read in row groups) are refused
    with the call that converts them in ``encoding``."""
    text, path = str(item), Path(item)
    if path.is_dir():
        hidden = ("_", ".")
        files = sorted(
            p
            for p in path.rglob("*.parquet")
            if not any(part.startswith(hidden) for part in p.relative_to(path).parts)
        )
        base = path
    elif path.is_file():
        files, base = ([] if file_suffix(path) in (".csv", ".csv.gz") else [path]), None
    elif any(c in text for c in "*?["):
        files, base = sorted(Path(p) for p in glob.glob(text) if p.endswith(".parquet")), None
    else:
        raise DataError(f"Path {text!r} does not exist; check the file or folder name.")
    if not files:
        csv = any(path.rglob("*.csv*")) if path.is_dir() else file_suffix(path) is not None
        option = "" if encoding == "utf8" else f", encoding={encoding!r}"
        hint = (
            f" It holds CSV files, which stream only as Parquet: convert them first with "
            f"csv_to_parquet({text!r}, 'parquet_folder'{option})."
            if csv
            else ""
        )
        raise DataError(f"{text!r} holds no .parquet files.{hint}")
    try:
        dataset = ds.dataset(
            [str(f) for f in files],
            format="parquet",
            partitioning="hive" if base else None,
            partition_base_dir=str(base) if base else None,
        )
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"Cannot read the Parquet files of {text!r}: {err}") from err
    fragments = sorted(dataset.get_fragments(), key=lambda f: Path(f.path))
    keys = dict.fromkeys(
        k for f in fragments for k in ds.get_partition_keys(f.partition_expression)
    )
    return fragments, [dataset.schema.field(k) for k in keys]


def _physical_schema(fragment: ds.ParquetFileFragment) -> pa.Schema:
    try:
        schema = fragment.physical_schema
    except (pa.ArrowException, OSError) as err:
        raise DataError(unreadable(fragment.path, err)) from err
    duplicates = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if duplicates:
        raise DataError(
            f"Source {fragment.path!r} has duplicate column name(s) {duplicates}; rename them."
        )
    return schema


#: Parquet data larger than this on disk is streamed by ``mtlkit train / compare / predict``
#: unless ``--no-stream`` is given (decoded, it takes several times more memory).
STREAM_ABOVE = 2**30


def streams_by_default(sources: PathLike | Sequence[PathLike]) -> bool:
    """Whether ``sources`` hold Parquet files only, more than :data:`STREAM_ABOVE` bytes."""
    total = 0
    for item in [sources] if isinstance(sources, (str, Path)) else sources:
        path = Path(item)
        found = path.rglob("*") if path.is_dir() else map(Path, glob.glob(str(item)))
        for file in found:
            if not file.is_file() or file.name.startswith(("_", ".")):
                continue
            if not file.name.endswith(".parquet"):
                return False
            total += file.stat().st_size
    return total > STREAM_ABOVE


def csv_to_parquet(
    source: PathLike,
    target: PathLike,
    *,
    rows_per_group: int = READ_ROWS,
    column_types: Mapping[str, str | pa.DataType] | None = None,
    encoding: str = "utf-8",
) -> list[Path]:
    """Convert CSV files (a file, a folder or a glob; ``.csv`` or ``.csv.gz``) to one Parquet
    file each in folder ``target``, reading them block by block (never whole).

    Cells read as missing are those ``load_tables`` treats as missing. Column types are
    inferred from each file's first block; if a later block does not fit (e.g. ``1.5`` after
    integers), pass ``column_types={"col": "float64"}``. ``encoding`` is the files' text
    encoding (as in ``load_tables``). Returns the written files. One line::

        python -c "from mtlkit.data.streaming_table import csv_to_parquet; csv_to_parquet('csv/', 'pq/')"
    """
    rows_per_group = check_positive_int("rows_per_group", rows_per_group)
    encoding = text_encoding(encoding)
    files = [p for p in expand_source(source) if not p.name.lower().endswith(".parquet")]
    if not files:
        raise DataError(f"{str(source)!r} holds no .csv or .csv.gz files.")
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    types = {
        k: pa.type_for_alias(v) if isinstance(v, str) else v
        for k, v in (column_types or {}).items()
    }
    targets: dict[Path, Path] = {}
    for path in files:
        name = path.name[: -len(".gz")] if path.name.lower().endswith(".gz") else path.name
        dest = out / (name[: -len(".csv")] + ".parquet")
        if dest in targets:  # x.csv and x.csv.gz, or two folders' x.csv: one would be lost
            raise DataError(
                f"{str(targets[dest])!r} and {path.name!r} would both be written to "
                f"{dest.name!r}: rename one, or convert them into separate folders."
            )
        targets[dest] = path
    for dest, path in targets.items():
        _convert(path, dest, rows_per_group, types, encoding)
    return list(targets)


def _convert(
    path: Path, dest: Path, rows_per_group: int, types: dict[str, pa.DataType], encoding: str
) -> None:
    """Write ``path`` to ``dest`` in row groups of ``rows_per_group`` rows (the last smaller)."""
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(encoding=encoding),
            convert_options=csv_convert_options(types),
        )
        if any(pa.types.is_binary(t) for t in reader.schema.types):  # text not in `encoding`
            raise pa.ArrowInvalid("undecodable text")
        with pq.ParquetWriter(dest, reader.schema) as writer:
            held = reader.schema.empty_table()
            for batch in reader:
                held = pa.concat_tables([held, pa.Table.from_batches([batch])])
                full = len(held) // rows_per_group * rows_per_group
                if full:
                    writer.write_table(held.slice(0, full), rows_per_group)
                    held = held.slice(full)
            if len(held):
                writer.write_table(held, rows_per_group)
    except (pa.ArrowException, OSError, EOFError) as err:  # EOFError: a truncated .gz
        dest.unlink(missing_ok=True)
        raise DataError(
            undecodable(path, encoding)
            or f"Cannot convert {str(path)!r}: {err}. If a column's type changes after the "
            "first rows, pass column_types={'column': 'float64'} (or 'string')."
        ) from err
