"""Name -> loader, with what each built-in data set holds and where it comes from.

Each data set module registers its loader with :data:`DATASETS`: the description is the
source; ``tasks``, ``size`` and ``download`` (fetched automatically, or placed by the user)
are its info.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mtlkit.data.schema import MultiTaskTable
from mtlkit.errors import ConfigError
from mtlkit.registry import Registry

DATASETS: Registry[Callable[..., MultiTaskTable]] = Registry("data set", "mtlkit.datasets")


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in data set: its loader, tasks, size and source (``download``: fetched
    automatically; otherwise the user places the files)."""

    name: str
    loader: Callable[..., MultiTaskTable]
    tasks: str
    size: str
    source: str
    download: bool


def available() -> dict[str, DatasetInfo]:
    """The built-in data sets by name."""
    return {
        name: DatasetInfo(name, e.target, source=e.description, **e.info)
        for name, e in DATASETS.entries().items()
    }


def load(name: str, path: str | Path | None = None, **kwargs: object) -> MultiTaskTable:
    """The merged multi-task table (with its task specs) of built-in data set ``name``.

    ``path`` points to a local copy; the other keyword arguments are the loader's (e.g.
    ``group=2`` for census-income, ``cache_dir=...``).
    """
    loader = DATASETS.entry(name).target
    try:
        return loader(path, **kwargs)
    except TypeError as err:
        if "unexpected keyword" not in str(err):
            raise
        raise ConfigError(f"data set {name!r}: {err}; see help({loader.__name__}).") from None
