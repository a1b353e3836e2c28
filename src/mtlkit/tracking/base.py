"""The tracker interface: a run takes settings, metrics by step and artifacts.

One adapter per backend (:mod:`mtlkit.tracking.backends`, found by :data:`TRACKERS`)
implements :class:`Tracker` and :class:`TrackedRun`; everything else in mtlkit logs through
these two classes only. Trackers are small picklable values (where the runs go), so a grid's
worker processes get a copy and log their cells under the grid's parent run.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from mtlkit.registry import Registry


class TrackedRun(ABC):
    """One tracked run (an MLflow run, a TensorBoard run folder); a context manager that
    finishes it (as failed when the block raised)."""

    #: The backend's id of the run: an MLflow run id, a TensorBoard run folder.
    id: str

    @abstractmethod
    def log_params(self, params: Mapping[str, Any]) -> None:
        """The run's settings (values are shown as text)."""

    @abstractmethod
    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Numbers at ``step`` (the epoch), or final numbers when ``step`` is None."""

    @abstractmethod
    def log_artifacts(self, path: Path, name: str | None = None) -> None:
        """A file or a folder (under ``name`` in the run's artifacts)."""

    @abstractmethod
    def finish(self, failed: bool = False) -> None:
        """Mark the run finished (or failed) and flush what was logged."""

    def __enter__(self) -> TrackedRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(failed=exc_type is not None)


class Tracker(ABC):
    """Where runs go. What a tracker must be:

    - a small picklable value (a comparison's worker processes get a copy and log their
      cells with it): keep clients and open files out of its attributes;
    - ``create`` (a classmethod) resolves the default location and fails with a
      :class:`ConfigError` naming the extra to install when the backend's package is missing;
    - :meth:`location` says where the runs go as JSON values (a resumed grid continues its
      parent run on a tracker at the same location). The default reads the attributes, so a
      dataclass of strings, or any class whose attributes are JSON values, needs nothing more.
    """

    @classmethod
    @abstractmethod
    def create(cls) -> Tracker:
        """The tracker at its default location (or the one its environment variables name)."""

    @abstractmethod
    def start_run(self, name: str, parent: str | None = None) -> TrackedRun:
        """A new run named ``name``, nested under the run with id ``parent`` if given."""

    @abstractmethod
    def resume_run(self, run_id: str) -> TrackedRun:
        """Reopen a run started earlier (a resumed grid keeps its parent run)."""

    @abstractmethod
    def describe(self, run_id: str) -> str:
        """Where the run is and how to look at it, one line for the user."""

    def location(self) -> dict[str, Any]:
        """Where the runs go, as JSON values: the attributes (a dataclass's fields) by
        default; override it when they hold more than that, or other values."""
        return asdict(self) if is_dataclass(self) else dict(vars(self))


#: Tracking backends by name (info: ``extra``, the pip extra that installs the backend).
TRACKERS: Registry[type[Tracker]] = Registry("tracker", "mtlkit.tracking.backends")


_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.\- ]")


def metric_name(*parts: str) -> str:
    """``parts`` joined with ``/`` as a name every backend accepts (in a part, characters
    other than letters, digits, ``_.-`` and space become ``_``)."""
    return "/".join(_NOT_IN_NAME.sub("_", str(p)) for p in parts)
