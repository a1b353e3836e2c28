"""The settings that say how data files are read, declared once.

``missing_labels``, ``bad_values`` and ``encoding`` are arguments of
:func:`~mtlkit.data.loading.load_tables`; these declarations make them the estimator's
keyword arguments, the ``mtlkit train``/``predict``/``compare`` flags and the keys of a
comparison's config file (see :mod:`mtlkit.params`). Torch-free.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

from mtlkit.data.values import BAD_VALUES
from mtlkit.errors import ConfigError
from mtlkit.params import Param, Str

READ_PARAMS: tuple[Param, ...] = (
    Param(
        "missing_labels",
        None,
        "values",
        "label values that mean 'label missing' (masked like empty cells), e.g. -1",
        optional=True,
    ),
    Str(
        "bad_values",
        "error",
        "non-numeric cells in a numeric column, infinite values and values beyond the float32 "
        "range: an error, or read as missing (with a warning)",
        choices=BAD_VALUES,
    ),
    Str("encoding", "utf-8", "text encoding of CSV files, e.g. latin-1 or cp1252"),
)
READ_PARAM_NAMES = tuple(p.name for p in READ_PARAMS)
#: The reading settings of data to predict on (it has no labels).
FEATURE_READ_PARAMS = tuple(p for p in READ_PARAMS if p.name != "missing_labels")


def text_encoding(encoding: object) -> str:
    """The ``encoding`` setting as pyarrow's CSV reader takes it ("utf8" reads fastest)."""
    try:
        name = codecs.lookup(encoding).name if isinstance(encoding, str) else None
    except LookupError:
        name = None
    if name is None:
        raise ConfigError(
            f"encoding {encoding!r:.60} is not a known text encoding; use e.g. 'utf-8', "
            "'latin-1' or 'cp1252'."
        )
    return "utf8" if name == "utf-8" else encoding


def read_options(values: Mapping[str, Any], owner: str = "") -> dict[str, Any]:
    """The reading settings in ``values`` (others are ignored), checked against their
    declarations; the keyword arguments of ``load_tables``."""
    options = {p.name: p.validate(values[p.name], owner) for p in READ_PARAMS if p.name in values}
    if "encoding" in options:
        text_encoding(options["encoding"])
    if options.get("missing_labels") is not None:
        options["missing_labels"] = list(options["missing_labels"])
    return options
