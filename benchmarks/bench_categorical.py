"""Categorical features at recommender scale (issue #24, item 3).

Two measurements:

``table``: one training step of an embedding table of ``--rows`` rows (two id columns drawn
from a Zipf law, ``--dim`` wide) feeding a small MLP, with the table's gradient dense (the
lookup as mtlkit's ``InputEncoder`` does it on a CPU, ``index_select``, and Adam on every row)
or sparse (``nn.Embedding(sparse=True)``: only the looked-up rows get a gradient,
``torch.optim.SparseAdam`` for them, Adam for the MLP). Median step time and peak resident
memory, each variant in its own process.

``funnel``: a streamed click -> conversion funnel (Parquet, ``--rows`` rows) with Zipf
``user`` (``--users`` ids) and ``item`` (``--items`` ids) columns whose latent effects drive
both labels, trained by ``MultiTaskEstimator`` (MMoE) streamed, with each vocabulary setting
in its own process: samples per second of the fit, peak resident memory and test AUC.

Run:  .venv/bin/python benchmarks/bench_categorical.py table [--rows 10000 100000 1000000]
      .venv/bin/python benchmarks/bench_categorical.py funnel [--rows 1000000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import nn

# ---- table: dense vs sparse gradients -------------------------------------------------------


def zipf_ids(rng: np.random.Generator, n_ids: int, size: int, exponent: float = 1.0) -> np.ndarray:
    """``size`` draws from a Zipf law over ``n_ids`` ids (id k with probability ~ 1/(k+1)^s),
    their labels shuffled so that frequent ids are spread over the table."""
    weights = 1.0 / np.arange(1, n_ids + 1) ** exponent
    cdf = np.cumsum(weights / weights.sum())
    ranks = np.minimum(np.searchsorted(cdf, rng.random(size)), n_ids - 1)
    return rng.permutation(n_ids)[ranks]


def _step_times(rows: int, dim: int, sparse: bool, batch: int, steps: int, queue) -> None:
    """Median seconds per training step and peak RSS of one variant (in a child process)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    table = nn.Embedding(rows, dim, sparse=sparse)
    mlp = nn.Sequential(
        nn.Linear(2 * dim, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)
    )
    dense_params = list(mlp.parameters()) + ([] if sparse else [table.weight])
    optimizers = [torch.optim.Adam(dense_params, lr=1e-3, fused=True)]
    if sparse:
        optimizers.append(torch.optim.SparseAdam([table.weight], lr=1e-3))
    ids = torch.from_numpy(zipf_ids(rng, rows, (steps + 5) * batch * 2).reshape(-1, batch, 2))
    y = torch.from_numpy(rng.integers(0, 2, (batch, 1)).astype(np.float32))
    times = []
    for k in range(len(ids)):
        start = time.perf_counter()
        if sparse:
            emb = F.embedding(ids[k], table.weight, sparse=True).flatten(1)
        else:  # InputEncoder's CPU lookup
            emb = table.weight.index_select(0, ids[k].flatten()).view(batch, 2 * dim)
        loss = F.binary_cross_entropy_with_logits(mlp(emb), y)
        for p in [table.weight, *mlp.parameters()]:
            p.grad = None
        loss.backward()
        for opt in optimizers:
            opt.step()
        times.append(time.perf_counter() - start)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((statistics.median(times[5:]), peak_mib))


