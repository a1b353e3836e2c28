"""Infer what kind of task a label column is, and encode its values as float class ids/targets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtlkit.data.schema import TASK_KINDS, TaskKind, TaskSpec
from mtlkit.data.sources import is_numeric
from mtlkit.data.values import text_numbers
from mtlkit.errors import DataError

MAX_MULTICLASS_INFERRED = 20  # more distinct integers than this is inferred as regression
MAX_CLASSES = 1000  # more distinct string labels than this is rejected
RARE_SHARE = 0.01  # a third label value on fewer rows than this share is suspect


def label_present(values: pd.Series) -> np.ndarray:
    """True where a label value is given: not NaN/None and not an empty or blank string."""
    present = values.notna().to_numpy(copy=True)
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        blank = values.astype("string").str.strip().eq("").fillna(False).to_numpy(dtype=bool)
        present &= ~blank
    return present


def _scalar(value: object) -> object:
    """A plain Python value (integral floats become ints) so classes survive JSON."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_integral(values: np.ndarray) -> bool:
    return bool(np.all(np.mod(values, 1) == 0))


def _inferred_kind(series: pd.Series) -> TaskKind:
    distinct = series.nunique()
    if distinct <= 2:
        return "binary"
    if not is_numeric(series):
        return "multiclass"
    integral = _is_integral(series.to_numpy(dtype=float))
    return "multiclass" if integral and distinct <= MAX_MULTICLASS_INFERRED else "regression"


def _suspect_classes(name: str, series: pd.Series, classes: tuple) -> None:
    """Refuse inferred classes that look like a mistake rather than a task: a missing-label
    marker (-1 beside class ids >= 0), a binary label with one stray value (a non-number among
    numbers, or a value on under 1% of the rows), or an identifier (most classes seen once)."""
    declare = f"declare task_kinds={{{name!r}: 'multiclass'}}"
    integers = all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
    others = [c for c in classes if c != -1]
    if integers and 2 <= len(others) < len(classes) and min(others) >= 0:
        raise DataError(
            f"Label column {name!r} holds -1 in {int((series == -1).sum())} row(s) beside the "
            f"classes {others[:10]}; -1 usually marks a missing label (mtlkit.compat writes "
            f"it): pass missing_labels=[-1] to mask it, or {declare} if -1 is a class."
        )
    if len(classes) == 3:
        counts = series.value_counts()
        text = text_numbers(pd.Series(classes, dtype=object))[1]
        if text.sum() == 1:
            extra = classes[int(np.flatnonzero(text)[0])]
        elif counts.min() < RARE_SHARE * len(series):
            extra = _scalar(counts.idxmin())
        else:
            return
        pair = [c for c in classes if c != extra]
        raise DataError(
            f"Label column {name!r} looks binary ({pair[0]!r}, {pair[1]!r}) but also holds "
            f"{extra!r} in {int((series == extra).sum())} of {len(series)} rows; if it marks a "
            f"missing label pass missing_labels=[{extra!r}], if it is a third class {declare}, "
            "else fix those labels."
        )
    if len(classes) > MAX_MULTICLASS_INFERRED:
        singletons = int((series.value_counts() == 1).sum())
        if 2 * singletons > len(classes):
            raise DataError(
                f"Label column {name!r} has {len(classes)} distinct classes, {singletons} of "
                f"them on a single row; is it an identifier? Drop it from the labels, or "
                f"{declare} if the classes are real."
            )


