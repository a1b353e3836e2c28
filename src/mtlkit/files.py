"""Run folders and the one atomic writer (never half a file after a crash).

Every file mtlkit writes goes through :func:`atomic_write_bytes` (or its text/JSON forms).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO

import pandas as pd


def new_run_dir(parent: Path, prefix: str) -> Path:
    """A fresh, time-stamped folder under ``parent``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(parent) / f"{prefix}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(parent) / f"{prefix}-{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


@contextmanager
def atomic_writer(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A file to write ``path`` through piece by piece: it is a temporary file, renamed to
    ``path`` once the block ends without an error (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: never half a file."""
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), text.encode())


def atomic_write_json(path: Path, value: object, indent: int | None = 2) -> None:
    """``value`` as strict JSON (NaN refused: make it None first)."""
    atomic_write_bytes(Path(path), json.dumps(value, indent=indent, allow_nan=False).encode())


def write_table(frame: pd.DataFrame, stem: Path) -> None:
    """Write ``frame`` as ``stem.csv`` and ``stem.parquet``, each atomically."""
    atomic_write_bytes(stem.with_suffix(".csv"), frame.to_csv(index=False).encode())
    atomic_write_bytes(stem.with_suffix(".parquet"), frame.to_parquet(index=False))
