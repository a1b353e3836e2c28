"""mtlkit vs its peers and vs a lean plain-PyTorch loop, side by side in one run.

Run through ``benchmarks/peers/run.sh`` (it makes the virtual environment with the peers);
arguments are passed on, e.g.::

    benchmarks/peers/run.sh                      # both presets, every system and model
    benchmarks/peers/run.sh --quick              # a smoke run: small preset, 1 epoch
    benchmarks/peers/run.sh --threads 1 2 2p     # thread settings (2p: OMP_WAIT_POLICY=PASSIVE)
    benchmarks/peers/run.sh --threads default    # torch's default thread count (a user's)
    benchmarks/peers/run.sh --baseline HEAD~3    # mtlkit at another commit next to this one
    benchmarks/peers/run.sh --compile            # torch.compile variants (opt-in)
    benchmarks/peers/run.sh --predict            # prediction rows/s of MMoE
    benchmarks/peers/run.sh --predict --baseline HEAD~3   # ... and of mtlkit at HEAD~3
    benchmarks/peers/run.sh --diagnostics-cost   # mtlkit's diagnostics: cost in paired fits

Every measured run is its own subprocess (``worker.py``); runs are interleaved (for each
repeat, each preset x model x threads group in turn, its systems back to back in a shuffled
order), so load from other jobs hits all systems of a group alike. Ratios are computed within
a group, then the median over repeats is shown; every row shows its system's test AUC beside
the lean loop's of the same group. By default each group runs with one torch thread and with
torch's default thread count (what ``mtlkit train`` and ``MultiTaskEstimator.fit`` use). The machine is shared: read the ratios, and
the "per CPU-s" columns (rows per CPU-second of the process), which load from other jobs
disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import CACHE, PRESETS, RAW_SPLIT, SPLIT, TASKS, TRAINING

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEERS = ("deepctr", "rechub")
#: system name -> (runner, spec extras)
SYSTEMS = {
    "lean": ("lean", {}),
    "mtlkit": ("mtlkit", {"diagnostic_batches": 4}),
    "mtlkit-nodiag": ("mtlkit", {"diagnostic_batches": 0}),
    "deepctr": ("deepctr", {}),
    "rechub": ("rechub", {}),
    "lean+compile": ("lean", {"compile": True}),
    # torch.compile cannot run under the diagnostics' vmapped Jacobian (torchjd): off there.
    "mtlkit+compile": ("mtlkit", {"diagnostic_batches": 0, "compile": True}),
}
PEER_MODELS = {"mmoe", "shared_bottom", "ple"}  # the peers have no single-task model


def _export(rev: str) -> Path:
    """``src/`` of mtlkit at commit ``rev``, extracted under the cache folder."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    dest = CACHE / f"mtlkit-{sha}"
    if not (dest / "src" / "mtlkit").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "src"], cwd=REPO, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def run_one(spec: dict, src: Path, log) -> dict | None:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{HERE}", "PYTHONHASHSEED": "0"}
    if str(spec["threads"]).endswith("p"):
        # OpenMP threads sleep instead of spinning while they wait (read when torch loads).
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    proc = subprocess.run(
        [sys.executable, str(HERE / "worker.py"), json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    log.write(f"### {json.dumps(spec)}\n{proc.stdout}\n{proc.stderr}\n")
    log.flush()
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    print(f"  FAILED {spec['label']} (see {log.name})", file=sys.stderr)
    return None


def schedule(args) -> list[dict]:
    """Per repeat: the (preset, model, threads) groups in a shuffled order, each group's
    systems back to back in a shuffled order (so a group's runs see the same load)."""
    compiled = ["mtlkit-nodiag", "lean+compile", "mtlkit+compile"] if args.compile else []
    labels = list(dict.fromkeys([*args.systems, *compiled]))
    labels += [f"mtlkit@{rev}" for rev in args.baseline]
    runs = []
    for repeat in range(args.repeats):
        rng = random.Random(repeat)
        groups = [
            (preset, model, threads)
            for preset in args.presets
            for model in args.models
            for threads in args.threads
        ]
        rng.shuffle(groups)
        for preset, model, threads in groups:
            group = []
            for label in labels:
                runner, extras = SYSTEMS["mtlkit" if "@" in label else label]
                if runner in PEERS and model not in PEER_MODELS:
                    continue
                group.append(
                    {
                        "label": label,
                        "system": runner,
                        **extras,
                        "model": model,
                        "preset": preset,
                        "threads": threads,
                        "seed": repeat,
                        "repeat": repeat,
                        "device": args.device,
                        "epochs": args.epochs,
                    }
                )
            rng.shuffle(group)
            runs += group
    return runs


def thread_setting(value: str) -> str:
    """A ``--threads`` value: a positive number of torch threads, or ``default`` (torch's own
    count); a trailing ``p`` also sets ``OMP_WAIT_POLICY=PASSIVE``."""
    base = value[:-1] if value.endswith("p") else value
    if base != "default" and not (base.isdigit() and int(base) > 0):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a thread setting: give a positive number of threads (e.g. 1), "
            "or 'default' for torch's own count, optionally followed by p (e.g. 2p)"
        )
    return value


def _median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def _steady(r: dict) -> float:
    """Samples/s of epochs 2+ (after one-off costs such as compilation); NaN if unknown."""
    times = r.get("epoch_s") or []
    return r["n_train"] * (len(times) - 1) / sum(times[1:]) if len(times) > 1 else float("nan")


def _ratios(by_label: dict[str, dict], key: str) -> dict[str, tuple[float, float]]:
    """Per system of one round: its ``key`` over the lean loop's and over the best peer's."""
    lean = by_label["lean"][key] if "lean" in by_label else float("nan")
    peers = [by_label[p][key] for p in PEERS if p in by_label]
    best = max(peers) if peers else float("nan")
    return {label: (r[key] / lean, r[key] / best) for label, r in by_label.items()}


def _aucs(row: dict[str, list]) -> str:
    """A row's test AUC per task (median over repeats), e.g. ``0.9390 / 0.9801``."""
    return " / ".join(f"{_median(row[f'auc{k}']):.4f}" for k in range(len(TASKS)))


def report(results: list[dict]) -> None:
    """One markdown table: medians over repeats; ratios taken within each repeat first."""
    rounds: dict[tuple, dict[str, dict]] = {}
    for r in results:
        threads = str(r["threads"])
        if threads.startswith("default") and "torch_threads" in r:
            threads += f" ({r['torch_threads']})"  # the count torch chose
        rounds.setdefault((r["preset"], r["model"], threads, r["repeat"]), {})[r["label"]] = r
    rows: dict[tuple, dict[str, list]] = {}
    for (preset, model, threads, _), by_label in rounds.items():
        wall, cpu = _ratios(by_label, "samples_per_s"), _ratios(by_label, "samples_per_cpu_s")
        for label, r in by_label.items():
            row = rows.setdefault((preset, model, threads, label), {})
            for name, value in (
                ("sps", r["samples_per_s"]),
                ("lean", wall[label][0]),
                ("peer", wall[label][1]),
                ("cpu", r["samples_per_cpu_s"]),
                ("cpu_lean", cpu[label][0]),
                ("cpu_peer", cpu[label][1]),
                ("steady", _steady(r)),
                ("rss", r["peak_rss_mb"]),
                ("params", r["params"]),
                *((f"auc{k}", a) for k, a in enumerate(r["auc"])),
            ):
                row.setdefault(name, []).append(value)
    aucs = " / ".join(TASKS)
    header = (
        "| preset | model | threads | system | samples/s (min-max) | x lean | x best peer "
        "| samples per CPU-s | x lean | x best peer | epochs 2+ samples/s "
        f"| test AUC {aucs} | lean loop's test AUC | params | peak RSS MB |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    order = {"lean": 0, "mtlkit": 1, "mtlkit-nodiag": 2}
    for key in sorted(rows, key=lambda k: (*k[:3], order.get(k[3], 3), k[3])):
        m = {name: _median(values) for name, values in rows[key].items()}
        sps = rows[key]["sps"]
        lean_row = rows.get((*key[:3], "lean"))
        print(
            f"| {' | '.join(map(str, key))} | {m['sps']:,.0f} ({min(sps):,.0f}-{max(sps):,.0f}) "
            f"| {m['lean']:.2f} | {m['peer']:.2f} | {m['cpu']:,.0f} | {m['cpu_lean']:.2f} "
            f"| {m['cpu_peer']:.2f} | {m['steady']:,.0f} | {_aucs(rows[key])} "
            f"| {_aucs(lean_row) if lean_row else '-'} | {m['params']:,.0f} "
            f"| {max(rows[key]['rss']):,.0f} |"
        )
    for (preset, model, threads, label), row in sorted(rows.items()):
        lean = rows.get((preset, model, threads, "lean"))
        if label.startswith("mtlkit") and lean and row["params"][0] != lean["params"][0]:
            print(f"NOTE {preset}/{model}: {label} has {row['params'][0]:,} parameters, "
                  f"the lean loop {lean['params'][0]:,}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--models", nargs="+", default=list(PRESETS["default"]["models"]))
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS)[:5], choices=list(SYSTEMS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=TRAINING["epochs"])
    parser.add_argument(
        "--threads",
        nargs="+",
        type=thread_setting,
        default=["1", "default"],
        help="torch threads per run: a number, or default (torch's own count, as a user's "
        "process has); a trailing p (e.g. 2p) also sets OMP_WAIT_POLICY=PASSIVE",
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda, cuda:N or auto (cuda when a GPU is visible)"
    )
    parser.add_argument("--baseline", nargs="*", default=[], help="git revisions of mtlkit to add")
    parser.add_argument("--compile", action="store_true", help="add torch.compile variants")
    parser.add_argument("--predict", action="store_true", help="prediction rows/s of MMoE only")
    parser.add_argument(
        "--diagnostics-cost",
        action="store_true",
        help="cost of mtlkit's default diagnostics only (paired fits in one process)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small preset, 1 epoch")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    if args.device != "cpu":
        import torch  # no thread pool starts before the first operation

        if args.device == "auto":
            args.device = "cuda" if torch.cuda.is_available() else "cpu"
        elif not args.device.startswith("cuda"):
            parser.error(f"--device must be cpu, cuda, cuda:N or auto, got {args.device!r}")
        elif not torch.cuda.is_available():
            parser.error(
                f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU "
                "(torch.cuda.is_available() is False); use --device cpu, or auto"
            )
    if args.quick:
        args.presets, args.models, args.epochs, args.repeats = ["small"], ["mmoe"], 1, 1
    if not (SPLIT.is_file() and RAW_SPLIT.is_file()):
        # In its own process: torch's thread pool in this (waiting) process slowed every
        # worker down ten-fold on a 2-core machine.
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        subprocess.run([sys.executable, str(HERE / "prepare.py")], env=env, check=True)
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, device {args.device}")
    print(f"load: {os.getloadavg()}")
    CACHE.mkdir(exist_ok=True)
    log = open(CACHE / "last-run.log", "w")  # noqa: SIM115 (open for the whole run)
    revs = {rev: _export(rev) for rev in args.baseline}
    srcs = {"": REPO / "src", **revs}
    if args.predict:
        from predict import bench_predict

        bench_predict(args, lambda spec, rev: run_one(spec, srcs[rev], log))
        print(f"load after: {os.getloadavg()}")
        return
    if args.diagnostics_cost:
        from diagnostics_cost import bench_diagnostics_cost

        bench_diagnostics_cost(args, lambda spec, rev: run_one(spec, srcs[rev], log))
        print(f"load after: {os.getloadavg()}")
        return
    runs = schedule(args)
    results = []
    with log:
        for i, spec in enumerate(runs, 1):
            rev = spec["label"].partition("@")[2]
            src = revs[rev] if rev else REPO / "src"
            start = time.perf_counter()
            r = run_one(spec, src, log)
            took = time.perf_counter() - start
            if r is not None:
                results.append(r)
                if args.json:  # after every run, so an interrupted run keeps its results
                    args.json.write_text(json.dumps(results, indent=1))
                print(
                    f"[{i}/{len(runs)}] {spec['preset']} {spec['model']} t{spec['threads']} "
                    f"{spec['label']}: {r['samples_per_s']:,.0f} samples/s ({took:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    print(f"load after: {os.getloadavg()}")
    report(results)


if __name__ == "__main__":
    main()
