"""Run folders and the one atomic writer (never half a file after a crash).

Every file mtlkit writes goes through :func:`atomic_write_bytes` (or its text/JSON forms);
a set of files that must change together goes through :func:`staged_files`. Output paths are
checked before any work (:func:`check_output_folder`, :func:`check_output_file`), by the one
guard of every command that writes: a writable place, never over a saved model's own files,
and a file name whose suffix matches what is written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO

import pandas as pd

from mtlkit.errors import ConfigError

#: The file that makes a folder a saved model's: it lists the model's other files.
MODEL_META = "estimator.json"


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


def model_files(folder: Path) -> set[str]:
    """The names of the files a saved model in ``folder`` consists of (none if ``folder``
    holds no saved model): ``estimator.json`` and the files it lists; every file of the
    folder when that list cannot be read."""
    meta = folder / MODEL_META
    if not meta.is_file():
        return set()
    try:
        listed = json.loads(meta.read_bytes()).get("files")
    except (OSError, ValueError, AttributeError):
        listed = None
    if not isinstance(listed, dict):  # unreadable, or saved before the list was kept
        return {p.name for p in folder.iterdir() if p.is_file()}
    return {MODEL_META, *map(str, listed)}


def check_output_folder(
    path: str | Path, what: str = "output folder", *, model: bool = False
) -> Path:
    """Raise a ConfigError unless ``path`` is a writable folder or can be created as one
    (checked before any training, so a bad ``--out`` fails at once). Only a model's own save
    (``model``) may write into a folder that holds a saved model."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{what} {str(path)!r} is an existing file, not a folder; choose a folder name."
        )
    if not model and model_files(path):
        raise ConfigError(
            f"{what} {str(path)!r} holds a saved model ({MODEL_META}); choose another folder "
            "(a new one, or one inside it), so the model's files stay as they are."
        )
    _check_writable(path, path, what)
    return path


def check_output_file(
    path: str | Path, what: str = "output file", suffixes: tuple[str, ...] = ()
) -> Path:
    """Raise a ConfigError unless ``path`` is a file that can be written (not a folder, not
    one of a saved model's own files) whose name ends in one of ``suffixes`` (when given:
    the format that is written, which a reader goes by)."""
    path = Path(path)
    if path.is_dir():
        example = f"out{suffixes[0] if suffixes else '.csv'}"
        raise ConfigError(f"{what} {str(path)!r} is a folder; give a file name, e.g. {example}.")
    if suffixes and not path.name.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise ConfigError(
            f"{what} {str(path)!r} must end in {' or '.join(suffixes)} (the format written); "
            f"e.g. {str(path.with_name(path.stem + suffixes[0]))!r}."
        )
    if path.name in model_files(path.parent):
        raise ConfigError(
            f"{what} {str(path)!r} is a file of the model saved in {str(path.parent)!r}; "
            "writing it would destroy the model: choose another file name or folder."
        )
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
def staged_files(folder: str | Path, last: tuple[str, ...] = ()) -> Iterator[Path]:
    """A staging folder inside ``folder`` to write a set of files into. When the block ends
    without an error each file is moved into ``folder`` (replacing a file of that name; the
    ``last`` ones last); on an error they are all removed and ``folder`` is left as it was.
    Writing is what fails on a full or read-only disk, and it happens before anything in
    ``folder`` is replaced; the moves take no space. Other files of ``folder`` are kept."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".staging-"))
    try:
        yield staging
        for name in sorted((p.name for p in staging.iterdir()), key=lambda n: n in last):
            os.replace(staging / name, folder / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    staging.rmdir()


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
