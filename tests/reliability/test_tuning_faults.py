"""Tuning: a damaged study file, two commands on one folder, an absurd budget and an
interrupted trial each end in mtlkit's one line, never in Optuna's or SQLAlchemy's traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_helpers import LABELS, assert_clear_error, run_cli

from mtlkit.experiments.tuning_plan import STORAGE_FILE, TUNING_DIR
from mtlkit.processes import LOCK_FILE

SRC = Path(__file__).resolve().parents[2] / "src"


def _tune(csv: Path, out: Path) -> list:
    return ["tune", csv, "--labels", *LABELS, "--trials", 1, "--epochs", 1, "--out", out, "--quiet"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, good_csv) -> Path:
    """A finished one-trial study."""
    out = tmp_path_factory.mktemp("tuned") / "run"
    from mtlkit.cli.main import main

    assert main([str(a) for a in _tune(good_csv, out)]) == 0
    return out


def _interrupted_copy(tuned: Path, tmp_path: Path) -> Path:
    """The study's folder as a killed ``tune`` leaves it: the storage, no study record."""
    out = tmp_path / "run"
    shutil.copytree(tuned, out)
    for record in (out / TUNING_DIR).glob("*.json"):
        record.unlink()
    (out / LOCK_FILE).unlink(missing_ok=True)
    return out


DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "overwritten": lambda data: b"this is not a database" * 200,
    "zeroed pages": lambda data: data[:4096] + bytes(len(data) - 4096),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_study_file_is_named(damage, tuned, good_csv, tmp_path, capsys):
    out = _interrupted_copy(tuned, tmp_path)
    db = out / TUNING_DIR / STORAGE_FILE
    db.write_bytes(DAMAGE[damage](db.read_bytes()))
    message = assert_clear_error(_tune(good_csv, out), capsys, STORAGE_FILE)
    assert "delete it" in message


def test_a_folder_another_process_tunes_in_is_refused(tuned, good_csv, tmp_path, capsys):
    out = _interrupted_copy(tuned, tmp_path)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_FILE).write_text(str(owner.pid))
        message = assert_clear_error(_tune(good_csv, out), capsys, f"pid {owner.pid}")
        assert "in use by another mtlkit process" in message
    finally:
        owner.kill()
        owner.wait()
    # its owner is gone: the claim is stale, taken over, and the study finishes
    code, printed = run_cli(_tune(good_csv, out), capsys)
    assert code == 0, printed
    assert (out / TUNING_DIR / STORAGE_FILE).is_file()


def test_a_budget_beyond_the_limit_is_refused(tmp_path, capsys):
    # refused with the settings, before the data are read (missing here)
    argv = ["compare", tmp_path / "missing.csv", "--labels", *LABELS, "--models", "mmoe"]
    argv += ["--out", tmp_path / "run"]
    assert_clear_error([*argv, "--tune", 1_000_000_000], capsys, "<= 10000")


def test_an_interrupted_trial_prints_no_traceback(good_csv, tmp_path):
    # SIGTERM reaches a trial as KeyboardInterrupt (mtlkit's handler): Optuna must not log
    # the trial's traceback before mtlkit's message.
    script = (
        "import sys\n"
        "from mtlkit.training.estimator import MultiTaskEstimator\n"
        "def stop(*args, **kwargs):\n"
        "    raise KeyboardInterrupt\n"
        "MultiTaskEstimator.fit = stop\n"
        "from mtlkit.cli.main import main\n"
        f"sys.exit(main({[str(a) for a in _tune(good_csv, tmp_path / 'run')]!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "Trial 0 failed" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "mtlkit tune: interrupted"
