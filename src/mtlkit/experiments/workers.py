"""Worker processes of a parallel grid that end with the process that started them.

A worker is bound to the grid's main process by :func:`mtlkit.processes.end_with_parent`
(the one mechanism that also binds ``mtlkit train --nproc``'s ranks to their launcher), and
checks :func:`~mtlkit.processes.parent_alive` once more before it writes a cell.
"""

from __future__ import annotations

import signal
from concurrent.futures import ProcessPoolExecutor

from mtlkit.processes import end_with_parent


def die_with_parent(parent: int) -> None:
    """Make this process (a worker) end when process ``parent`` does; the main process
    alone handles Ctrl-C (it then stops the workers, :func:`stop_workers`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with_parent(parent)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's worker processes now (on Ctrl-C or SIGTERM in the main process),
    instead of waiting for their running cells; finished cells are already saved."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
