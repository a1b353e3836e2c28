"""Value-level checks of loaded columns, run before any training.

Numbers typed as text. A text column of one source is read as a numeric column with mistakes,
not as a categorical one, when at least ``NUMERIC_SHARE`` (90%) of its non-missing cells are
numbers and either its numbers alone would make a numeric feature (non-integers, or more than
``MAX_CATEGORICAL_INTEGERS`` distinct integers) or it is a label not declared binary or
multiclass. A column declared numeric (``feature_kinds``) or regression (``task_kinds``) must
hold numbers whatever the share. The other cells of such a column are an error naming the
source, the column, the count and the first rows; with ``bad_values="missing"`` they become
missing values, with a :class:`~mtlkit.errors.DataWarning` saying how many.

Magnitudes. A number must be finite and within the float32 range (``|x| <= 3.4e38``): the models
compute in float32, and a larger value makes a column's standard deviation overflow, which
standardises every row of the column to zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mtlkit.errors import ConfigError, DataError, DataWarning
from mtlkit.validation import check_choice

NUMERIC_SHARE = 0.9  # a text column with at least this share of numbers is numeric
MAX_CATEGORICAL_INTEGERS = 20  # integer features with more distinct values are numeric
FLOAT32_MAX = float(np.finfo(np.float32).max)
BAD_VALUES = ("error", "missing")
SHOWN = 5  # offending values and rows named in a message
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def check_bad_values(value: object) -> str:
    """The ``bad_values`` setting: "error" (default) or "missing"."""
    return str(check_choice("bad_values", value, BAD_VALUES))


@dataclass(frozen=True)
class Origin:
    """Where the rows of one source come from, to name them as a user finds them."""

    name: str
    kind: str  # "csv" (line numbers, the header is line 1), "parquet" (rows) or "frame" (index)
    index: pd.Index | None = None

    def rows(self, positions: np.ndarray) -> str:
        """E.g. "lines 7, 19" for the 0-based row positions of this source."""
        shown = positions[:SHOWN]
        if self.kind == "csv":
            unit, numbers = "line", (shown + 2).tolist()
        elif self.kind == "frame" and self.index is not None:
            unit, numbers = "index", self.index[shown].tolist()
        else:
            unit, numbers = "row", (shown + 1).tolist()
        plural = "s" if len(positions) > 1 and unit != "index" else ""
        more = f" and {len(positions) - len(shown)} more" if len(positions) > len(shown) else ""
        return f"{unit}{plural} {', '.join(map(str, numbers))}{more}"


@dataclass(frozen=True)
class Origins:
    """The sources of a table whose rows are their rows stacked in order."""

    sources: Sequence[Origin]
    lengths: Sequence[int]

    def rows(self, where: np.ndarray) -> str:
        """The first rows where ``where`` (a boolean array over all rows) is True, e.g.
        "'a.csv' line 7, 'b.csv' lines 3, 9 and 2 more"."""
        positions = np.flatnonzero(where)
        starts = np.cumsum([0, *self.lengths])
        parts, shown = [], 0
        for origin, start, stop in zip(self.sources, starts[:-1], starts[1:]):
            inside = positions[(positions >= start) & (positions < stop)] - start
            if len(inside) and shown < SHOWN:
                parts.append(f"{origin.name!r} {origin.rows(inside[: SHOWN - shown])}")
                shown += min(len(inside), SHOWN - shown)
        rest = len(positions) - shown
        return ", ".join(parts) + (f" and {rest} more" if rest else "")


@dataclass(frozen=True)
class RowSources:
    """Rows known only by the name of their source (e.g. a streamed table)."""

    source: np.ndarray

    def rows(self, where: np.ndarray) -> str:
        names = pd.unique(self.source[where])
        more = f" and {len(names) - SHOWN} more files" if len(names) > SHOWN else ""
        return ", ".join(repr(str(n)) for n in names[:SHOWN]) + more


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _examples(values: object) -> str:
    distinct = pd.unique(pd.Series(np.asarray(values, dtype=object)))
    shown = ", ".join(repr(v) for v in distinct[:SHOWN])
    return shown + (", ..." if len(distinct) > SHOWN else "")


def _handle(bad_values: str, problem: str, values: object, at: str, fix: str, n: int) -> None:
    """Raise the error or, under bad_values="missing", warn that ``n`` cells became missing."""
    message = f"{problem}: {_examples(values)} at {at}"
    if bad_values == "error":
        raise DataError(f"{message}; {fix}.")
    note = f"bad_values='missing': {_count(n, 'cell')} read as missing"
    warnings.warn(f"{message}; {note}.", DataWarning, stacklevel=2)


def text_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's number (NaN where missing or not a number) and where a present cell is not
    a number. A number is decimal text such as "12", "-0.5" or "1e-3" (spaces around it are
    allowed); blank text counts as missing. Vectorised with pyarrow."""
    codes = None
    if isinstance(column.dtype, pd.StringDtype):
        text = pa.array(column)
    else:  # object cells (numbers and text mixed in a data frame): each distinct value once
        codes, uniques = pd.factorize(column)
        text = pa.array(np.asarray(uniques, dtype=object).astype(str), type=pa.string())
    text = pc.utf8_trim_whitespace(text)
    is_number = pc.match_substring_regex(text, _NUMBER)
    numbers = pc.cast(pc.if_else(is_number, text, None), pa.float64())
    bad = pc.and_(pc.invert(is_number), pc.greater(pc.utf8_length(text), 0)).fill_null(False)
    numbers = numbers.to_numpy(zero_copy_only=False).astype(float)
    bad = bad.to_numpy(zero_copy_only=False).astype(bool)
    if codes is None:
        return numbers, bad
    return np.append(numbers, np.nan)[codes], np.append(bad, False)[codes]


