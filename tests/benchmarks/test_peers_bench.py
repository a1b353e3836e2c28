"""benchmarks/peers/bench.py: its ``--threads`` settings and the report's AUC columns."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[2] / "benchmarks" / "peers"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(PEERS))
    yield importlib.import_module("bench")
    for name in ("bench", "common"):  # the benchmark's modules, imported from its folder
        sys.modules.pop(name, None)


@pytest.mark.parametrize("value", ["1", "2", "2p", "default", "defaultp"])
def test_thread_settings_are_numbers_or_default(bench, value):
    assert bench.thread_setting(value) == value


@pytest.mark.parametrize("value", ["0", "two", "-1", "p", "defaults"])
def test_a_wrong_thread_setting_is_refused_by_name(bench, value):
    with pytest.raises(argparse.ArgumentTypeError, match=f"{value!r} is not a thread setting"):
        bench.thread_setting(value)


def _result(label: str, threads: str, auc: list[float], repeat: int = 0) -> dict:
    return {
        "label": label,
        "preset": "default",
        "model": "mmoe",
        "threads": threads,
        "repeat": repeat,
        "samples_per_s": 1000.0,
        "samples_per_cpu_s": 900.0,
        "n_train": 100,
        "epoch_s": [0.1, 0.1],
        "peak_rss_mb": 300.0,
        "params": 1234,
        "auc": auc,
        "torch_threads": 2 if threads == "default" else int(threads),
    }


def test_every_row_shows_the_lean_loops_auc_of_its_group(bench, capsys):
    results = [
        _result("lean", "1", [0.9400, 0.9800]),
        _result("mtlkit", "1", [0.9300, 0.9700]),
        _result("lean", "default", [0.9111, 0.9222]),
        _result("mtlkit", "default", [0.9333, 0.9444]),
    ]
    bench.report(results)
    lines = capsys.readouterr().out.splitlines()
    assert "lean loop's test AUC" in lines[0]
    cells = {
        (row[2], row[3]): row
        for row in (line.split(" | ") for line in lines[2:] if line.startswith("| default"))
    }
    header = lines[0].split(" | ")
    mine, lean = header.index("test AUC income / marital"), header.index("lean loop's test AUC")
    assert cells[("1", "mtlkit")][mine] == "0.9300 / 0.9700"
    assert cells[("1", "mtlkit")][lean] == "0.9400 / 0.9800"
    # torch's default thread setting is its own group (labelled with the count torch chose)
    assert cells[("default (2)", "mtlkit")][lean] == "0.9111 / 0.9222"
    assert cells[("default (2)", "lean")][mine] == "0.9111 / 0.9222"
