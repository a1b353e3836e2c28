"""What the reliability checks of issue #15 cost: model folders, resume scans, YAML bombs.

Run:  .venv/bin/python benchmarks/bench_reliability.py [--rounds R]

1. ``MultiTaskEstimator.save`` + ``load`` of an MMoE (8 experts of 64, or 512 and 256 units;
   100 numeric features): the atomic, checksummed folder and its verified loading, against
   what save and load did before issue #15 (the same files written in place, loaded without
   checksum, shape or value checks), interleaved, median of ``--rounds``.
2. Resuming a grid reads every finished cell file to check it (``pending_cells``): the time
   per cell for the cells of a small finished grid, against only testing that each exists.
3. A "billion laughs" YAML config (9 and 12 levels of 9 nested aliases): the time and peak
   Python memory (tracemalloc) until it is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtlkit.cli.compare import execute
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.schema import Schema
from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import History
from mtlkit.experiments.cells import cell_path, grid_cells, pending_cells
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.config_files import load_config_file
from mtlkit.files import atomic_write_json
from mtlkit.models import create
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.state import save_torch


def _median_time(call, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_folders(rounds: int, tmp: Path, hidden: list[int]) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, 100)), columns=[f"x{i}" for i in range(100)])
    frame["a"] = (frame["x0"] > 0).astype(int)
    frame["b"] = (frame["x1"] > 0).astype(int)
    est = MultiTaskEstimator(
        "mmoe", labels=["a", "b"], n_experts=8, expert_hidden=hidden, epochs=1, progress=False
    ).fit(frame)

    def unchecked_save(folder: Path) -> None:  # what save did before: files written in place
        folder.mkdir(exist_ok=True)
        est.preprocessor_.save(folder / "preprocessor.json")
        save_torch(folder / "model.pt", est.model_.state_dict())
        meta = {"params": est.get_params(), "schema": est.schema_.to_dict()}
        atomic_write_json(folder / "estimator.json", json.loads(json.dumps(meta, default=list)))
        atomic_write_json(folder / "history.json", est.history_.to_dict(), indent=None)

    def unchecked_load(folder: Path) -> None:  # and load: no checksum, shape or value check
        meta = json.loads((folder / "estimator.json").read_text())
        Preprocessor.load(folder / "preprocessor.json")
        model = create("mmoe", Schema.from_dict(meta["schema"]), n_experts=8, expert_hidden=hidden)
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        History.from_dict(json.loads((folder / "history.json").read_text()))

    checked, unchecked = [], []
    for _ in range(rounds):  # interleaved: the machine's load hits both alike
        checked.append(_median_time(lambda: MultiTaskEstimator.load(est.save(tmp / "c")), 1))
        unchecked.append(
            _median_time(lambda: (unchecked_save(tmp / "u"), unchecked_load(tmp / "u")), 1)
        )
    size = sum(p.stat().st_size for p in (tmp / "c").iterdir())
    a, b = statistics.median(checked), statistics.median(unchecked)
    print(
        f"model folder, experts {hidden} ({size / 1e6:.2f} MB): save+load atomic and checked "
        f"{a * 1e3:.1f} ms, in place and unchecked {b * 1e3:.1f} ms, ratio {a / b:.2f}"
    )


def resume_scan(rounds: int, tmp: Path) -> None:
    values = {
        "data": "synthetic",
        "models": ["shared_bottom", "mmoe"],
        "seeds": [0, 1, 2],
        "n_rows": 3000,
        "epochs": 2,
    }
    config = CompareConfig.from_mapping(values)
    with contextlib.redirect_stdout(io.StringIO()):  # the grid's own summary
        run = execute(config, tmp / "run", progress=False)
    cells = grid_cells(config)
    sizes = [cell_path(run, c).stat().st_size for c in cells]
    scan = _median_time(lambda: pending_cells(run, cells, config.train.epochs), rounds)
    exist = _median_time(lambda: [cell_path(run, c).is_file() for c in cells], rounds)
    print(
        f"resume scan of {len(cells)} cells ({np.mean(sizes) / 1e3:.0f} kB each): "
        f"{scan / len(cells) * 1e3:.2f} ms per cell read and checked, "
        f"{exist / len(cells) * 1e6:.1f} us per cell only tested to exist"
    )


def yaml_bombs(tmp: Path) -> None:
    for levels in (9, 12):
        lines = ["data: synthetic", "models: [mmoe]", "a: &a [" + ",".join(['"lol"'] * 9) + "]"]
        for k in range(1, levels):
            prev, name = chr(96 + k), chr(97 + k)
            lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        path = tmp / f"bomb{levels}.yaml"
        path.write_text("\n".join(lines) + "\n")
        tracemalloc.start()
        start = time.perf_counter()
        try:
            load_config_file(path)
        except ConfigError as err:
            message = str(err)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"YAML bomb, {levels} levels ({path.stat().st_size} bytes, 9^{levels} values): "
            f"refused in {seconds * 1e3:.1f} ms, peak {peak / 1e6:.2f} MB, "
            f"message {len(message)} characters"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    tmp = Path(tempfile.mkdtemp())
    try:
        for hidden in ([64], [512, 256]):
            model_folders(args.rounds, tmp, hidden)
        resume_scan(args.rounds, tmp)
        yaml_bombs(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
