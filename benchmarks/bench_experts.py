"""Batched experts vs a per-expert loop: MMoE training throughput (forward + backward).

Run:  .venv/bin/python benchmarks/bench_experts.py [--experts 8] [--batch 1024] [--threads 1]

The same MMoE (census-shaped input: 34 categorical columns embedded in 4 dims + 7 numeric =
143 inputs, 2 binary tasks) is timed twice: with its experts as one BatchedMLP (stacked
weights, one batched matmul per layer) and with the same weights held by separate MLP
modules run in a Python loop. Both give the same outputs (checked before timing). Prints
samples/s of forward + backward + optimizer step, best of several repeats, for the whole
model and for the expert block alone (the part that differs).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models import create
from mtlkit.models.blocks import MLP, BatchedMLP


class LoopExperts(nn.Module):
    """The reference: the experts of ``batched`` as separate MLP modules, run one by one."""

    def __init__(self, batched: BatchedMLP) -> None:
        super().__init__()
        in_dim, hidden = batched.weights[0].shape[1], [w.shape[2] for w in batched.weights]
        self.experts = nn.ModuleList(MLP(in_dim, hidden) for _ in range(batched.n))
        with torch.no_grad():
            for e, mlp in enumerate(self.experts):
                linears = [m for m in mlp if isinstance(m, nn.Linear)]
                for lin, w, b in zip(linears, batched.weights, batched.biases):
                    lin.weight.copy_(w[e].T)
                    lin.bias.copy_(b[e, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([expert(x) for expert in self.experts])


def census_schema() -> Schema:
    cards = tuple(
        int(c) for c in torch.randint(3, 60, (34,), generator=torch.Generator().manual_seed(0))
    )
    return Schema(cards, 7, (TaskSpec("income", "binary"), TaskSpec("marital", "binary")))


def model_step(model: nn.Module, schema: Schema, batch: int) -> Callable[[], None]:
    """One training step of the whole model on a fixed random batch."""
    g = torch.Generator().manual_seed(0)
    x_cat = torch.stack(
        [torch.randint(0, c, (batch,), generator=g) for c in schema.cat_cardinalities], 1
    )
    x_num = torch.randn(batch, schema.n_numeric, generator=g)
    y = torch.randint(0, 2, (batch,), generator=g).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        out = model(x_cat, x_num)
        loss = sum(F.binary_cross_entropy_with_logits(o, y) for o in out.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def experts_step(experts: nn.Module, in_dim: int, batch: int) -> Callable[[], None]:
    """Forward + backward of the expert block alone."""
    x = torch.randn(batch, in_dim, generator=torch.Generator().manual_seed(0))

    def step() -> None:
        experts.zero_grad(set_to_none=True)
        experts(x).square().mean().backward()

    return step


def compare(
    steps_by_name: dict[str, Callable[[], None]], batch: int, steps: int, repeats: int
) -> dict[str, float]:
    """Samples/s of each step function, best of ``repeats`` runs of ``steps`` calls after a
    warm-up; the candidates take turns so that both see the same machine load."""
    best = dict.fromkeys(steps_by_name, float("inf"))
    for step in steps_by_name.values():
        for _ in range(5):
            step()
    for _ in range(repeats):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: batch * steps / secs for name, secs in best.items()}


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=8, help="number of experts")
    parser.add_argument("--batch", type=int, default=1024, help="rows per batch")
    parser.add_argument("--steps", type=int, default=30, help="training steps per repeat")
    parser.add_argument("--repeats", type=int, default=7, help="repeats; the best counts")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.machine()}, {cpu_name()}, {args.threads} torch "
        f"thread(s), torch {torch.__version__}, python {platform.python_version()}"
    )
    schema = census_schema()
    for hidden in [(16,), (64,), (64, 32)]:
        torch.manual_seed(0)
        batched = create("mmoe", schema, n_experts=args.experts, expert_hidden=hidden)
        torch.manual_seed(0)
        looped = create("mmoe", schema, n_experts=args.experts, expert_hidden=hidden)
        looped.load_state_dict(batched.state_dict())
        looped.experts = LoopExperts(looped.experts)
        x_cat = torch.zeros(16, len(schema.cat_cardinalities), dtype=torch.long)
        x_num = torch.randn(16, schema.n_numeric)
        for task, out in batched(x_cat, x_num).items():
            torch.testing.assert_close(out, looped(x_cat, x_num)[task])
        in_dim = batched.encoder.output_dim
        for what, loop_step, batched_step in (
            (
                "whole model ",
                model_step(looped, schema, args.batch),
                model_step(batched, schema, args.batch),
            ),
            (
                "experts only",
                experts_step(looped.experts, in_dim, args.batch),
                experts_step(batched.experts, in_dim, args.batch),
            ),
        ):
            sps = compare(
                {"loop": loop_step, "batched": batched_step}, args.batch, args.steps, args.repeats
            )
            loop_sps, batched_sps = sps["loop"], sps["batched"]
            print(
                f"MMoE {args.experts} experts {list(hidden)!s:<9} batch {args.batch} {what}: "
                f"per-expert loop {loop_sps:>10,.0f} samples/s | batched "
                f"{batched_sps:>10,.0f} samples/s | x{batched_sps / loop_sps:.2f}"
            )


if __name__ == "__main__":
    main()
