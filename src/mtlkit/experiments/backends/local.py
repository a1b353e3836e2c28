"""The ``local`` backend: tasks in this process (``jobs=1``) or in ``jobs`` worker processes
on this machine, one torch thread each; workers end with the process that started them
(:mod:`mtlkit.experiments.workers`)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from mtlkit.experiments.backends import BACKENDS, Backend, Task, Work, no_tick
from mtlkit.experiments.workers import die_with_parent, stop_workers
from mtlkit.processes import parent_alive

_shared: Any = None  # in worker processes: what every task of the pool shares


@BACKENDS.register("local", "this machine: in this process, or --jobs worker processes")
class LocalBackend(Backend):
    def run(self, work: Work) -> None:
        if self.jobs <= 1:
            for item in work.items:
                result, _ = work.task(work.shared, item, work.tick)  # it ticks as it goes
                work.done(item, result)
            return
        context = multiprocessing.get_context("spawn")
        # ``shared`` goes to the workers as one file they read once started (and bound to
        # this process): a worker's start-up message stays small, so that ending this
        # process while workers start leaves no worker half-way through reading it.
        with tempfile.TemporaryDirectory(prefix="mtlkit-grid-") as folder:
            path = Path(folder) / "shared.pkl"
            with path.open("wb") as file:
                pickle.dump(work.shared, file, protocol=pickle.HIGHEST_PROTOCOL)
            pool = ProcessPoolExecutor(
                self.jobs,
                mp_context=context,
                initializer=_init_worker,
                initargs=(os.getpid(), str(path)),
            )
            try:
                pending = {pool.submit(_call, work.task, item): item for item in work.items}
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        item = pending.pop(future)
                        result, units = future.result()  # re-raises a worker's error here
                        work.done(item, result)
                        work.tick(units)
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM on the command line
                stop_workers(pool)
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(parent: int, shared: str) -> None:
    import torch

    global _shared
    torch.set_num_threads(1)
    die_with_parent(parent)  # a worker never outlives the grid's main process
    with open(shared, "rb") as file:
        _shared = pickle.load(file)  # written by this worker's parent, just before


def _call(task: Task, item: Any) -> tuple[Any, int]:
    result = task(_shared, item, no_tick)
    if not parent_alive():  # an orphaned worker hands nothing back
        os._exit(1)
    return result
