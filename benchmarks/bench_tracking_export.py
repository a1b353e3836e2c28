"""Tracking overhead on a small compare grid, export time, and ONNX vs PyTorch scoring speed.

Run:  .venv/bin/python benchmarks/bench_tracking_export.py [--rounds R] [--rows N]

1. The same grid (synthetic, correlation 0.9, single_task + shared_bottom + mmoe, seeds 0 1,
   --jobs 1) run without tracking, with --track mlflow (./mlruns file store) and with --track
   tensorboard, interleaved for ``--rounds`` rounds in one process (the backends imported
   once beforehand); prints each wall time and the ratios to the untracked run. On a busy
   machine that ratio is within the noise, so the cost of logging one finished cell (the
   model folder saved and logged, the history, the settings) is also timed alone, for every
   cell of the untracked grid, next to the cell's training time.
2. An MMoE (8 experts) trained briefly on a 20-numeric + 4-categorical table, exported as
   ONNX and TorchScript (wall time of ``export_model``, the check against PyTorch included),
   then scoring ``--predict-rows`` encoded rows with one thread each: the PyTorch path of
   ``predict_proba`` (``Trainer.predict_scores``) vs onnxruntime, median of 5, interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mtlkit.cli.compare import execute
from mtlkit.data.loading import load_tables
from mtlkit.data.synthetic import make_synthetic
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments.cells import grid_cells
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.grid_tracking import CellTracking
from mtlkit.export import export_model
from mtlkit.tracking import make_tracker
from mtlkit.training.estimator import MultiTaskEstimator


def bench_tracking(rounds: int, rows: int, epochs: int, folder: Path) -> None:
    config = CompareConfig.from_mapping(
        {
            "data": ["synthetic"],
            "correlations": [0.9],
            "models": ["single_task", "shared_bottom", "mmoe"],
            "seeds": [0, 1],
            "n_rows": rows,
            "epochs": epochs,
        }
    )
    os.chdir(folder)
    for track in ("mlflow", "tensorboard"):
        make_tracker(track)  # import the backend once, outside the timings
    times: dict[str, list[float]] = {"none": [], "mlflow": [], "tensorboard": []}
    for r in range(rounds):
        for track in times:
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                execute(
                    config,
                    folder / f"grid-{track}-{r}",
                    progress=False,
                    track=None if track == "none" else track,
                )
            times[track].append(time.perf_counter() - start)
            print(f"round {r}: {track:<12} {times[track][-1]:.1f} s", flush=True)
    base = statistics.median(times["none"])
    for track in ("mlflow", "tensorboard"):
        ratio = statistics.median(times[track]) / base
        print(f"tracking overhead ({track}): {ratio:.3f}x the untracked grid (median of {rounds})")
    bench_cell_logging(config, folder / "grid-none-0", folder)


def bench_cell_logging(config: CompareConfig, run_dir: Path, folder: Path) -> None:
    """Log every cell of a finished grid again, timing only the logging."""
    cells = grid_cells(config)
    records = [
        RunRecord.from_dict(json.loads((run_dir / "cells" / f"{c.id}.json").read_text()))
        for c in cells
    ]
    train = statistics.median(r.train_time_s for r in records)
    est = MultiTaskEstimator("mmoe", epochs=1, progress=False)
    est.fit(load_tables(make_synthetic(500, n_features=10, seed=0), ["label0", "label1"]))
    model_dir = est.save(folder / "logged-model")
    for track in ("mlflow", "tensorboard"):
        tracker = make_tracker(track)
        parent = tracker.start_run("logging-bench")
        tracking = CellTracking(tracker, parent.id)
        seconds = []
        for cell, record in zip(cells, records):
            start = time.perf_counter()
            est.save(model_dir)
            tracking.log_cell(cell, config, record, model_dir)
            seconds.append(time.perf_counter() - start)
        parent.finish()
        cost = statistics.median(seconds)
        print(
            f"logging one cell ({track}, model folder included): {cost:.3f} s, median of "
            f"{len(cells)}; median cell training {train:.2f} s -> {(train + cost) / train:.3f}x"
        )


def bench_export(predict_rows: int, folder: Path) -> None:
    torch.set_num_threads(1)
    frame = make_synthetic(4000, n_features=20, seed=0)
    rng = np.random.default_rng(0)
    for k in range(4):
        frame[f"c{k}"] = rng.choice([f"v{i}" for i in range(30)], len(frame))
    est = MultiTaskEstimator("mmoe", n_experts=8, epochs=2, progress=False)
    est.fit(load_tables(frame, ["label0", "label1"]))
    model_dir = est.save(folder / "model")
    for fmt in ("onnx", "torchscript"):
        start = time.perf_counter()
        done = export_model(model_dir, fmt)
        print(f"export {fmt}: {time.perf_counter() - start:.2f} s -> {done.model.name}")

    import onnxruntime

    big = make_synthetic(predict_rows, n_features=20, seed=1)
    for k in range(4):
        big[f"c{k}"] = rng.choice([f"v{i}" for i in range(30)], len(big))
    data = est.preprocessor_.transform(est._features(big), require_labels=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model_dir / "export" / "model.onnx"), options)
    feed = {"x_cat": data.x_cat.numpy(), "x_num": data.x_num.numpy()}
    timings: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    for _ in range(5):
        start = time.perf_counter()
        expected = est.trainer_.predict_scores(data)
        timings["torch"].append(time.perf_counter() - start)
        start = time.perf_counter()
        got = session.run(None, feed)
        timings["onnxruntime"].append(time.perf_counter() - start)
    diff = max(float(np.abs(g - expected[n]).max()) for g, n in zip(got, ["label0", "label1"]))
    t, o = (statistics.median(timings[k]) for k in ("torch", "onnxruntime"))
    print(
        f"scoring {predict_rows:,} encoded rows, 1 thread: torch {t:.3f} s "
        f"({predict_rows / t:,.0f} rows/s), onnxruntime {o:.3f} s ({predict_rows / o:,.0f} "
        f"rows/s): onnxruntime/torch time ratio {o / t:.2f} (largest difference {diff:.1e})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--predict-rows", type=int, default=100_000)
    parser.add_argument("--skip-tracking", action="store_true")
    args = parser.parse_args()
    print(f"{platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_export(args.predict_rows, Path(tmp))
        if not args.skip_tracking:
            bench_tracking(args.rounds, args.rows, args.epochs, Path(tmp))


if __name__ == "__main__":
    main()
