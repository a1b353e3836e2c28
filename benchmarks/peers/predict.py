"""Prediction rows/s of MMoE (default preset): mtlkit's model path and table path, and the
lean model (also with its embeddings folded into the first layer, a prototype), on the test
split repeated to 300,000 rows.

``bench_predict`` (in the orchestrator) runs ``measure`` in one worker process per thread
setting, repeat and mtlkit version (``--baseline`` commits beside this checkout; their workers
measure mtlkit only), interleaved, and prints one table, and with a baseline the ratios of
this checkout's rows/s to the baseline's.
"""

from __future__ import annotations

import json
import pickle
import random
import statistics
import time

import numpy as np
import pandas as pd
import torch
from common import PRESETS, RAW_SPLIT, TASKS

ROWS = 300_000
TABLE_ROWS = 60_000  # the table path also encodes the rows (pandas), so fewer rows
BATCH_SIZES = (16384, 4096, 2048)  # large, and ones that stay in the CPU's caches


def _best_rate(fn, rows: int, repeats: int = 2) -> tuple[float, float]:
    """Best rows/s over ``repeats`` calls: by wall time, and per CPU-second of this process
    (less disturbed by other jobs on a shared machine)."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start = (time.perf_counter(), time.process_time())
        fn()
        wall = min(wall, time.perf_counter() - start[0])
        cpu = min(cpu, time.process_time() - start[1])
    return rows / wall, rows / cpu


def measure(spec: dict, data: dict) -> dict:
    import lean

    from mtlkit.data.schema import MultiTaskTable
    from mtlkit.data.tensors import TensorData
    from mtlkit.training.estimator import MultiTaskEstimator

    preset = PRESETS["default"]
    hp = preset["models"]["mmoe"]
    with open(RAW_SPLIT, "rb") as fh:
        train, val, test = pickle.load(fh)
    reps = -(-ROWS // len(test))
    x_cat = data["test"]["x_cat"].repeat(reps, 1)[:ROWS]
    x_num = data["test"]["x_num"].repeat(reps, 1)[:ROWS]
    torch.manual_seed(0)
    model = lean.build("mmoe", data["cards"], x_num.shape[1], len(TASKS), preset)
    model.to(spec["device"])
    xc, xn = x_cat.to(spec["device"]), x_num.to(spec["device"])

    def lean_rates(suffix: str) -> dict[str, tuple[float, float]]:
        rates = {}
        for bs in BATCH_SIZES:
            rates[f"lean model (tensors), batch {bs}{suffix}"] = _best_rate(
                lambda bs=bs: lean.predict(model, xc, xn, bs).cpu(), ROWS
            )
            rates[f"lean model, embeddings folded (prototype), batch {bs}{suffix}"] = _best_rate(
                lambda bs=bs: lean.predict_folded(model, xc, xn, bs).cpu(), ROWS
            )
        return rates

    # The lean model first, with glibc's allocator settings; mtlkit then changes them for
    # the process (mtlkit.training.allocator), and the lean model is measured again.
    rates = lean_rates("") if spec["lean"] else {}
    est = MultiTaskEstimator(
        "mmoe", epochs=1, patience=0, progress=False, diagnostic_batches=0,
        embedding_dim=preset["embedding_dim"], device=spec["device"], **hp,
    )  # fmt: skip
    est.fit(train, val)
    est.model_.to(spec["device"])
    big = TensorData(x_cat, x_num, torch.zeros(ROWS, len(TASKS)), torch.ones(ROWS, len(TASKS)))
    table_reps = -(-TABLE_ROWS // len(test))
    big_table = MultiTaskTable(
        features=pd.concat([test.features] * table_reps, ignore_index=True),
        labels={},
        masks={},
        tasks=test.tasks,
        source=np.tile(test.source, table_reps),
        feature_kinds=test.feature_kinds,
    )
    rates["mtlkit predict_proba (table, encoding included)"] = _best_rate(
        lambda: est.predict_proba(big_table), len(big_table.features)
    )
    for bs in BATCH_SIZES:
        rates[f"mtlkit Trainer.predict_scores (tensors), batch {bs}"] = _best_rate(
            lambda bs=bs: est.trainer_.predict_scores(big, batch_size=bs), ROWS
        )
    if spec["lean"]:
        rates |= lean_rates(", mtlkit's allocator settings")
    return rates


def bench_predict(args, run_worker) -> None:
    """Interleaved repeats x thread settings x mtlkit versions; ``run_worker(spec, rev)``
    returns the worker's dict for mtlkit at ``rev`` ("": this checkout)."""
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    ratios: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for repeat in range(args.repeats):
        revs = ["", *args.baseline]
        random.Random(repeat).shuffle(revs)
        for threads in args.threads:
            by_rev = {}
            for rev in revs:
                spec = {"label": "predict", "system": "predict", "model": "mmoe",
                        "preset": "default", "threads": threads, "seed": repeat,
                        "repeat": repeat, "device": args.device, "epochs": 1,
                        "lean": rev == ""}  # fmt: skip
                out = run_worker(spec, rev)
                if out is None:
                    continue
                by_rev[rev] = out["rates"]
                for path, rate in out["rates"].items():
                    name = path.replace("mtlkit", f"mtlkit@{rev}", 1) if rev else path
                    results.setdefault((threads, name), []).append(rate)
            for rev in args.baseline:
                for path, rate in by_rev.get(rev, {}).items():
                    if path in by_rev.get("", {}):
                        ratio = tuple(new / old for new, old in zip(by_rev[""][path], rate))
                        ratios.setdefault((threads, f"{path} / @{rev}"), []).append(ratio)
    print("| threads | path | rows/s (median; min-max) | rows per CPU-s (median) |")
    print("|---|---|---|---|")
    for (threads, path), rates in sorted(results.items()):
        wall = [r[0] for r in rates]
        print(
            f"| {threads} | {path} | {statistics.median(wall):,.0f} "
            f"({min(wall):,.0f}-{max(wall):,.0f}) "
            f"| {statistics.median(r[1] for r in rates):,.0f} |"
        )
    if ratios:
        print("\n| threads | this checkout's rows/s over the baseline's | rows/s: median (each "
              "repeat) | rows per CPU-s: median (each repeat) |")  # fmt: skip
        print("|---|---|---|---|")
        for (threads, path), values in sorted(ratios.items()):
            cells = [
                f"{statistics.median(v[k] for v in values):.2f} "
                f"({', '.join(f'{v[k]:.2f}' for v in values)})"
                for k in (0, 1)
            ]
            print(f"| {threads} | {path} | {cells[0]} | {cells[1]} |")
    if args.json:
        args.json.write_text(json.dumps({f"{t}|{p}": v for (t, p), v in results.items()}))
