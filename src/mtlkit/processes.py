"""Processes that end with the process that started them.

A process that starts others (a grid's main process with its ``--jobs`` workers, the
launcher of ``mtlkit train --nproc`` with its ranks) may die without cleaning up
(``kill -9``, the OOM killer, a scheduler's SIGTERM followed by SIGKILL). What it started
must not live on, holding memory and writing files for a run nobody waits for. On Linux the
kernel kills such a child when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``);
everywhere, a watchdog thread polls the parent and ends the child within :data:`POLL_S`
seconds; and a child checks :func:`parent_alive` once more before it writes its results.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: How often a child's watchdog checks that its parent is alive, in seconds.
POLL_S = 0.5
#: The environment variable in which a launcher (``mtlkit train --nproc``) gives its ranks
#: its process id: a rank started late finds the launcher gone, not a new parent.
LAUNCHER_PID = "MTLKIT_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_parent: int | None = None  # set in bound child processes only


def end_with_parent(parent: int) -> None:
    """Make this process end (SIGKILL, or ``os._exit(1)`` from the watchdog) when process
    ``parent`` does. Idempotent for the same parent."""
    global _parent
    if _parent == parent:
        return
    _parent = parent
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still ends this process
    if not parent_alive():  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, name="mtlkit-parent-watchdog", daemon=True).start()


def launcher_pid() -> int:
    """The process that started this one: the pid in :data:`LAUNCHER_PID` when a launcher
    set it, else the parent (e.g. ``torchrun``'s agent)."""
    given = os.environ.get(LAUNCHER_PID, "")
    return int(given) if given.isdigit() else os.getppid()


def parent_alive() -> bool:
    """Whether the process that started this one still runs (True in a process that is not
    bound to its parent). An orphan is adopted by another process, so its parent id changes."""
    return _parent is None or os.getppid() == _parent


def _watch() -> None:
    while parent_alive():
        time.sleep(POLL_S)
    os._exit(1)
