"""The examples/ scripts run end to end (fast settings)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_original_workflow_example_writes_the_four_plots(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, str(ROOT / "examples" / "original_workflow.py")]
    cmd += ["--rows", "1500", "--epochs", "2", "--out", str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "files used: part0_label0.csv (750 rows), part1_label1.csv (750 rows)" in done.stdout
    assert "training time:" in done.stdout and "label1: test ROC-AUC" in done.stdout
    for name in ("loss", "accuracy", "auc", "pr"):
        (png,) = (tmp_path / "plots").glob(f"*/{name}.png")  # the training's own folder
        assert png.stat().st_size > 1000 and str(png) in done.stdout
