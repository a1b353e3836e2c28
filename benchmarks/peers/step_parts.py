"""Where a model's training time goes, against the lean loop, in one process:

1. ``lean``: the lean model in the lean loop (``lean.train``);
2. ``model in lean loop``: mtlkit's model (``mtlkit.models.create``, the same settings) in
   that same loop: what the model costs;
3. ``trainer, diagnostics off``: ``MultiTaskEstimator.fit`` with ``diagnostic_batches=0``:
   plus what mtlkit's training step costs;
4. ``trainer``: ``MultiTaskEstimator.fit`` as a user gets it (4 diagnostic batches an epoch).

Each repeat runs the four once, in that order, for ``--epochs`` epochs; the figure of a run is
its median epoch (training only, no validation pass). Prints each variant's median over the
repeats and its ratio to ``lean``::

    benchmarks/peers/.venv/bin/python benchmarks/peers/step_parts.py --model mmoe --preset small

(``benchmarks/peers/run.sh`` makes that virtual environment and the cached split.)
"""

from __future__ import annotations

import argparse
import statistics

import lean
import torch
from common import PRESETS, TASKS, TRAINING, load_split, warm_up
from worker import run_lean, run_mtlkit


class _Stacked(torch.nn.Module):
    """An mtlkit model's task outputs as the lean loop's ``(T, B)`` logits."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> torch.Tensor:
        out = self.model(x_cat, x_num)
        return torch.stack([out[t] for t in TASKS])


def run_model_in_lean_loop(spec: dict, data: dict, schema) -> list[float]:
    from mtlkit.models import create

    preset = PRESETS[spec["preset"]]
    torch.manual_seed(spec["seed"])
    model = create(
        spec["model"],
        schema,
        embedding_dim=preset["embedding_dim"],
        **preset["models"][spec["model"]],
    )
    return lean.train(
        _Stacked(model),
        data["train"],
        spec["epochs"],
        TRAINING["batch_size"],
        TRAINING["lr"],
        spec["seed"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mmoe", choices=sorted(PRESETS["small"]["models"]))
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--threads", default="1", help="a number, or 'default' (torch's own)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads != "default":
        torch.set_num_threads(int(args.threads))
    data = load_split()
    warm_up("cpu")
    spec = {"model": args.model, "preset": args.preset, "epochs": args.epochs, "seed": 0,
            "device": "cpu"}  # fmt: skip
    first = run_mtlkit({**spec, "epochs": 1, "diagnostic_batches": 0}, data)  # warm-up
    schema = first["schema"]
    variants = {
        "lean": lambda: run_lean(spec, data)["epoch_s"],
        "model in lean loop": lambda: run_model_in_lean_loop(spec, data, schema),
        "trainer, diagnostics off": lambda: run_mtlkit({**spec, "diagnostic_batches": 0}, data)[
            "epoch_s"
        ],
        "trainer": lambda: run_mtlkit({**spec, "diagnostic_batches": 4}, data)["epoch_s"],
    }
    epochs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            epochs[name].append(statistics.median(run()))
    lean_s = statistics.median(epochs["lean"])
    print(f"{args.preset} {args.model}, torch threads {torch.get_num_threads()}, "
          f"{args.repeats} repeats of {args.epochs} epochs")  # fmt: skip
    print("| variant | median epoch, s | x lean (samples/s) |")
    print("|---|---:|---:|")
    for name, values in epochs.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.4f} | {lean_s / median:.2f} |")


if __name__ == "__main__":
    main()
