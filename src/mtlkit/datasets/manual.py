"""Finding data sets that cannot be downloaded automatically (a login is needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mtlkit.datasets.cache import cache_root
from mtlkit.errors import DataError


def data_folder(name: str, path: str | Path | None, cache_dir: str | Path | None) -> Path:
    """``path`` if given, else ``<cache folder>/<name>`` (where the user is told to put files)."""
    return Path(path).expanduser() if path is not None else cache_root(cache_dir) / name


def missing_files_error(
    name: str, folder: Path, expected: Sequence[str], where_to_get: str
) -> DataError:
    """The error for absent files: what is expected, where exactly, and where to get it."""
    listed = ", ".join(str(folder / f) for f in expected)
    return DataError(
        f"{name}: the data files are not in {folder}. This data set needs a login to download, "
        f"so mtlkit cannot fetch it: get it from {where_to_get} and put the files here: "
        f"{listed} (or pass path=... to the folder that holds them; the cache folder is set "
        "with cache_dir=... or the MTLKIT_DATA environment variable)."
    )
