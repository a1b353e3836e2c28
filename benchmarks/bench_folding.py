"""Where folding the embeddings into the first linear layer pays (``EncodedInput.folded_linear``).

Run:  .venv/bin/python benchmarks/bench_folding.py [--rounds R] [--quick]

For the 29 categorical columns of the census data (their cardinalities, padded to 52 rows
each) plus 10 numeric ones, one linear layer of ``out`` units on embeddings of ``dim``:
the time of the dense layer (embedding lookup, concatenation, matrix product) divided by
that of the folded one, for a training step (forward and backward) and for scoring
(forward, no gradients). Above 1, folding is faster. One torch thread, median of
``--rounds`` interleaved calls. The rule that decides when mtlkit folds
(``mtlkit.models.blocks.folding_pays``) is printed next to each ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone

import torch

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models import blocks
from mtlkit.models.blocks import InputEncoder
from mtlkit.training.allocator import keep_freed_memory

CENSUS_CARDS = (9, 17, 3, 52, 47, 7, 24, 15, 5, 10, 3, 3, 6, 8, 6, 6, 51, 38, 8, 10, 9, 9, 3, 3)
CENSUS_CARDS += (43, 43, 43, 5, 3)
N_NUMERIC = 10


def _layer(encoder: InputEncoder, weight, bias, x_cat, x_num, fold: bool) -> torch.Tensor:
    x = encoder.encode(x_cat, x_num)
    out = x.folded_linear(weight, bias, weight) if fold else None
    return out if out is not None else torch.addmm(bias, x.dense(), weight)


def _time(fn, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def ratio(dim: int, out: int, batch: int, train: bool, rounds: int) -> tuple[float, bool]:
    """Dense / folded time, and whether mtlkit's rule folds this layer."""
    torch.manual_seed(0)
    schema = Schema(CENSUS_CARDS, N_NUMERIC, (TaskSpec("t", "binary"),))
    encoder = InputEncoder(schema, dim)
    weight = torch.randn(encoder.output_dim, out, requires_grad=train)
    bias = torch.zeros(out, requires_grad=train)
    x_cat = torch.stack([torch.randint(0, c, (batch,)) for c in CENSUS_CARDS], 1)
    x_num = torch.randn(batch, N_NUMERIC)
    with torch.set_grad_enabled(train):
        folds = blocks.folding_pays(x_cat, dim, len(encoder.padded_rows), weight)
    rule = blocks.folding_pays
    blocks.folding_pays = lambda *args: True  # measure the folded layer even where it loses

    def step(fold: bool) -> None:
        with torch.set_grad_enabled(train):
            y = _layer(encoder, weight, bias, x_cat, x_num, fold)
            if train:
                y.sum().backward()

    try:
        for fold in (False, True):
            _time(lambda fold=fold: step(fold), 3)
        dense, folded = [], []
        for _ in range(rounds):  # interleaved
            dense += _time(lambda: step(False), 1)
            folded += _time(lambda: step(True), 1)
    finally:
        blocks.folding_pays = rule
    return statistics.median(dense) / statistics.median(folded), folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="one setting each (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    dims, outs, batches = (
        ((8,), (512,), (1024,)) if args.quick else ((4, 8, 16), (128, 512, 1024), (128, 512, 1024))
    )
    print("\n| dim | out | training: batch 128 / 512 / 1024 (dense / folded; * = folds) |")
    print("|---|---|---|")
    for dim in dims:
        for out in outs:
            cells = []
            for batch in batches:
                r, folds = ratio(dim, out, batch, True, args.rounds)
                cells.append(f"{r:.2f}{'*' if folds else ''}")
            print(f"| {dim} | {out} | {' / '.join(cells)} |", flush=True)
    print("\n| dim | out | scoring: batch 2048 (dense / folded; * = folds) |")
    print("|---|---|---|")
    for dim in dims:
        for out in outs:
            r, folds = ratio(dim, out, 2048, False, args.rounds)
            print(f"| {dim} | {out} | {r:.2f}{'*' if folds else ''} |", flush=True)
    print(f"\nload after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
