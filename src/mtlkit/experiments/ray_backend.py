"""Grid cells as Ray tasks (``mtlkit compare --backend ray``): the optional ``ray`` extra.

Each pending cell becomes one Ray task asking for one CPU (and one GPU when the training
device is a GPU); at most ``jobs`` run at a time. The data splits are loaded once, here, and
put in Ray's object store, so workers on other machines need no copy of the files. Finished
records come back to this process, which writes each cell's file atomically into the run
folder as it arrives: resuming, ``mtlkit report`` and the results are those of a local run.
"""

from __future__ import annotations

from pathlib import Path

from mtlkit.errors import ConfigError
from mtlkit.experiments.cells import Cell
from mtlkit.experiments.config import CompareConfig

INSTALL = 'pip install "mtlkit[ray]"'


def import_ray():  # noqa: ANN201
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--backend ray needs Ray, which is not installed; install the extra: {INSTALL}"
        ) from None
    return ray


def _train(raw: dict, cell: Cell, splits: tuple) -> dict:
    import torch

    from mtlkit.experiments.grid import train_cell

    torch.set_num_threads(1)  # one CPU asked for, as the local worker processes
    return train_cell(raw, cell, splits)


def run_on_ray(
    raw: dict,
    todo: list[Cell],
    run_dir: Path,
    jobs: int,
    bar,
    address: str | None,  # noqa: ANN001
) -> None:
    """Run ``todo`` on the Ray cluster at ``address`` (``"auto"``: the running one; None: a
    local one started for this grid), writing each record into ``run_dir``."""
    from mtlkit.experiments.grid import data_variants, save_cell

    ray = import_ray()
    config = CompareConfig.from_mapping(raw, validate=False)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    queue, running = list(todo), {}
    try:
        gpus = 1 if config.train.device.startswith("cuda") else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus)(_train)
        splits = {c: ray.put(s) for c, s in data_variants(config).items()}
        while queue or running:
            while queue and len(running) < max(jobs, 1):
                cell = queue.pop(0)
                running[task.remote(raw, cell, splits[cell.correlation])] = cell
            (ready,), _ = ray.wait(list(running), num_returns=1)
            save_cell(run_dir, running.pop(ready), ray.get(ready))  # a task's error too
            bar.update()
    finally:
        for ref in running:  # interrupted: stop what is still running
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
