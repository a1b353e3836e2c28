"""``mtlkit compare --backend ray``: the cells a local run writes, from Ray tasks."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

from mtlkit.cli.main import main
from mtlkit.evaluation.run_record import RunRecord

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


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs) for the tests of this module: its start-up is paid once."""
    ray = pytest.importorskip("ray")  # pinned in requirements-lock.txt: installed in CI
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_tasks_give_the_cells_of_a_local_run(tmp_path, capsys, local_ray):
    assert main([*GRID, "--out", str(tmp_path / "ray"), "--backend", "ray", "--jobs", "2"]) == 0
    assert main([*GRID, "--out", str(tmp_path / "local")]) == 0
    on_ray, local = _values(tmp_path / "ray"), _values(tmp_path / "local")
    assert len(local) == 4 and on_ray.keys() == local.keys()
    for cell, rows in local.items():
        for (task, split, name, value), other in zip(rows, on_ray[cell]):
            assert other[:3] == (task, split, name)
            assert other[3] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), (cell, name)
    assert not list((tmp_path / "ray" / "cells").glob(".*"))  # atomic writes only
    assert (tmp_path / "ray" / "report.html").is_file()


def _on_ray(args: list[str]) -> int:
    return main([*args, "--backend", "ray", "--quiet"])


def _data_file(folder: Path) -> Path:
    from mtlkit.data.synthetic import make_synthetic

    path = folder / "data.csv"
    make_synthetic(300, n_features=4, seed=0).to_csv(path, index=False)
    return path


def _files_grid(path: Path, out: Path, *extra: str) -> list[str]:
    labels = ["--labels", "label0", "label1", "--epochs", "1", "--models", "shared_bottom"]
    return ["compare", str(path), *labels, "--seeds", "0", "1", "--out", str(out), *extra]


def test_tuning_studies_run_on_ray_with_backend_ray(tmp_path, monkeypatch, capsys, local_ray):
    # Bug 2: 'compare --tune N --backend ray' ran the studies in local processes (with
    # --jobs 1: in the driver itself, where a study now fails).
    from mtlkit.experiments import grid

    def not_here(*args, **kwargs):
        raise AssertionError("a tuning study ran in the driver, not on Ray")

    monkeypatch.setattr(grid, "run_study", not_here)
    out = tmp_path / "run"
    args = _files_grid(_data_file(tmp_path), out, "--tune", "2", "--jobs", "1")
    assert _on_ray(args) == 0, capsys.readouterr().err
    assert len(list((out / "tuning").glob("*.json"))) == 2  # single_task and shared_bottom
    assert len(list((out / "cells").glob("*.json"))) == 4


def test_on_ray_the_driver_loads_the_data_once_and_writes_every_cell(
    tmp_path, monkeypatch, capsys, local_ray
):
    # Bug 3 (docs/scaling.md): the driver loads the splits once into the object store and
    # writes each cell; the tasks loaded the data and wrote their cells themselves. The file
    # goes once read: a task reading it again fails.
    from mtlkit.experiments import data as experiment_data
    from mtlkit.experiments import grid

    path = _data_file(tmp_path)
    load, write = experiment_data.load_tables, grid.atomic_write_json
    written = []

    def load_then_delete(*args, **kwargs):
        table = load(*args, **kwargs)
        path.unlink()
        return table

    def recorded(target, *args, **kwargs):
        written.append(Path(target))
        return write(target, *args, **kwargs)

    monkeypatch.setattr(experiment_data, "load_tables", load_then_delete)
    monkeypatch.setattr(grid, "atomic_write_json", recorded)
    out = tmp_path / "run"
    assert _on_ray(_files_grid(path, out, "--jobs", "2")) == 0, capsys.readouterr().err
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == 4 and set(cells) <= set(written)


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
