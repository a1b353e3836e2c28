"""``mtlkit compare --backend ray``: the cells a local run writes, from Ray tasks."""

from __future__ import annotations

import builtins
import json

import pytest

from mtlkit.cli.main import main
from mtlkit.evaluation.record import RunRecord

GRID = [
    "compare",
    "synthetic",
    "--rows",
    "600",
    "--epochs",
    "2",
    "--models",
    "shared_bottom",
    "--seeds",
    "0",
    "1",
    "--quiet",
]


def _values(run_dir) -> dict:
    out = {}
    for path in sorted((run_dir / "cells").glob("*.json")):
        rows = RunRecord.from_dict(json.loads(path.read_text())).rows()
        out[path.stem] = sorted((r["task"], r["split"], r["metric"], r["value"]) for r in rows)
    return out


def test_ray_tasks_give_the_cells_of_a_local_run(tmp_path, capsys):
    ray = pytest.importorskip("ray")  # pinned in requirements-lock.txt: installed in CI
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main([*GRID, "--out", str(tmp_path / "ray"), "--backend", "ray", "--jobs", "2"]) == 0
    finally:
        ray.shutdown()
    assert main([*GRID, "--out", str(tmp_path / "local")]) == 0
    on_ray, local = _values(tmp_path / "ray"), _values(tmp_path / "local")
    assert len(local) == 4 and on_ray.keys() == local.keys()
    for cell, rows in local.items():
        for (task, split, name, value), other in zip(rows, on_ray[cell]):
            assert other[:3] == (task, split, name)
            assert other[3] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), (cell, name)
    assert not list((tmp_path / "ray" / "cells").glob(".*"))  # atomic writes only
    assert (tmp_path / "ray" / "report.html").is_file()


def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main([*GRID, "--out", str(tmp_path / "r"), "--backend", "ray"]) == 2
    assert 'pip install "mtlkit[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
