"""Run folders and the one atomic writer (never half a file after a crash).

Every file mtlkit writes goes through :func:`atomic_write_bytes` (or its text/JSON forms).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pandas as pd

from mtlkit.errors import ConfigError


def _check_writable(folder: Path, target: Path, what: str) -> None:
    """New files can be written in ``folder`` (or in the folder it would be created in),
    tried with a real file: permissions, read-only disks and quotas are all caught."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{what} {str(target)!r} cannot be created: {str(existing)!r} is a file, not a folder."
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".mtlkit-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(
            f"{what} {str(target)!r} cannot be written ({err.strerror or err} in "
            f"{str(existing)!r}); choose another place."
        ) from None


def check_output_folder(path: str | Path, what: str = "output folder") -> Path:
    """Raise a ConfigError unless ``path`` is a writable folder or can be created as one
    (checked before any training, so a bad ``--out`` fails at once)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{what} {str(path)!r} is an existing file, not a folder; choose a folder name."
        )
    _check_writable(path, path, what)
    return path


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Raise a ConfigError unless ``path`` is a file that can be written (not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a folder; give a file name, e.g. out.csv.")
    _check_writable(path.parent, path, what)
    return path


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
def replaced_folder(folder: str | Path) -> Iterator[Path]:
    """A new, empty staging folder next to ``folder``: when the block ends without error it
    takes ``folder``'s place (a previous ``folder`` is removed); on an error it is removed
    and ``folder`` is left as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.new-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        yield staging
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{secrets.token_hex(4)}"
            os.rename(folder, old)
            try:
                os.rename(staging, folder)
            except BaseException:
                os.rename(old, folder)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_json(path: Path, error: type[Exception], advice: str) -> object:
    """The JSON value in ``path``, or one ``error`` line naming the file (missing, unreadable,
    truncated or corrupted) and ending with ``advice``."""
    try:
        return json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise error(f"{path} is missing; {advice}.") from None
    except (OSError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:100]
        raise error(
            f"{path} cannot be read ({reason}): truncated or corrupted; {advice}."
        ) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), text.encode())


def atomic_write_json(path: Path, value: object, indent: int | None = 2) -> None:
    """``value`` as strict JSON (NaN refused: make it None first)."""
    atomic_write_bytes(Path(path), json.dumps(value, indent=indent, allow_nan=False).encode())


def write_table(frame: pd.DataFrame, stem: Path) -> None:
    """Write ``frame`` as ``stem.csv`` and ``stem.parquet``, each atomically."""
    atomic_write_bytes(stem.with_suffix(".csv"), frame.to_csv(index=False).encode())
    atomic_write_bytes(stem.with_suffix(".parquet"), frame.to_parquet(index=False))
