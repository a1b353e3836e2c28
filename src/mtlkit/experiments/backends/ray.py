"""The ``ray`` backend (``mtlkit compare --backend ray``; the optional ``ray`` extra).

The driver puts what every task shares (the validated settings and the loaded data splits)
into Ray's object store once; each task asks for one CPU (and one GPU when the training
device is a GPU) and returns its result to the driver, which writes it into the run folder.
At most ``jobs`` tasks are in flight. A streamed split holds file paths, which every node
must be able to read; tuning studies keep their trials in the run folder's SQLite file, so a
grid that tunes on several machines needs the run folder on a file system every node sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mtlkit.errors import missing_extra
from mtlkit.experiments.backends import BACKENDS, Backend, Item, Task, Tick


def import_ray():  # noqa: ANN201
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError as err:
        raise missing_extra("--backend ray", "ray", err) from None
    return ray


@BACKENDS.register("ray", "a Ray cluster: each cell or tuning study one Ray task")
class RayBackend(Backend):
    takes_address = True

    def check(self) -> None:
        import_ray()  # a missing extra fails before any data is read

    def run(
        self,
        task: Task,
        shared: Any,
        items: Sequence[Item],
        done: Callable[[Item, Any], None],
        tick: Tick,
        gpu: bool = False,
    ) -> None:
        """``address``: ``"auto"`` (the cluster running here), ``HOST:PORT``, or None (a
        local Ray started for this call)."""
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        running: dict = {}
        try:
            remote = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0)(_call)
            stored = ray.put(shared)  # once: every task reads it from the object store
            queue = list(items)
            while queue or running:
                while queue and len(running) < self.jobs:
                    item = queue.pop(0)
                    running[remote.remote(task, stored, item)] = item
                (ready,), _ = ray.wait(list(running), num_returns=1)
                item = running.pop(ready)
                result, units = ray.get(ready)  # re-raises a task's error here
                done(item, result)
                tick(units)
        finally:
            for ref in running:  # interrupted: stop what is still running
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


def _call(task: Task, shared: Any, item: Any) -> tuple[Any, int]:
    import torch

    torch.set_num_threads(1)  # one CPU asked for, as the local worker processes
    return task(shared, item, _no_tick)


def _no_tick(n: int) -> None:
    """A task's progress shows when it is done (the driver owns the bar)."""