def run_table(args: argparse.Namespace) -> None:
    ctx = multiprocessing.get_context("spawn")
    print(
        "| table rows | dim | dense step (ms) | sparse step (ms) | sparse speed-up | "
        "dense peak RSS (MiB) | sparse peak RSS (MiB) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows in args.rows:
        result = {}
        for sparse in (False, True):
            queue = ctx.Queue()
            child = ctx.Process(
                target=_step_times, args=(rows, args.dim, sparse, args.batch, args.steps, queue)
            )
            child.start()
            result[sparse] = queue.get()
            child.join()
        (dense, dense_mem), (sparse, sparse_mem) = result[False], result[True]
        print(
            f"| {rows:,} | {args.dim} | {dense * 1e3:.2f} | {sparse * 1e3:.2f} | "
            f"{dense / sparse:.2f}x | {dense_mem:.0f} | {sparse_mem:.0f} |",
            flush=True,
        )


# ---- funnel: streamed fit, full vocabulary vs hashing ---------------------------------------


def write_funnel(folder: Path, rows: int, users: int, items: int, seed: int = 0) -> None:
    """A click -> conversion funnel in Parquet row groups of 100,000 rows, written piece by
    piece: 8 numeric features, Zipf ``user`` and ``item`` ids (integers, declared categorical)
    with normal latent effects on both steps' scores (correlated 0.5), click the top 30% of
    ``x w_c + u_c + i_c + noise``, conversion the top 30% of clicked rows by the conversion
    score; thresholds fixed from the score's distribution so pieces agree."""
    rng = np.random.default_rng(seed)
    w_click, w_conv = rng.normal(size=8) / np.sqrt(8), rng.normal(size=8) / np.sqrt(8)
    user_c, item_c = rng.normal(0, 1.0, users), rng.normal(0, 1.0, items)
    user_v = 0.5 * user_c + np.sqrt(0.75) * rng.normal(0, 1.0, users)
    item_v = 0.5 * item_c + np.sqrt(0.75) * rng.normal(0, 1.0, items)
    folder.mkdir(parents=True, exist_ok=True)
    piece = 1_000_000
    click_t = conv_t = None
    for start in range(0, rows, piece):
        n = min(piece, rows - start)
        x = rng.normal(size=(n, 8)).astype(np.float32)
        u, i = zipf_ids(rng, users, n, 1.05), zipf_ids(rng, items, n, 1.05)
        s_click = x @ w_click + user_c[u] + item_c[i] + rng.normal(0, 1.0, n)
        s_conv = x @ w_conv + user_v[u] + item_v[i] + rng.normal(0, 1.0, n)
        if click_t is None:  # the first piece fixes the thresholds
            click_t = np.quantile(s_click, 0.7)
            conv_t = np.quantile(s_conv[s_click > click_t], 0.7)
        click = s_click > click_t
        columns = {f"x{k}": x[:, k] for k in range(8)}
        columns |= {"user": u, "item": i, "click": click.astype(np.int8)}
        columns["conversion"] = (click & (s_conv > conv_t)).astype(np.int8)
        pq.write_table(
            pa.table(columns), folder / f"part-{start // piece:04d}.parquet", row_group_size=100_000
        )


def _fit_funnel(folder: str, settings: dict, epochs: int, queue) -> None:
    """Stream-fit MMoE with ``settings`` on one torch thread (the machine is shared); report
    samples/s, peak RSS and test AUC."""
    import warnings

    from mtlkit.data.stream_split import split_stream
    from mtlkit.data.streaming_table import stream_tables
    from mtlkit.training.estimator import MultiTaskEstimator

    torch.set_num_threads(1)
    settings = dict(settings)

    kinds = {"user": "categorical", "item": "categorical"}
    table = stream_tables(folder, ["click", "conversion"], feature_kinds=kinds)
    train, val, test = split_stream(table, (0.8, 0.1, 0.1), seed=0)
    est = MultiTaskEstimator(
        "mmoe",
        feature_kinds=kinds,
        epochs=epochs,
        batch_size=1024,
        patience=0,
        progress=False,
        diagnostic_batches=0,
        embedding_dim=8,
        **settings,
    )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(train, validation=val)
    total = time.perf_counter() - start
    train_time = sum(e.time_s for e in est.history_.epochs)  # epochs with validation
    n_train = sum(e.steps for e in est.history_.epochs) * 1024  # about: last batch smaller
    metrics = est.evaluate(test)
    queue.put(
        {
            "cards": est.schema_.cat_cardinalities,
            "sparse": est.model_.encoder.sparse_gradients,
            "fit_s": total,
            "samples_per_s": n_train / train_time,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "auc": (metrics["click"]["roc_auc"], metrics["conversion"]["roc_auc"]),
            "warnings": [str(w.message)[:160] for w in caught if "hashed" in str(w.message)],
        }
    )


def run_funnel(args: argparse.Namespace) -> None:
    variants = {
        "full vocabulary (max_categories=2,000,000), dense gradients": {
            "max_categories": 2_000_000
        },
        "full vocabulary, sparse gradients (sparse_embeddings=True)": {
            "max_categories": 2_000_000,
            "sparse_embeddings": True,
        },
        "default (max_categories=100,000: user hashed, auto buckets)": {},
        "old default (max_categories=1,000, hash_buckets=1,024)": {
            "max_categories": 1_000,
            "hash_buckets": 1_024,
        },
    }
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data or tmp) / f"funnel-{args.rows}"
        if not folder.exists():
            start = time.perf_counter()
            write_funnel(folder, args.rows, args.users, args.items)
            print(f"wrote {args.rows:,} rows in {time.perf_counter() - start:.0f} s", flush=True)
        print(
            "| setting | table rows (user, item) | sparse gradients | fit s | samples/s | "
            "peak RSS (MiB) | click AUC | conversion AUC |"
        )
        print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
        chosen = [list(variants)[k - 1] for k in args.variants or range(1, len(variants) + 1)]
        for name in chosen:
            settings = variants[name]
            queue = ctx.Queue()
            child = ctx.Process(
                target=_fit_funnel, args=(str(folder), settings, args.epochs, queue)
            )
            child.start()
            r = queue.get()
            child.join()
            cards = ", ".join(f"{c:,}" for c in r["cards"])
            print(
                f"| {name} | {cards} | {'yes' if r['sparse'] else 'no'} | {r['fit_s']:.0f} | {r['samples_per_s']:,.0f} | "
                f"{r['peak_mib']:,.0f} | {r['auc'][0]:.4f} | {r['auc'][1]:.4f} |",
                flush=True,
            )
            for message in r["warnings"]:
                print(f"    warning: {message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    table = sub.add_parser("table", help="dense vs sparse embedding gradients")
    table.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    table.add_argument("--dim", type=int, default=8)
    table.add_argument("--batch", type=int, default=1024)
    table.add_argument("--steps", type=int, default=60)
    funnel = sub.add_parser("funnel", help="a streamed funnel: full vocabulary vs hashing")
    funnel.add_argument("--rows", type=int, default=1_000_000)
    funnel.add_argument("--users", type=int, default=1_000_000)
    funnel.add_argument("--items", type=int, default=100_000)
    funnel.add_argument("--epochs", type=int, default=1)
    funnel.add_argument("--data", help="a folder to keep the generated Parquet data in")
    funnel.add_argument(
        "--variants", type=int, nargs="+", help="which settings to run (numbers from 1; all)"
    )
    args = parser.parse_args()
    print(
        f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    run_table(args) if args.what == "table" else run_funnel(args)


if __name__ == "__main__":
    main()
