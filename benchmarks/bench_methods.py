"""Cost per training step of every model (with ``joint``) and every strategy (with MMoE) on
the census preset: forward passes, wall time and peak memory growth, side by side in one run.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_methods.py \
        --data ../shared/data/census-income.test.gz

The census file (``datasets.load("census-income", path=..., group=1)``: income, marital; 70%
train split) is preprocessed once; each configuration then trains in its own process (one
torch thread, batch 512) for one warm-up epoch (on another instance) and one timed epoch of
``--steps`` steps, so peak memory is that configuration's alone. Models that need funnel tasks (esmm, aitm,
escm2) get the funnel pair (income, income and marital) on the same rows. Reported per
step: forward passes of the model (counted with a forward hook, validation excluded),
CPU milliseconds of the training thread (the validation pass of 512 rows included; the better
of ``--repeats`` runs), which a machine busy with other work disturbs much less than wall
time, and their ratio to ``mmoe + joint``, and the
growth of the process's resident memory over the timed epoch, peak minus start (MB, sampled
every millisecond).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

BASELINE = ("mmoe", "joint")


def prepare(data: Path, out: Path) -> None:
    """Preprocess the census train split once and save its tensors and schema."""
    from mtlkit import datasets
    from mtlkit.data.preprocessor import Preprocessor
    from mtlkit.data.splits import split_table

    table = datasets.load("census-income", path=data, group=1)
    train, _, _ = split_table(table, (0.7, 0.15, 0.15), seed=0)
    pre = Preprocessor().fit(train)
    t = pre.transform(train)
    torch.save(
        {
            "x_cat": t.x_cat,
            "x_num": t.x_num,
            "y": t.y,
            "mask": t.mask,
            "schema": pre.schema().to_dict(),
        },
        out,
    )


def worker(tensors: Path, model_name: str, strategy: str, steps: int) -> dict:
    """Train one configuration; return its per-step cost."""
    from mtlkit.data.schema import Schema
    from mtlkit.data.tensors import TensorData
    from mtlkit.models import MODELS, create
    from mtlkit.training.settings import TrainConfig
    from mtlkit.training.trainer import Trainer

    torch.set_num_threads(1)
    saved = torch.load(tensors)
    schema = Schema.from_dict(saved["schema"])
    y, mask = saved["y"], saved["mask"]
    if MODELS.entry(model_name).target.task_roles is not None:
        y = torch.stack([y[:, 0], y[:, 0] * y[:, 1]], 1)  # a funnel: income, then both
    rows = slice(0, 512 * steps)
    train = TensorData(saved["x_cat"][rows], saved["x_num"][rows], y[rows], mask[rows])
    val = TensorData(saved["x_cat"][:512], saved["x_num"][:512], y[:512], mask[:512])
    cfg = TrainConfig(epochs=1, batch_size=512, patience=0, progress=False, diagnostic_batches=0)
    # Warm-up on another instance: imports, thread pools and the allocator's first growth.
    Trainer(create(model_name, schema), cfg, strategy).fit(train, val)
    torch.manual_seed(0)
    model = create(model_name, schema)
    calls = [0]
    model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    with PeakMemory() as memory:
        cpu = time.thread_time()
        history = Trainer(model, cfg, strategy).fit(train, val)
        cpu = time.thread_time() - cpu
    n = history.epochs[-1].steps
    return {
        "ms": 1000 * cpu / n,
        "forwards": (calls[0] - 1) / n,  # one validation forward
        "memory": memory.growth_mb,
    }


class PeakMemory:
    """Samples the process's resident memory every millisecond; ``growth_mb`` is the peak
    over the block minus the value at its start."""

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = _rss_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.001):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())
        self.growth_mb = self.peak - self.start


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def configurations(only: list[str] | None = None) -> list[tuple[str, str]]:
    """Every model with ``joint``, then MMoE with every strategy; with ``only``, those whose
    model or strategy is named there (and the baseline, ``mmoe`` + ``joint``)."""
    from mtlkit.models import available
    from mtlkit.training.strategies import STRATEGIES

    aliases = {"ew", "uw", "rgw"}  # the same methods as joint, uncertainty, random
    models = [(m, "joint") for m in available()]
    strategies = [("mmoe", s) for s in STRATEGIES.names() if s not in aliases | {"joint"}]
    chosen = models + strategies
    if only:
        unknown = set(only) - {name for pair in chosen for name in pair}
        if unknown:
            sys.exit(f"--only: no model or strategy named {sorted(unknown)}")
        kept = [(m, s) for m, s in chosen if (s if s != "joint" else m) in only]
        chosen = [BASELINE, *(c for c in kept if c != BASELINE)]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/census-income.test.gz"))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--only", nargs="+", help="models (with joint) or strategies (with MMoE) to time"
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tensors, model_name, strategy, steps = args.worker
        print(json.dumps(worker(Path(tensors), model_name, strategy, int(steps))))
        return
    if not args.data.is_file():
        sys.exit(f"census file not found: {args.data} (pass --data)")
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tensors = Path(tmp) / "census.pt"
        prepare(args.data, tensors)
        results: dict[tuple[str, str], dict] = {}
        for _ in range(args.repeats):
            for model_name, strategy in configurations(args.only):
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(tensors),
                    model_name,
                    strategy,
                    str(args.steps),
                ]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                run = json.loads(out.strip().splitlines()[-1])
                best = results.setdefault((model_name, strategy), run)
                if run["ms"] < best["ms"]:
                    results[(model_name, strategy)] = {**run, "memory": best["memory"]}
    base = results[BASELINE]["ms"]
    print(
        f"census preset, batch 512, {args.steps} timed steps, best of {args.repeats}; "
        f"{platform.machine()} {platform.system()}, torch {torch.__version__}, 1 thread; "
        f"{time.time() - start:.0f} s"
    )
    print(
        "| model | strategy | forward passes / step | CPU ms / step | x mmoe+joint | peak memory growth (MB) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for (model_name, strategy), r in results.items():
        print(
            f"| {model_name} | {strategy} | {r['forwards']:.0f} | {r['ms']:.1f} | "
            f"{r['ms'] / base:.2f} | {r['memory']:.0f} |"
        )


if __name__ == "__main__":
    main()
