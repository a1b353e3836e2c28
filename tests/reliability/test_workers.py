"""Worker processes of ``compare --jobs 2`` end with the main process, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import alive, cmdline, descendants, wait_until_gone

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_the_main_process_ends_its_workers(sig, tmp_path):
    out = tmp_path / "run"
    grid = ["compare", "synthetic", "--rows", "4000", "--epochs", "500", "--patience", "0"]
    grid += ["--models", "mmoe", "--seeds", "0", "1", "--jobs", "2", "--quiet", "--out", out]
    main = subprocess.Popen(
        [sys.executable, "-m", "mtlkit", *map(str, grid)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    family: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while sum("spawn_main" in cmdline(p) for p in descendants(main.pid)) < 2:
            assert main.poll() is None, main.stdout.read()
            assert time.monotonic() < deadline, "the workers did not start in 180 s"
            time.sleep(0.2)
        time.sleep(2)  # the workers import PyTorch and start their cells
        family = descendants(main.pid)  # the workers and the resource tracker
        cells = sorted((out / "cells").glob("*.json"))
        main.send_signal(sig)
        printed, _ = main.communicate(timeout=60)
        left = wait_until_gone(family, 10)
        assert not left, f"still running 10 s after the main process ended: {left}"
        assert sorted((out / "cells").glob("*.json")) == cells  # no cell written by an orphan
        if sig == signal.SIGTERM:  # handled like Ctrl-C
            assert main.returncode == 128 + signal.SIGTERM, printed
            assert "Interrupted. Finished runs are saved" in printed and "Traceback" not in printed
    finally:  # a failed test leaves nothing running
        if main.poll() is None:
            main.kill()
        for pid in family:
            if alive(pid) and "multiprocessing" in cmdline(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_watchdog_ends_a_worker_where_the_kernel_signal_is_missing(tmp_path):
    # The middle process starts a "worker" that arms only the portable watchdog (as on a
    # system without prctl), then is killed: the worker must notice within seconds.
    worker = (
        "import os, sys, time; sys.platform = 'darwin'; "
        "from mtlkit.experiments import workers; workers.die_with_parent(os.getppid()); "
        "print(os.getpid(), flush=True); time.sleep(120)"
    )
    middle = (
        "import subprocess, sys, time; "
        f"child = subprocess.Popen([sys.executable, '-c', {worker!r}], stdout=subprocess.PIPE, "
        "text=True); print(child.stdout.readline().strip(), flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", middle], env=ENV, stdout=subprocess.PIPE, text=True
    )
    child = int(proc.stdout.readline())
    assert alive(child)
    proc.kill()
    proc.wait()
    assert not wait_until_gone({child}, 5)


def test_a_worker_whose_parent_is_already_gone_exits_at_once():
    code = "from mtlkit.experiments import workers; workers.die_with_parent(1); print('alive')"
    done = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "alive" not in done.stdout
