"""``mtlkit train --nproc 2``: torch's launcher, uneven shards, a rank that dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mtlkit.data.synthetic import make_synthetic

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    """3,001 rows in two files with row groups of 97 and 113 rows: no even split anywhere."""
    folder = tmp_path_factory.mktemp("pq")
    frame = make_synthetic(3001, n_features=6, correlation=0.9, seed=0)
    for name, part, rows in (("a", frame.iloc[:2000], 97), ("b", frame.iloc[2000:], 113)):
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=rows)
    return folder


def _train(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "mtlkit", "train", str(data), "--labels", "label0"]
    command += ["label1", "--model", "mmoe:n_experts=2", "--nproc", "2", "--quiet"]
    return subprocess.Popen(
        [*command, "--out", str(out), *extra],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # to end every rank if the test fails
    )


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"no exit in {timeout} s (a hang):\n{out}\n{err}")


def test_uneven_shards_of_a_stream_train_to_the_end(parquet, tmp_path):
    out = tmp_path / "model"
    proc = _train(parquet, out, "--stream", "--epochs", "2", "--batch-size", "100")
    stdout, stderr = _finish(proc, timeout=240)
    assert proc.returncode == 0, stderr
    assert "label0" in stdout  # rank 0 printed the test metrics, once
    assert stdout.count("model saved") == 1
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert (out / "model.pt").is_file() and not list(out.glob(".*"))  # atomic writes only


def _ranks(launcher: int) -> list[int]:
    """The worker processes torch's launcher started (its children running mtlkit)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if entry.name.isdigit() and parent == launcher and b"mtlkit" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the ranks through /proc")
def test_a_rank_that_dies_stops_the_run_with_a_clear_error(parquet, tmp_path):
    proc = _train(parquet, tmp_path / "model", "--epochs", "500", "--patience", "0")
    deadline = time.monotonic() + 120
    while len(ranks := _ranks(proc.pid)) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the ranks did not start"
        time.sleep(0.2)
    time.sleep(8)  # into training
    os.kill(max(ranks), signal.SIGKILL)
    _, stderr = _finish(proc, timeout=120)
    assert proc.returncode != 0
    assert "mtlkit train: error: data-parallel training failed: rank" in stderr
    assert "SIGKILL" in stderr
    assert not (tmp_path / "model" / "model.pt").exists()


@pytest.mark.slow  # about a minute: three data-parallel runs (the fast check: test_trainer.py)
def test_a_killed_run_continues_from_its_last_epoch(parquet, tmp_path):
    import torch

    args = ("--stream", "--epochs", "12", "--patience", "0", "--batch-size", "50")
    whole = _train(parquet, tmp_path / "whole", *args)
    killed_out = tmp_path / "killed"
    killed = _train(parquet, killed_out, *args)
    state = killed_out / "training_state.pt"
    deadline = time.monotonic() + 180
    while not state.is_file() or len(torch.load(state, weights_only=True)["history"]["epochs"]) < 2:
        assert killed.poll() is None, killed.communicate()
        assert time.monotonic() < deadline, "no epoch saved in 180 s"
        time.sleep(0.1)
    for pid in _ranks(killed.pid):  # torch's launcher starts each rank in its own session
        os.kill(pid, signal.SIGKILL)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate()
    assert not (killed_out / "model.pt").exists()
    again = _train(parquet, killed_out, *args)
    stdout, stderr = _finish(again, timeout=240)
    assert again.returncode == 0, stderr
    assert "continuing the training saved in" in stdout
    _finish(whole, timeout=240)
    history = json.loads((killed_out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, 13))
    resumed = torch.load(killed_out / "model.pt", weights_only=True)
    expected = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    for name, value in expected.items():
        assert torch.equal(resumed[name], value), name