def infer_task_spec(name: str, values: object, kind: TaskKind | None = None) -> TaskSpec:
    """The task of label column ``name`` from its values (missing ones are ignored).

    Two distinct values give a binary task, 3..20 distinct integers or any strings a multiclass
    task, other numbers a regression task. An explicit ``kind`` wins but must fit the values;
    inferred classes that look like a mistake are refused (see :func:`_suspect_classes`).
    """
    series = pd.Series(values)
    series = series[label_present(series)]
    if series.dtype == object:
        series = series.infer_objects()
    if kind is not None and kind not in TASK_KINDS:
        raise DataError(f"Task {name!r}: unknown kind {kind!r}; use one of {list(TASK_KINDS)}.")
    if series.empty:
        raise DataError(f"Label column {name!r} has no labelled values; drop it from the labels.")
    numeric = is_numeric(series)
    if numeric and not np.all(np.isfinite(series.to_numpy(dtype=float))):
        raise DataError(
            f"Label column {name!r} holds infinite values; replace them by valid labels or "
            "leave those cells empty."
        )
    inferred = kind is None
    kind = kind or _inferred_kind(series)
    if kind == "regression":
        if not numeric:
            raise DataError(
                f"Label column {name!r} is declared regression but holds non-numeric values "
                f"such as {series.iloc[0]!r}; convert it to numbers or declare it binary/multiclass."
            )
        return TaskSpec(name, "regression", 1, ())
    try:
        classes = tuple(_scalar(v) for v in sorted(pd.unique(series)))
    except TypeError as err:
        raise DataError(
            f"Label column {name!r} mixes value types (e.g. numbers and strings); "
            "make every label the same type."
        ) from err
    if len(classes) < 2:
        raise DataError(
            f"Label column {name!r} has a single value ({classes[0]!r}); a task needs at least "
            "two classes. Drop it from the labels or add rows with other values."
        )
    if kind == "binary" and len(classes) != 2:
        raise DataError(
            f"Label column {name!r} is declared binary but has {len(classes)} distinct values "
            f"({list(classes)[:10]}); declare it multiclass, fix the labels, or pass "
            "missing_labels=[...] with the value that marks a missing label."
        )
    if kind == "multiclass" and numeric and not _is_integral(series.to_numpy(dtype=float)):
        raise DataError(
            f"Label column {name!r} is declared multiclass but holds non-integer numbers; "
            "declare it regression or use integer/string class labels."
        )
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"Label column {name!r} has {len(classes)} distinct classes (more than "
            f"{MAX_CLASSES}); is it an identifier? Drop it or declare it regression."
        )
    if inferred:
        _suspect_classes(name, series, classes)
    return TaskSpec(name, kind, len(classes), classes)


def encode_labels(spec: TaskSpec, values: object) -> np.ndarray:
    """Float labels: class ids 0..K-1 (classification) or targets (regression); NaN if missing."""
    series = pd.Series(values)
    present = label_present(series)
    if spec.kind == "regression":
        if not is_numeric(series) and present.any():
            series = series.infer_objects()
            if not is_numeric(series):
                raise DataError(
                    f"Label column {spec.name!r} is a regression task but holds non-numeric "
                    "values; convert it to numbers."
                )
        out = series.to_numpy(dtype=float, na_value=np.nan, copy=True)
        out[~present] = np.nan
        return out
    ids = pd.Index(spec.classes, dtype=object).get_indexer(series.astype(object)).astype(float)
    unknown = present & (ids < 0)
    if unknown.any():
        bad = pd.unique(series[unknown])[:5]
        raise DataError(
            f"Label column {spec.name!r} has value(s) {list(bad)} that are not among its "
            f"classes {list(spec.classes)}; fix those labels or leave the cells empty."
        )
    ids[~present] = np.nan
    return ids


def recode_labels(labels: np.ndarray, source: TaskSpec, target: TaskSpec) -> np.ndarray:
    """Labels encoded with ``source`` re-encoded with ``target`` (e.g. a test file's classes)."""
    if source == target:
        return labels
    if source.kind == "regression":
        return encode_labels(target, labels)
    present = ~np.isnan(labels)
    raw = np.full(len(labels), np.nan, dtype=object)
    raw[present] = np.asarray(source.classes, dtype=object)[labels[present].astype(np.int64)]
    return encode_labels(target, raw)
