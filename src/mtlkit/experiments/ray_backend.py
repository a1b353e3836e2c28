"""Grid cells as Ray tasks (``mtlkit compare --backend ray``): the optional ``ray`` extra.

Each pending cell becomes one Ray task asking for one CPU (and one GPU when the training
device is a GPU); at most ``jobs`` run at a time. A task runs what a local worker process
runs for the cell (the grid passes its function, e.g.
:func:`~mtlkit.experiments.grid.run_cell`): it reads the data, trains, and writes the cell's
record (and an unconverged cell's continuation state) into the run folder, atomically. On a
cluster of several machines the data and the run folder must therefore be on a file system
every node sees; resuming, ``mtlkit report`` and the results are those of a local run.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

from mtlkit.errors import ConfigError, MtlkitError
from mtlkit.experiments.cells import Cell
from mtlkit.experiments.config import CompareConfig

INSTALL = 'pip install "mtlkit[ray]"'
#: How long a Ray cluster has to accept a connection, in seconds.
CONNECT_TIMEOUT_S = 5.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def import_ray():  # noqa: ANN201
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--backend ray needs Ray, which is not installed; install the extra: {INSTALL}"
        ) from None
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


def _run(task: Callable[..., int], raw: dict, cell: Cell, run_dir: Path, *extra) -> int:
    import torch

    torch.set_num_threads(1)  # one CPU asked for, as the local worker processes
    return task(raw, cell, run_dir, *extra)


def run_on_ray(
    task: Callable[..., int],
    raw: dict,
    todo: list[Cell],
    run_dir: Path,
    jobs: int,
    bar,  # noqa: ANN001
    address: str | None,
    *extra,
) -> None:
    """``task(raw, cell, run_dir, *extra)`` for every cell of ``todo`` as Ray tasks on the
    cluster at ``address`` (``"auto"``: the running one; None: a local one started for this
    grid); the bar advances by what each returns, and a task's error is raised here."""
    ray = import_ray()
    config = CompareConfig.from_mapping(raw, validate=False)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    queue, running = list(todo), []
    try:
        gpus = 1 if config.train.device.startswith("cuda") else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpus)(_run)
        folder = Path(run_dir).resolve()
        while queue or running:
            while queue and len(running) < max(jobs, 1):
                running.append(remote.remote(task, raw, queue.pop(0), folder, *extra))
            (ready,), running = ray.wait(running, num_returns=1)
            try:
                bar.update(ray.get(ready))
            except ray.exceptions.RayTaskError as err:
                raise task_error(err) from None
    finally:
        for ref in running:  # interrupted: stop what is still running
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
