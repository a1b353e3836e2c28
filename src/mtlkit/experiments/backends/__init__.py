"""Where a grid's cells and tuning studies run: one interface, backends as plug-ins.

A :class:`Backend` runs a *task* (a module-level function ``task(shared, item, tick)``) on
each of a list of items and hands every result back to the driver (the ``mtlkit compare``
process), which writes it. ``shared`` (the validated settings and the loaded data splits)
reaches each worker once: local worker processes get it when they start, Ray tasks through
the object store. Backends are registered in :data:`BACKENDS` (one module each, like the
trackers and the export formats); ``mtlkit compare --backend NAME`` picks one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mtlkit.registry import Registry

Item = TypeVar("Item")
#: ``tick(n)``: ``n`` more units of work done (cells, trials), for the progress bar.
Tick = Callable[[int], None]
#: A task: ``task(shared, item, tick) -> (result, units of work done)``.
Task = Callable[[Any, Any, Tick], tuple[Any, int]]


def no_tick(n: int) -> None:
    """The ``tick`` of a task in a worker: its progress shows when it is done (the driver
    owns the progress bar)."""


@dataclass(frozen=True)
class Work(Generic[Item]):
    """What a backend runs: ``task(shared, item, tick)`` for every item; ``done(item, result)``
    is called in the driver as each finishes (in any order); ``tick`` advances the driver's
    progress bar by the work done; with ``gpu`` each task asks for one GPU (where the backend
    allocates them)."""

    task: Task
    shared: Any
    items: Sequence[Item]
    done: Callable[[Item, Any], None]
    tick: Tick = no_tick
    gpu: bool = False


class Backend(ABC):
    """Runs tasks at most ``jobs`` at a time; ``address`` is where (a cluster), for the
    backends that have one."""

    #: Whether the backend takes an ``address``.
    takes_address = False

    def __init__(self, jobs: int = 1, address: str | None = None) -> None:
        self.jobs = jobs
        self.address = address

    def check(self) -> None:
        """Fail now, clearly, when this backend cannot run here (e.g. a missing extra)."""
        return None

    @abstractmethod
    def run(self, work: Work) -> None:
        """Run ``work`` (see :class:`Work`); the first task error is raised here."""


BACKENDS: Registry[type[Backend]] = Registry("grid backend", "mtlkit.experiments.backends")
#: The backend a grid runs on when none is named.
DEFAULT_BACKEND = "local"


def make_backend(name: str, jobs: int = 1, address: str | None = None) -> Backend:
    """The backend registered as ``name``, checked now (a missing extra, a bad setting):
    before any data is read."""
    from mtlkit.errors import ConfigError

    if jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer, got {jobs}.")
    cls = BACKENDS.entry(name).target
    if address is not None and not cls.takes_address:
        raise ConfigError("--ray-address goes with --backend ray.")
    backend = cls(jobs, address)
    backend.check()
    return backend
