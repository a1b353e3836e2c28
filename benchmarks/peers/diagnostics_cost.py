"""The cost of mtlkit's default per-epoch diagnostics (``diagnostic_batches=4``): training CPU
time with them over training CPU time without (``diagnostic_batches=0``), from pairs of fits in
one worker process (after a warm-up fit), each pair with its own seed and the order of its two
fits alternating.

Separate processes differ by several % in speed (memory layout, other jobs), which drowns a
cost of a few %; the fits of one process, side by side, do not.
``bench_diagnostics_cost`` (in the orchestrator) runs ``measure`` in one worker process per
preset x model and repeat, and prints one table.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable

#: Pairs of fits (with and without the diagnostics) per worker process.
PAIRS = 4
PROBES = 4  # mtlkit's default diagnostic_batches


def measure(spec: dict, data: dict, run_mtlkit: Callable[[dict, dict], dict]) -> dict:
    """The relative costs of the pairs; ``run_mtlkit(spec, data)`` is the worker's mtlkit fit
    (its ``"timer"``: training CPU and wall seconds)."""
    run_mtlkit({**spec, "epochs": 1, "diagnostic_batches": PROBES}, data)  # warm-up, not timed
    costs = []
    for pair in range(PAIRS):
        seed = spec["seed"] * PAIRS + pair
        cpu = {}
        for probes in (0, PROBES) if pair % 2 else (PROBES, 0):
            out = run_mtlkit({**spec, "seed": seed, "diagnostic_batches": probes}, data)
            cpu[probes] = out["timer"].cpu
        costs.append(cpu[PROBES] / cpu[0] - 1)
    return {"costs": costs}


def bench_diagnostics_cost(args, run_worker) -> None:
    """Interleaved repeats x presets x models x mtlkit versions; ``run_worker(spec, rev)``
    returns the worker's dict for mtlkit at ``rev`` ("": this checkout)."""
    costs: dict[tuple[str, str, str], list[float]] = {}
    for repeat in range(args.repeats):
        for preset in args.presets:
            for model in args.models:
                for rev in ["", *args.baseline]:
                    spec = {"label": "diagnostics", "system": "diagnostics", "model": model,
                            "preset": preset, "threads": args.threads[0], "seed": repeat,
                            "repeat": repeat, "device": args.device, "epochs": args.epochs}  # fmt: skip
                    out = run_worker(spec, rev)
                    if out is not None:
                        key = (preset, model, f"mtlkit@{rev}" if rev else "mtlkit")
                        costs.setdefault(key, []).extend(out["costs"])
    print("| preset | model | system | diagnostics cost (median of pairs; min to max) | pairs |")
    print("|---|---|---|---|---|")
    for (preset, model, label), values in costs.items():
        print(
            f"| {preset} | {model} | {label} | {statistics.median(values):.1%} "
            f"({min(values):.1%} to {max(values):.1%}) | {len(values)} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"|".join(k): v for k, v in costs.items()}))
