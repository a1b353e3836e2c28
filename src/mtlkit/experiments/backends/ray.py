"""The ``ray`` backend (``mtlkit compare --backend ray``; the optional ``ray`` extra).

The driver puts what every task shares (the validated settings and the loaded data splits)
into Ray's object store once; each task asks for one CPU (and one GPU when the training
device is a GPU) and returns its result to the driver, which writes it into the run folder.
At most ``jobs`` tasks are in flight. A streamed split holds file paths, which every node
must be able to read; tuning studies keep their trials in the run folder's SQLite file, so a
grid that tunes on several machines needs the run folder on a file system every node sees.
"""

from __future__ import annotations

import re
import socket
from typing import Any

from mtlkit.errors import ConfigError, MtlkitError, missing_extra
from mtlkit.experiments.backends import BACKENDS, Backend, Task, Work, no_tick

#: How long a Ray cluster has to accept a connection, in seconds.
CONNECT_TIMEOUT_S = 5.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def import_ray():  # noqa: ANN201
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError as err:
        raise missing_extra("--backend ray", "ray", err) from None
    return ray


def check_address(address: str | None) -> None:
    """A Ray cluster at ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) accepts a
    connection within :data:`CONNECT_TIMEOUT_S` seconds, checked before any folder is made:
    Ray's own client retries for ever. None and ``"auto"`` (a local cluster) are not probed."""
    if not address or address in ("auto", "local"):
        return
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379 or "
            "ray://10.0.0.5:10001), nor 'auto'."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ConfigError(
            f"no Ray cluster answers at --ray-address {address} ({err.strerror or err}); "
            "start it (ray start --head) or fix the address."
        ) from None


def task_error(err: Exception) -> Exception:
    """The error a Ray task raised, as a local worker would raise it: Ray wraps it with the
    remote traceback (with terminal colour codes) in its message; the cause is unwrapped, or
    its first line kept, without the colour codes."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, Exception):
        return cause
    line = _ANSI.sub("", str(err)).strip().splitlines()
    return MtlkitError(f"a Ray task failed: {line[-1] if line else type(err).__name__}")


@BACKENDS.register("ray", "a Ray cluster: each cell or tuning study one Ray task")
class RayBackend(Backend):
    takes_address = True

    def check(self) -> None:
        import_ray()  # a missing extra fails before any data is read
        check_address(self.address)  # and a cluster that does not answer, before any folder

    def run(self, work: Work) -> None:
        """``self.address``: ``"auto"`` (the cluster running here), ``HOST:PORT``, or None (a
        local Ray started for this call)."""
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        running: dict = {}
        try:
            remote = ray.remote(num_cpus=1, num_gpus=1 if work.gpu else 0)(_call)
            stored = ray.put(work.shared)  # once: every task reads it from the object store
            queue = list(work.items)
            while queue or running:
                while queue and len(running) < self.jobs:
                    item = queue.pop(0)
                    running[remote.remote(work.task, stored, item)] = item
                (ready,), _ = ray.wait(list(running), num_returns=1)
                item = running.pop(ready)
                try:
                    result, units = ray.get(ready)
                except ray.exceptions.RayTaskError as err:  # the task's own error, one line
                    raise task_error(err) from None
                work.done(item, result)
                work.tick(units)
        finally:
            for ref in running:  # interrupted: stop what is still running
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


def _call(task: Task, shared: Any, item: Any) -> tuple[Any, int]:
    import torch

    torch.set_num_threads(1)  # one CPU asked for, as the local worker processes
    return task(shared, item, no_tick)