def _plainly_text(column: pd.Series) -> bool:
    """Whether the first cells already hold too many non-numbers for the column to be mostly
    numbers: exact, and much cheaper than parsing every cell of a categorical column."""
    limit = int((1 - NUMERIC_SHARE) * column.count())
    return int(np.count_nonzero(text_numbers(column.iloc[: limit + 1])[1])) > limit


def _numbers_with_mistakes(numbers: np.ndarray, n_bad: int, label: bool) -> bool:
    """The rule of the module docstring for a column whose kind is inferred."""
    n_numbers = int(np.count_nonzero(~np.isnan(numbers)))
    if n_numbers < NUMERIC_SHARE * (n_numbers + n_bad):
        return False
    if label:
        return True
    distinct = np.unique(numbers[~np.isnan(numbers)])
    return not _integral(distinct) or len(distinct) > MAX_CATEGORICAL_INTEGERS


def _integral(numbers: np.ndarray) -> bool:
    return bool(np.all(np.mod(numbers[np.isfinite(numbers)], 1) == 0))


def _to_numbers(frame: pd.DataFrame, types: dict[str, str], name: str, numbers: np.ndarray) -> None:
    frame[name] = numbers
    types[name] = "integer" if _integral(numbers) else "float"


def missing_markers(markers: object) -> tuple[list, set[str]]:
    """The ``missing_labels`` setting as values and their text forms (-1 also matches "-1")."""
    if markers is None:
        return [], set()
    if isinstance(markers, (str, bytes)) or not isinstance(markers, Iterable):
        raise ConfigError(f"missing_labels must be a list of values such as [-1], got {markers!r}.")
    values = list(markers)
    text = {str(v) for v in values}
    text |= {str(int(v)) for v in values if isinstance(v, float) and v.is_integer()}
    return values, text


def mask_missing_labels(
    frame: pd.DataFrame, labels: Sequence[str], markers: tuple[list, set[str]]
) -> set[str]:
    """Blank out, in place, label cells that hold a missing-label marker; the labels changed."""
    values, text = markers
    changed = set()
    for name in labels:
        if not values or name not in frame.columns:
            continue
        column = frame[name]
        hit = column.isin(values).to_numpy(dtype=bool, copy=True)
        if not pd.api.types.is_numeric_dtype(column):
            hit |= column.astype("string").str.strip().isin(text).to_numpy(dtype=bool)
        if hit.any():
            frame[name] = column.mask(hit)
            changed.add(name)
    return changed


def numbers_typed_as_text(
    frame: pd.DataFrame,
    types: dict[str, str],
    origin: Origin,
    roles: dict[str, str],
    bad_values: str,
    masked: set[str] = frozenset(),
) -> None:
    """Turn the text columns of one source that hold numbers into numbers, in place.

    ``roles`` says how to read each column to check: "feature" or "label" (kind inferred),
    "numeric feature" or "numeric label" (declared numeric or regression), "class label"
    (declared binary or multiclass). The other cells of numbers with mistakes (see the module
    docstring) raise or, under ``bad_values="missing"``, go missing. A text column of numbers
    only keeps its type unless it is declared numeric or is a label whose missing-label
    markers were removed (``masked``).
    """
    for name, role in roles.items():
        guessing, label = role in ("feature", "label"), role.endswith("label")
        if types.get(name) != "string" or role == "class label" and name not in masked:
            continue  # declared binary or multiclass: text classes are fine
        if guessing and _plainly_text(frame[name]):
            continue
        numbers, bad = text_numbers(frame[name])
        n_bad = int(np.count_nonzero(bad))
        if n_bad == 0:
            if (name in masked or not guessing) and not np.isnan(numbers).all():
                _to_numbers(frame, types, name, numbers)
            continue
        if role == "class label" or guessing and not _numbers_with_mistakes(numbers, n_bad, label):
            continue  # text classes, or text that is not numbers with mistakes
        fix = (
            "fix or empty those cells, list the value in missing_labels if it marks a missing "
            "label, or pass bad_values='missing'"
            if label
            else "fix or empty those cells, pass bad_values='missing' to read them as missing, "
            "or declare the column categorical (feature_kinds)"
        )
        problem = (
            f"Column {name!r} of {origin.name!r} holds "
            f"{'numbers' if guessing else 'declared numeric values'} but "
            f"{_count(n_bad, 'non-numeric cell')}"
        )
        _handle(bad_values, problem, frame[name][bad], origin.rows(np.flatnonzero(bad)), fix, n_bad)
        _to_numbers(frame, types, name, numbers)


def check_magnitudes(
    what: str, column: pd.Series, origins: Origins | RowSources, bad_values: str | None
) -> pd.Series:
    """``column`` (numbers) with no infinite value or value beyond the float32 range; such
    values raise, or under ``bad_values="missing"`` become NaN (``None``: no such option)."""
    if pd.api.types.is_integer_dtype(column):
        return column  # 64-bit integers are within the float32 range
    values = column.to_numpy(dtype=float, na_value=np.nan)
    bad = np.abs(values) > FLOAT32_MAX
    if not bad.any():
        return column
    n = int(np.count_nonzero(bad))
    problem = f"{what} holds infinite or too large values ({n} beyond +-3.4e38, the float32 range)"
    fix = "replace them or leave those cells empty"
    if bad_values is not None:
        fix = "replace them, leave those cells empty, or pass bad_values='missing'"
    _handle(bad_values or "error", problem, values[bad], origins.rows(bad), fix, n)
    return column.mask(bad)
