"""Foundation benchmarks: CSV loading rows/s and training samples/s of the first three models.

Run:  .venv/bin/python benchmarks/bench_foundation.py [--census PATH] [--rows N] [--epochs E]
      [--loading-only] [--repeats R] [--against SRC]

Prints one line per figure. Training uses the census file when present (tasks income and
marital; its categorical columns as embeddings of dim 4 plus 7 numeric, 70% of rows for
training); otherwise a synthetic table of the same shape. ``--repeats`` times ``load_tables``
R times (best and median kept); ``--against SRC`` also times the ``load_tables`` of the mtlkit
package under the folder SRC (e.g. main's ``src``, from ``git archive main src``), interleaved
with this one in the same process on the same file, and prints the ratio.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtlkit import datasets
from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.splits import split_table
from mtlkit.models import create
from mtlkit.training.settings import TrainConfig
from mtlkit.training.trainer import Trainer

CENSUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "census-income.test.gz"


def _write_csv(path: Path, n_rows: int) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.standard_normal((n_rows, 26)).round(5), columns=[f"x{i}" for i in range(26)]
    )
    frame["c0"] = rng.integers(0, 50, n_rows)
    frame["c1"] = rng.choice(["a", "b", "c", "d"], n_rows)
    frame["y0"] = rng.integers(0, 2, n_rows)
    frame["y1"] = rng.integers(0, 2, n_rows)
    frame.to_csv(path, index=False)


def _other_load_tables(src: Path):
    """``load_tables`` of the mtlkit package under ``src``, imported beside this one."""
    ours = {k: m for k, m in sys.modules.items() if k == "mtlkit" or k.startswith("mtlkit.")}
    for name in ours:
        del sys.modules[name]
    sys.path.insert(0, str(src))
    try:
        other = importlib.import_module("mtlkit.data.loading")
    finally:
        sys.path.remove(str(src))
        for name in [k for k in sys.modules if k == "mtlkit" or k.startswith("mtlkit.")]:
            del sys.modules[name]
        sys.modules.update(ours)
    return other.load_tables


def _timed(load, path: Path) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of one load."""
    wall, cpu = time.perf_counter(), time.process_time()
    load(path, labels=["y0", "y1"])
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_loading(n_rows: int, repeats: int, against: Path | None) -> None:
    loaders = {"load_tables": load_tables}
    if against is not None:
        loaders[f"load_tables of {against}"] = _other_load_tables(against)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in loaders}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        _write_csv(path, n_rows)
        for load in loaders.values():  # warm-up: file cache, thread pools
            load(path, labels=["y0", "y1"])
        for repeat in range(repeats):  # interleaved, in alternating order: same machine load
            for name in list(loaders)[:: -1 if repeat % 2 else 1]:
                times[name].append(_timed(loaders[name], path))
        table = load_tables(path, labels=["y0", "y1"])
        start = time.perf_counter()
        Preprocessor().fit_transform(table)
        prep_s = time.perf_counter() - start
    for name, secs in times.items():
        wall, cpu = np.array(secs).T
        print(
            f"{name}  {n_rows:,} rows x 30 columns CSV: {n_rows / wall.min():,.0f} rows/s "
            f"(best {wall.min():.3f} s, median {np.median(wall):.3f} s of {repeats}; "
            f"CPU best {cpu.min():.3f} s, median {np.median(cpu):.3f} s)"
        )
    if against is not None:
        ours, theirs = (np.array(t) for t in times.values())
        ratios = ", ".join(
            f"{what} best {ours[:, i].min() / theirs[:, i].min():.3f}, median of the side-by-side "
            f"ratios {np.median(ours[:, i] / theirs[:, i]):.3f}"
            for i, what in enumerate(("wall", "CPU"))
        )
        print(f"load_tables time / that of {against}: {ratios}")
    print(
        f"Preprocessor fit+transform {n_rows:,} rows: {n_rows / prep_s:,.0f} rows/s ({prep_s:.2f} s)"
    )


def census_splits(census: Path | None):
    """70/15/15 splits of the census file (tasks income, marital), or of a synthetic table of
    the same shape when the file is absent."""
    if census is not None and census.is_file():
        table = datasets.load("census-income", path=census, group=1)
        return split_table(table, (0.7, 0.15, 0.15), seed=0), f"census-income ({census.name})"
    rng = np.random.default_rng(0)
    n = 99_762
    cards = rng.integers(3, 60, 32)
    frame = pd.DataFrame({f"c{i}": rng.integers(0, c, n).astype(str) for i, c in enumerate(cards)})
    for i in range(7):
        frame[f"n{i}"] = rng.standard_normal(n)
    frame["income"] = (frame["n0"] + rng.standard_normal(n) > 0).astype(int)
    frame["marital"] = (frame["n1"] + rng.standard_normal(n) > 0).astype(int)
    table = load_tables(frame, labels=["income", "marital"])
    return split_table(table, (0.7, 0.15, 0.15), seed=0), "synthetic census-shaped"


def bench_training(splits, source: str, epochs: int) -> None:
    train, val, _ = splits
    pre = Preprocessor().fit(train)
    train_t, val_t = pre.transform(train), pre.transform(val)
    schema = pre.schema()
    print(
        f"training data: {source}, {len(train):,} train rows, {len(schema.cat_cardinalities)} categorical + {schema.n_numeric} numeric inputs"
    )
    hp = {
        "single_task": {"hidden": (16, 8)},
        "shared_bottom": {"bottom_hidden": (16,), "tower_hidden": (8,)},
        "mmoe": {"n_experts": 8, "expert_hidden": (16,), "tower_hidden": (8,)},
    }
    # Warm-up: the first training in a process pays one-off costs (thread pools, allocator).
    Trainer(create("mmoe", schema), TrainConfig(epochs=1, patience=0, progress=False)).fit(
        train_t, val_t
    )
    for name, params in hp.items():
        torch.manual_seed(0)
        model = create(name, schema, embedding_dim=4, **params)
        cfg = TrainConfig(epochs=epochs, batch_size=1024, patience=0, progress=False)
        start = time.perf_counter()
        Trainer(model, cfg).fit(train_t, val_t)
        secs = time.perf_counter() - start
        print(
            f"train {name:<13} batch 1024, {epochs} epochs (+1 val pass each): {len(train) * epochs / secs:,.0f} samples/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the CSV loading test")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per training measurement")
    parser.add_argument("--census", type=Path, default=CENSUS, help="census-income.test.gz path")
    parser.add_argument("--loading-only", action="store_true", help="skip the training figures")
    parser.add_argument("--repeats", type=int, default=1, help="load_tables timings (best kept)")
    parser.add_argument("--against", type=Path, help="another mtlkit src folder to time too")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, python {platform.python_version()}"
    )
    bench_loading(args.rows, args.repeats, args.against)
    if not args.loading_only:
        bench_training(*census_splits(args.census), args.epochs)


if __name__ == "__main__":
    main()
