"""Worker processes of a parallel grid that end with the process that started them.

A grid's main process may die without cleaning up (``kill -9``, the OOM killer, a
scheduler's SIGTERM followed by SIGKILL). Its workers must not live on, holding memory and
writing cells for a grid nobody waits for. On Linux the kernel kills a worker when its
parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); everywhere, a watchdog thread polls the
parent and ends the worker within :data:`POLL_S` seconds; and a worker checks its parent
once more before it writes a cell.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: How often a worker's watchdog checks that its parent is alive, in seconds.
POLL_S = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_parent: int | None = None  # set in worker processes only


def die_with_parent(parent: int) -> None:
    """Make this process (a worker) end when process ``parent`` does; the main process
    alone handles Ctrl-C (it then stops the workers, :func:`stop_workers`)."""
    global _parent
    _parent = parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still ends this process
    if not parent_alive():  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, name="mtlkit-parent-watchdog", daemon=True).start()


def parent_alive() -> bool:
    """Whether the process that started this worker still runs (True outside workers).
    An orphan is adopted by another process, so its parent id changes."""
    return _parent is None or os.getppid() == _parent


def _watch() -> None:
    while parent_alive():
        time.sleep(POLL_S)
    os._exit(1)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's worker processes now (on Ctrl-C or SIGTERM in the main process),
    instead of waiting for their running cells; finished cells are already saved."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
