"""Foundation benchmarks: CSV loading rows/s and training samples/s of the first three models.

Run:  .venv/bin/python benchmarks/bench_foundation.py [--census PATH] [--rows N] [--epochs E]

Prints one line per figure. Training uses the census file when present (tasks income and
marital; its categorical columns as embeddings of dim 4 plus 7 numeric, 70% of rows for
training); otherwise a synthetic table of the same shape.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtlkit import datasets
from mtlkit.data.features import Preprocessor
from mtlkit.data.loading import load_tables
from mtlkit.data.splits import split_table
from mtlkit.models import create
from mtlkit.training.settings import TrainConfig
from mtlkit.training.trainer import Trainer

CENSUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "census-income.test.gz"


def bench_loading(n_rows: int) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.standard_normal((n_rows, 26)).round(5), columns=[f"x{i}" for i in range(26)]
    )
    frame["c0"] = rng.integers(0, 50, n_rows)
    frame["c1"] = rng.choice(["a", "b", "c", "d"], n_rows)
    frame["y0"] = rng.integers(0, 2, n_rows)
    frame["y1"] = rng.integers(0, 2, n_rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        frame.to_csv(path, index=False)
        start = time.perf_counter()
        table = load_tables(path, labels=["y0", "y1"])
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        Preprocessor().fit_transform(table)
        prep_s = time.perf_counter() - start
    print(
        f"load_tables  {n_rows:,} rows x 30 columns CSV: {n_rows / load_s:,.0f} rows/s ({load_s:.2f} s)"
    )
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
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, python {platform.python_version()}"
    )
    bench_loading(args.rows)
    bench_training(*census_splits(args.census), args.epochs)


if __name__ == "__main__":
    main()
