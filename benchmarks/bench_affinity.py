"""Cost of measuring task affinity (``mtlkit affinity``) next to an ordinary training run.

Run:  .venv/bin/python benchmarks/bench_affinity.py [--rows 20000] [--epochs 3] [--tasks 4 8 16]

For each task count N: synthetic data with two planted groups of N/2 tasks
(:func:`~mtlkit.data.synthetic.make_grouped_synthetic`), then the wall time of
:func:`~mtlkit.affinity.measure_affinity` (one seed: the probed joint training and the group
search) and of an ordinary ``MultiTaskEstimator`` fit of the same model for the same epochs
and batch size (on 85% of the rows, the other 15% validating each epoch; the trainer's default
diagnostics; no early stopping);
prints both and their ratio, the groups found (number of groups chosen from the affinity),
whether the best partition into two groups is the planted one, and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from mtlkit.affinity import best_partition, measure_affinity
from mtlkit.affinity.defaults import DEFAULT_PROBES
from mtlkit.data.loading import load_tables
from mtlkit.data.synthetic import make_grouped_synthetic
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.settings import auto_batch_size


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tasks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{args.rows} rows, shared_bottom, {args.epochs} epochs, {DEFAULT_PROBES} probed steps "
        f"per epoch, {args.threads} thread(s); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    warm = load_tables(
        make_grouped_synthetic(300, groups=(1, 1), n_features=4), ["label0", "label1"]
    )
    measure_affinity(warm, epochs=1)  # one-time imports (torch's compiler, by Adam) not timed
    MultiTaskEstimator("shared_bottom", epochs=1, progress=False).fit(warm)
    print(f"{'tasks':>5} {'affinity s':>11} {'training s':>11} {'ratio':>6}  groups | K=2 planted?")
    for n in args.tasks:
        labels = [f"label{k}" for k in range(n)]
        frame = make_grouped_synthetic(
            args.rows, groups=(n // 2, n - n // 2), n_features=max(20, n + 4), seed=0
        )
        table = load_tables(frame, labels)
        batch = auto_batch_size(len(table))
        start = time.perf_counter()
        result = measure_affinity(table, seeds=[0], epochs=args.epochs, batch_size=batch)
        affinity = time.perf_counter() - start
        est = MultiTaskEstimator(
            "shared_bottom", epochs=args.epochs, patience=0, batch_size=batch, progress=False
        )
        start = time.perf_counter()
        est.fit(table)
        training = time.perf_counter() - start
        shown = " | ".join(",".join(t.removeprefix("label") for t in g) for g in result.groups)
        two = sorted(sorted(g) for g in best_partition(result.matrix, 2))
        planted = two == [list(range(n // 2)), list(range(n // 2, n))]
        print(
            f"{n:>5} {affinity:>11.2f} {training:>11.2f} {affinity / training:>6.2f}  {shown}"
            f" | {'yes' if planted else 'no'}"
        )


if __name__ == "__main__":
    run()
