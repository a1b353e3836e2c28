"""Streaming tables: one-pass preprocessor fit, batch iteration and MMoE training (through the
real ``Trainer``) from a Parquet dataset, side by side with the in-memory path on a slice that
fits.

Run:  .venv/bin/python benchmarks/bench_streaming.py [--rows 20000000] [--slice-rows 2000000]

Writes its own data: a ``--rows`` x 40-column Parquet dataset (32 float32 features, 8% of one
missing; 4 integer and 2 string categorical features, one of them with 5,000 values, hence
hashed; 2 binary labels, the second one missing on half of the rows), one file per 1M rows in
row groups of 65,536 rows, in ``--dir`` (a temporary folder by default, deleted afterwards).

Every measurement runs in its own process, so each peak RSS (``ru_maxrss``) is its own:

- epoch: ``fit_preprocessor`` over all rows (rows/s), then one shuffled epoch of MMoE over all
  rows from ``StreamingData`` with ``Trainer.fit`` (samples/s, peak RSS);
- then ``--repeats`` times, alternating: memory (``load_tables`` + ``Preprocessor``
  fit/transform of the first ``--slice-rows`` rows) and stream (``StreamingData`` of the same
  files, shuffled through the buffer): one epoch of batches without a model (rows/s), then one
  ``Trainer.fit`` epoch of MMoE (samples/s; its validation pass is the same 20,000 rows in
  both). Same model, batch size, torch threads.

The ratio of the median training speeds is the figure to compare (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.stream_fit import fit_preprocessor
from mtlkit.data.streaming_data import StreamingData
from mtlkit.data.streaming_table import stream_tables
from mtlkit.data.tensors import Batch, TensorData
from mtlkit.models import create
from mtlkit.training.settings import TrainConfig
from mtlkit.training.trainer import Trainer

LABELS = ["click", "buy"]
FILE_ROWS = 1_000_000
GROUP_ROWS = 65_536


def generate(folder: Path, rows: int) -> None:
    """``rows`` rows in files of ``FILE_ROWS`` rows; labels depend on a few features."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, start in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - start)
        rng = np.random.default_rng(index)
        x = rng.standard_normal((n, 32), dtype=np.float32)
        columns = {f"x{i}": x[:, i] for i in range(32)}
        columns["x0"] = np.where(rng.random(n) < 0.08, np.nan, x[:, 0]).astype(np.float32)
        for i, card in enumerate((4, 10, 15, 20)):
            columns[f"k{i}"] = rng.integers(0, card, n, dtype=np.int32)
        columns["city"] = np.array([f"city{i}" for i in range(50)])[rng.integers(0, 50, n)]
        columns["item"] = np.array([f"item{i}" for i in range(5000)])[rng.integers(0, 5000, n)]
        logit = x[:, 1] + 0.5 * x[:, 2] + (columns["k0"] == 1)
        click = rng.random(n) < 1 / (1 + np.exp(-logit))
        buy = np.where(rng.random(n) < 0.5, np.nan, (rng.random(n) < 0.3) & click)
        columns |= {"click": click.astype(np.int8), "buy": pa.array(buy, from_pandas=True)}
        table = pa.table(columns)
        pq.write_table(table, folder / f"part-{index:05d}.parquet", row_group_size=GROUP_ROWS)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def validation(folder: Path, prep: Preprocessor) -> TensorData:
    """The same 20,000 rows of the last file for every phase (a small validation pass)."""
    last = sorted(folder.glob("*.parquet"))[-1]
    frame = pq.read_table(last).slice(0, 20_000).to_pandas()
    return prep.transform(load_tables(frame, LABELS))


def train(data: TensorData | StreamingData, val: TensorData, schema, batch_size: int) -> float:
    """One epoch of MMoE through the real trainer (its lazy steps, one validation pass);
    returns the training rows per second of wall time."""
    torch.manual_seed(0)
    model = create("mmoe", schema, embedding_dim=4, n_experts=8, expert_hidden=(16,))
    config = TrainConfig(
        epochs=1, batch_size=batch_size, progress=False, diagnostic_batches=0, patience=0
    )
    start = time.perf_counter()
    Trainer(model, config).fit(data, val)
    return len(data) / (time.perf_counter() - start)


def iterate(batches: Iterable[Batch], max_rows: int) -> float:
    """Rows/s of taking ``max_rows`` rows of batches, without a model."""
    seen, start = 0, time.perf_counter()
    for batch in batches:
        seen += len(batch)
        if seen >= max_rows:
            break
    return seen / (time.perf_counter() - start)


def phase_epoch(folder: Path, args: argparse.Namespace) -> dict:
    table = stream_tables(folder, LABELS)
    start = time.perf_counter()
    prep = fit_preprocessor(table)
    fit_s = time.perf_counter() - start
    prep.save(folder / "preprocessor.json")
    data = StreamingData(table, prep, buffer_rows=args.buffer_rows)
    samples_s = train(data, validation(folder, prep), prep.schema(), args.batch_size)
    return {
        "rows": table.num_rows,
        "fit_rows_s": table.num_rows / fit_s,
        "train_samples_s": samples_s,
        "peak_held_rows": data.peak_rows,
        "peak_rss_gb": peak_rss_gb(),
    }


