"""Processes that end with the process that started them, and folders one process owns.

A process that starts others (a grid's main process with its ``--jobs`` workers, the
launcher of ``mtlkit train --nproc`` with its ranks) may die without cleaning up
(``kill -9``, the OOM killer, a scheduler's SIGTERM followed by SIGKILL). What it started
must not live on, holding memory and writing files for a run nobody waits for. On Linux the
kernel kills such a child when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``);
everywhere, a watchdog thread polls the parent and ends the child within :data:`POLL_S`
seconds; and a child checks :func:`parent_alive` once more before it writes its results.

A run folder is written by one command at a time (:func:`own_folder`): a second ``mtlkit
tune`` or ``compare`` on the same ``--out`` would mark the first one's running trials failed.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import sys
import threading
import time
from pathlib import Path

from mtlkit.errors import ConfigError

#: How often a child's watchdog checks that its parent is alive, in seconds.
POLL_S = 0.5
#: The environment variable in which a launcher (``mtlkit train --nproc``) gives its ranks
#: its process id: a rank started late finds the launcher gone, not a new parent.
LAUNCHER_PID = "MTLKIT_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_parent: int | None = None  # set in bound child processes only
#: The lock file of a folder a process owns; it holds the owner's pid.
LOCK_FILE = ".mtlkit.lock"
_owned: set[Path] = set()


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


def own_folder(folder: Path, what: str = "--out") -> None:
    """Claim ``folder`` for this process until it exits (a :data:`LOCK_FILE` holding its
    pid): a folder that another running process claimed is refused with a
    :class:`~mtlkit.errors.ConfigError`; a claim left by a process that is gone (killed) is
    taken over. Idempotent within a process."""
    lock = (Path(folder) / LOCK_FILE).resolve()
    if lock in _owned:
        return
    for _ in range(50):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lock)
            if owner is None:  # being written by its owner right now
                time.sleep(0.1)
                continue
            if owner != os.getpid() and _running(owner):
                raise ConfigError(
                    f"{what} {folder} is in use by another mtlkit process (pid {owner}); wait "
                    f"for it to end or choose another {what} (if no such process runs, delete "
                    f"{lock})."
                ) from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as out:
            out.write(str(os.getpid()))
        _owned.add(lock)
        atexit.register(_release, lock)
        return
    raise ConfigError(f"cannot claim {what} {folder}: {lock} stays empty; delete it.")


def _owner(lock: Path) -> int | None:
    try:
        text = lock.read_text().strip()
    except FileNotFoundError:
        return 0  # released meanwhile: no owner
    return int(text) if text.isdigit() else None


def _running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _release(lock: Path) -> None:
    if _owner(lock) == os.getpid():
        lock.unlink(missing_ok=True)
    _owned.discard(lock)
