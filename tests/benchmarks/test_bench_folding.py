"""benchmarks/bench_folding.py runs and reports where mtlkit folds."""

import runpy
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_folding.py"


def test_quick_run_prints_the_ratios_and_where_mtlkit_folds(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_folding.py", "--quick", "--rounds", "2"])
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        torch.set_num_threads(threads)  # the script runs on one thread
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 8 | 512")]
    assert len(rows) == 2  # the training and the scoring table
    assert all(row.rstrip(" |").endswith("*") for row in rows)  # this layer folds in both
