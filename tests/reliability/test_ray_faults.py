"""``compare --backend ray``: an address where no cluster answers fails at once, before any
folder; an error inside a Ray task is mtlkit's one line, without Ray's remote traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")  # pinned in requirements-lock.txt: installed in CI

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}


def test_no_cluster_at_the_address_fails_before_any_folder(tmp_path):
    out = tmp_path / "run"
    argv = ["compare", "synthetic", "--rows", "300", "--models", "shared_bottom", "--quiet"]
    argv += ["--out", str(out), "--backend", "ray", "--ray-address", "127.0.0.1:1"]
    start = time.monotonic()
    try:  # Ray's own client retries for ever: a timeout here is the failure
        done = subprocess.run(
            [sys.executable, "-m", "mtlkit", *argv],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("no answer from 127.0.0.1:1 and no error in 90 s")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("mtlkit compare: error: ") and "127.0.0.1:1" in last, done.stderr
    assert time.monotonic() - start < 60
    assert not out.exists()


def _failing_cell(shared, cell, tick) -> tuple:  # noqa: ANN001
    from mtlkit.errors import DataError

    raise DataError(f"{cell}: the data changed while the grid ran")


def test_an_error_in_a_ray_task_is_the_tasks_own_error():
    from mtlkit.errors import DataError
    from mtlkit.experiments.backends import Work, make_backend

    backend = make_backend("ray", 1)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the task is defined here
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(DataError) as caught:
            backend.run(Work(_failing_cell, None, ["shared_bottom"], lambda *_: None))
    finally:
        ray.shutdown()
    # as a local worker raises it: no remote traceback, no terminal colour codes
    assert str(caught.value) == "shared_bottom: the data changed while the grid ran"