def slice_files(folder: Path, args: argparse.Namespace) -> list[Path]:
    return sorted(folder.glob("*.parquet"))[: max(1, args.slice_rows // FILE_ROWS)]


def phase_stream(folder: Path, args: argparse.Namespace) -> dict:
    """The slice's rows, streamed (shuffled through the buffer)."""
    prep = Preprocessor.load(folder / "preprocessor.json")
    data = StreamingData(
        stream_tables(slice_files(folder, args), LABELS), prep, buffer_rows=args.buffer_rows
    )
    generator = torch.Generator().manual_seed(1)
    iterate_s = iterate(data.batches(args.batch_size, True, generator), len(data))
    samples_s = train(data, validation(folder, prep), prep.schema(), args.batch_size)
    return {"iterate_rows_s": iterate_s, "train_samples_s": samples_s, "peak_rss_gb": peak_rss_gb()}


def phase_memory(folder: Path, args: argparse.Namespace) -> dict:
    files = slice_files(folder, args)
    start = time.perf_counter()
    table = load_tables(files, LABELS)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    prep = Preprocessor().fit(table)
    data = prep.transform(table)
    prep_s = time.perf_counter() - start
    generator = torch.Generator().manual_seed(1)
    iterate_s = iterate(data.batches(args.batch_size, True, generator), len(data))
    samples_s = train(data, validation(folder, prep), prep.schema(), args.batch_size)
    return {
        "rows": len(table),
        "load_rows_s": len(table) / load_s,
        "fit_transform_rows_s": len(table) / prep_s,
        "iterate_rows_s": iterate_s,
        "train_samples_s": samples_s,
        "peak_rss_gb": peak_rss_gb(),
    }


def run_phase(name: str, folder: Path, args: argparse.Namespace) -> dict:
    """``name`` in a fresh process (its own peak RSS); returns its figures."""
    command = [sys.executable, __file__, "--phase", name, "--dir", str(folder)]
    for option in ("slice_rows", "batch_size", "buffer_rows", "threads"):
        command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="rows of the dataset")
    parser.add_argument("--slice-rows", type=int, default=2_000_000, help="in-memory slice")
    parser.add_argument("--repeats", type=int, default=3, help="memory/stream measurements")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--buffer-rows", type=int, default=250_000, help="shuffle buffer")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--dir", type=Path, default=None, help="data folder (kept if given)")
    parser.add_argument("--phase", choices=["epoch", "stream", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.phase:
        phase = {"epoch": phase_epoch, "stream": phase_stream, "memory": phase_memory}
        print(json.dumps(phase[args.phase](args.dir, args)))
        return
    folder = args.dir or Path(tempfile.mkdtemp(prefix="mtlkit-bench-streaming-"))
    try:
        start = time.perf_counter()
        if not any(folder.glob("*.parquet")):
            generate(folder, args.rows)
        size = sum(p.stat().st_size for p in folder.glob("*.parquet")) / 2**30
        print(
            f"machine: {platform.machine()}, torch {torch.__version__} ({args.threads} threads), "
            f"python {platform.python_version()}; data: {args.rows:,} rows x 40 columns, "
            f"{size:.2f} GiB Parquet (written in {time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        epoch = run_phase("epoch", folder, args)
        print(f"epoch   {epoch}", flush=True)
        runs = []
        for _ in range(args.repeats):
            runs.append((run_phase("memory", folder, args), run_phase("stream", folder, args)))
            print(f"memory  {runs[-1][0]}\nstream  {runs[-1][1]}", flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    report(args, epoch, runs)


def report(args: argparse.Namespace, epoch: dict, runs: list[tuple[dict, dict]]) -> None:
    memory = {k: statistics.median(m[k] for m, _ in runs) for k in runs[0][0]}
    stream = {k: statistics.median(s[k] for _, s in runs) for k in runs[0][1]}
    ratios = [s["train_samples_s"] / m["train_samples_s"] for m, s in runs]
    print(
        f"== medians of {len(runs)} alternating runs; {args.rows:,} rows, slice {memory['rows']:,.0f}"
    )
    print(
        f"preprocessor: streaming fit {epoch['fit_rows_s']:,.0f} rows/s (one pass over all rows); "
        f"in memory load {memory['load_rows_s']:,.0f} + fit/transform "
        f"{memory['fit_transform_rows_s']:,.0f} rows/s (slice)"
    )
    print(
        f"batches without a model: streaming {stream['iterate_rows_s']:,.0f} rows/s, "
        f"in memory {memory['iterate_rows_s']:,.0f} rows/s"
    )
    print(
        f"MMoE training (Trainer, one epoch), batch {args.batch_size}, the slice's "
        f"{memory['rows']:,.0f} rows: streaming "
        f"{stream['train_samples_s']:,.0f} vs in memory {memory['train_samples_s']:,.0f} "
        f"samples/s: {stream['train_samples_s'] / memory['train_samples_s']:.2f}x "
        f"(per run: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(
        f"one streamed epoch over all {epoch['rows']:,} rows: {epoch['train_samples_s']:,.0f} "
        f"samples/s, peak RSS {epoch['peak_rss_gb']:.2f} GB (buffer {args.buffer_rows:,} rows, "
        f"at most {epoch['peak_held_rows']:,} encoded rows held)"
    )
    print(
        f"peak RSS: streaming {max(s['peak_rss_gb'] for _, s in runs):.2f} GB, in memory "
        f"{max(m['peak_rss_gb'] for m, _ in runs):.2f} GB ({memory['rows']:,.0f} rows)"
    )


if __name__ == "__main__":
    main()
