"""``mtlkit train --nproc 2``: no rank outlives its launcher, every failure ends in one line.

Each test starts real ranks (torch's launcher, Gloo), so each costs a few seconds of
process start-up; the data are tiny.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import alive, cmdline, descendants, wait_until_gone

from mtlkit.data.synthetic import make_synthetic

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dp") / "rows.csv"
    make_synthetic(2000, n_features=4, correlation=0.9, seed=0).to_csv(path, index=False)
    return path


def _train(data: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "mtlkit", "train", str(data), "--labels", "label0"]
    command += ["label1", "--model", "mmoe:n_experts=2", "--nproc", "2", "--quiet"]
    return subprocess.Popen(
        [*command, "--out", str(out), *extra],
        env=env or ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ranks(launcher: int) -> set[int]:
    return {p for p in descendants(launcher) if "mtlkit" in cmdline(p)}


def _wait_for_ranks(proc: subprocess.Popen, seconds: float = 180) -> set[int]:
    deadline = time.monotonic() + seconds
    while len(ranks := _ranks(proc.pid)) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the ranks did not start in {seconds} s"
        time.sleep(0.2)
    return ranks


def _finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in _ranks(proc.pid) | {proc.pid}:
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"no exit in {timeout} s (a hang):\n{out}\n{err}")


def _assert_one_line_error(proc: subprocess.Popen, stderr: str, needle: str) -> None:
    """Every rank and the launcher ended without a traceback or torchrun's failure report:
    every line is one of mtlkit's error lines (a surviving rank may say in its own line what
    it lost before the launcher stops it), the last one the launcher's."""
    assert proc.returncode not in (0, None), stderr
    for noise in ("Traceback", "ChildFailedError", "Root Cause"):
        assert noise not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert all(line.startswith("mtlkit train: error: ") for line in lines), stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("mtlkit train: error: ") and needle in last, stderr


def _wait_for_an_epoch(proc: subprocess.Popen, out: Path, seconds: float = 180) -> None:
    """Until the ranks have trained an epoch (its state is saved after each)."""
    deadline = time.monotonic() + seconds
    while not (out / "training_state.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, f"no epoch in {seconds} s"
        time.sleep(0.1)


def test_killing_the_launcher_ends_its_ranks(data, tmp_path):
    out = tmp_path / "model"
    proc = _train(data, out, "--epochs", "500", "--patience", "0")
    family: set[int] = set()
    try:
        _wait_for_ranks(proc)
        _wait_for_an_epoch(proc, out)
        family = descendants(proc.pid)
        proc.kill()
        proc.wait()
        left = wait_until_gone(family, 10)
        assert not left, f"ranks still running 10 s after their launcher died: {left}"
        time.sleep(2)
        assert not (out / "model.pt").exists()  # no model folder written by an orphan
    finally:
        for pid in family | {proc.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_rank_whose_peer_died_ends_in_one_line(tmp_path):
    # Rank 1 dies inside the process group; rank 0, waiting in a collective, gets Gloo's
    # "Connection reset by peer" (a RuntimeError): it must end with mtlkit's one line.
    rank = (
        "import os, sys, torch, torch.distributed as dist\n"
        "from mtlkit.errors import MtlkitError\n"
        "from mtlkit.training import distributed\n"
        "try:\n"
        "    with distributed.process_group():\n"
        "        if distributed.rank() == 1:\n"
        "            os._exit(3)\n"
        "        for _ in range(100000):\n"
        "            dist.all_reduce(torch.ones(1))\n"
        "except MtlkitError as err:\n"
        "    print(err)\n"
        "    sys.exit(2)\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    group = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", rank],
            env={**ENV, **group, "RANK": str(r), "LOCAL_RANK": str(r), "LOCAL_WORLD_SIZE": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    stdout, stderr = _finish(procs[0], timeout=120)
    procs[1].communicate(timeout=60)
    assert procs[0].returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    assert stdout.startswith("rank 0 lost the other ranks (") and len(stdout) < 300, stdout


def test_a_killed_rank_ends_the_run_in_one_line(data, tmp_path):
    out = tmp_path / "model"
    proc = _train(data, out, "--epochs", "500", "--patience", "0")
    ranks = _wait_for_ranks(proc)
    _wait_for_an_epoch(proc, out)  # in training, not starting up: a rank killed while the
    # other still imports makes the launcher stop that one (SIGTERM), before it trains
    os.kill(max(ranks), signal.SIGKILL)
    _, stderr = _finish(proc)
    _assert_one_line_error(proc, stderr, "data-parallel training failed: rank")
    assert "SIGKILL" in stderr and "exitcode" not in stderr  # no torchrun log lines
