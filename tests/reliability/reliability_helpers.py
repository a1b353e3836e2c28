"""The check every malformed input must pass: a non-zero exit with one clear line."""

from __future__ import annotations

import time
from pathlib import Path

from mtlkit.cli.main import main

LABELS = ["label0", "label1"]
#: Longest message a user should have to read for one mistake.
MAX_MESSAGE = 300


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``mtlkit ARGV`` in this process: (exit code, everything printed)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as done:  # argparse's own errors
        code = done.code
    out, err = capsys.readouterr()
    return code, out + err


def assert_clear_error(argv: list[str], capsys, needle: str) -> str:
    """The command fails, without a traceback, and its last line is one ``mtlkit CMD:
    error: ...`` message naming ``needle`` (the file, column or setting)."""
    code, printed = run_cli(argv, capsys)
    assert code not in (0, None), printed
    assert "Traceback" not in printed, printed
    message = printed.strip().splitlines()[-1]
    assert message.startswith("mtlkit ") and ": error: " in message, printed
    assert needle in message, message
    assert len(message) < MAX_MESSAGE, message
    return message


# Processes, read from /proc (Linux): the tests that kill a parent and look for orphans.


def process_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every process started by ``pid`` and by those, as long as ``pid`` runs."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := process_stat(int(entry.name))):
            parents[int(entry.name)] = stat[1]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cmdline(pid: int) -> str:
    """The command line of a process (NUL-separated), empty once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether a process still runs."""
    stat = process_stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has ended (nobody reaped it yet)


def wait_until_gone(pids: set[int], seconds: float) -> set[int]:
    """The processes of ``pids`` still running after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
