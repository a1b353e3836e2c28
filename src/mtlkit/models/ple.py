"""Progressive layered extraction (PLE) and its one-level configuration CGC."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import EXPERT_HIDDEN, TOWER_HIDDEN, MTLModel
from mtlkit.models.blocks import (
    BatchedMLP,
    EncodedInput,
    Gate,
    experts_and_gates,
    mix_experts,
    run_stacked,
    transposed_linear,
)
from mtlkit.models.registry import MODELS
from mtlkit.params import Int, Range


class ExtractionLayer(nn.Module):
    """One extraction level of CGC/PLE (Tang et al., RecSys 2020).

    Each of ``n_tasks`` tasks owns ``n_task_experts`` experts and ``n_shared`` experts serve
    all tasks (one :class:`BatchedMLP` per group). Task ``t``'s softmax gate mixes its own and
    the shared experts. With ``shared_gate`` (every PLE level but the last) a gate over all
    experts also builds the shared input of the next level.

    Input: ``(B, d)`` (or the encoder's :class:`EncodedInput`) for every expert and gate (first
    level) or ``(T + 1, B, d)``: one input per task, then the shared one. Output: ``(T, B, h)``,
    or ``(T + 1, B, h)`` with ``shared_gate``.

    Computed as one model, the same as a loop over the groups: all experts (the tasks' in task
    order, then the shared ones) run as one stack of batched matmuls
    (:func:`~mtlkit.models.blocks.run_stacked`), and on a shared input one product computes
    every expert's first layer and every gate's logits; the parameters stay per group (the
    same modules and ``state_dict`` keys as a loop would use). The gates are plain softmax
    gates, read through their ``linear`` layers.
    """

    def __init__(
        self,
        n_tasks: int,
        in_dim: int,
        n_task_experts: int,
        n_shared: int,
        expert_hidden: Sequence[int],
        *,
        shared_gate: bool,
        **block_kwargs,
    ) -> None:
        super().__init__()
        self.task_experts = nn.ModuleList(
            BatchedMLP(n_task_experts, in_dim, expert_hidden, **block_kwargs)
            for _ in range(n_tasks)
        )
        self.shared_experts = BatchedMLP(n_shared, in_dim, expert_hidden, **block_kwargs)
        self.task_gates = nn.ModuleList(
            Gate(in_dim, n_task_experts + n_shared) for _ in range(n_tasks)
        )
        n_all = n_tasks * n_task_experts + n_shared
        self.shared_gate = Gate(in_dim, n_all) if shared_gate else None
        self.output_dim = self.shared_experts.output_dim
        self.last_gates: list[torch.Tensor] = []
        # Which input (task, or T for the shared one) each expert reads on a level > 1.
        groups = torch.arange(n_tasks + 1).repeat_interleave(
            torch.tensor([n_task_experts] * n_tasks + [n_shared])
        )
        self.register_buffer("expert_inputs", groups, persistent=False)

    def forward(self, x: torch.Tensor | EncodedInput) -> torch.Tensor:
        n_tasks, n_own = len(self.task_experts), self.task_experts[0].n
        n_gate = n_own + self.shared_experts.n
        groups = [*self.task_experts, self.shared_experts]
        shared_gate = self.shared_gate.linear if self.shared_gate is not None else None
        if isinstance(x, EncodedInput) or x.dim() == 2:
            # One product of the shared input: every expert's first layer, every gate.
            gates = [g.linear for g in self.task_gates] + ([shared_gate] if shared_gate else [])
            experts, logits = experts_and_gates(x, groups, gates, self)
            task_logits = logits[: n_tasks * n_gate].view(n_tasks, n_gate, -1)
            shared_logits = logits[n_tasks * n_gate :]
        else:
            experts = run_stacked(groups, x.index_select(0, self.expert_inputs))
            w = torch.stack([g.linear.weight for g in self.task_gates])
            b = torch.stack([g.linear.bias for g in self.task_gates]).unsqueeze(-1)
            task_logits = torch.baddbmm(b, w, x[:n_tasks].transpose(1, 2))
            if shared_gate is not None:
                shared_logits = transposed_linear(shared_gate, x[-1])
        # Every task's mixture at once: the (T, g, B, 1) weights times its own experts
        # (T, n_own, B, h), then times the shared experts, each summed over experts.
        task_weights = task_logits.softmax(1)  # (T, n_own + n_shared, B)
        per_expert = task_weights.unsqueeze(-1)
        own = experts[: n_tasks * n_own].unflatten(0, (n_tasks, n_own))
        shared = experts[n_tasks * n_own :]
        out = (per_expert[:, :n_own] * own).sum(1) + (per_expert[:, n_own:] * shared).sum(1)
        self.last_gates = [w.T for w in task_weights.detach().unbind()]
        if shared_gate is not None:
            weights = shared_logits.softmax(0).T
            out = torch.cat([out, mix_experts(experts, weights).unsqueeze(0)])
            self.last_gates.append(weights.detach())
        return out


@MODELS.register(
    "ple",
    "progressive layered extraction: stacked CGC levels with shared gates (Tang et al. 2020)",
    params=[
        Int("n_levels", 2, "extraction levels", low=1, search=Range(1, 3)),
        Int(
            "n_task_experts",
            2,
            "experts each task owns (per level)",
            low=1,
            search=Range(1, 4),
        ),
        Int(
            "n_shared_experts",
            2,
            "experts shared by all tasks (per level)",
            low=1,
            search=Range(1, 4),
        ),
        EXPERT_HIDDEN,
        TOWER_HIDDEN,
    ],
)
class PLE(MTLModel):
    """Progressive Layered Extraction (Tang et al., "Progressive Layered Extraction (PLE): A
    Novel Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020).

    Every task owns ``n_task_experts`` expert MLPs and ``n_shared_experts`` are shared by all
    tasks (all of ``expert_hidden`` widths), at each of ``n_levels`` extraction levels. At a
    level, task ``t``'s softmax gate mixes its own experts and the shared ones; the shared
    experts of the next level read a mixture of *all* experts built by a shared gate. The last
    level has no shared gate; task ``t``'s tower (``tower_hidden`` widths) reads its mixture.
    A task never reads another task's own experts, which limits negative transfer.
    :meth:`gate_weights` gives each task's last-level weights over (its own experts, then the
    shared ones); :meth:`level_gates` those of every level.

    ``cgc`` (Customized Gate Control, the same paper) is the registered one-level
    configuration.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        n_levels: int,
        n_task_experts: int,
        n_shared_experts: int,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        **common,
    ) -> None:
        super().__init__(schema, **common)
        n_tasks, in_dim = len(self.task_names), self.encoder.output_dim
        levels = []
        for level in range(n_levels):
            layer = ExtractionLayer(
                n_tasks,
                in_dim,
                n_task_experts,
                n_shared_experts,
                expert_hidden,
                shared_gate=level < n_levels - 1,
                **self.block_kwargs,
            )
            levels.append(layer)
            in_dim = layer.output_dim
        self.levels = nn.ModuleList(levels)
        self.towers = self.make_towers(in_dim, tower_hidden)

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encoder.encode(x_cat, x_num)
        for level in self.levels:
            h = level(h)
        self.last_gates = dict(zip(self.task_names, self.levels[-1].last_gates))
        return {t: self.towers[t](h[k]) for k, t in enumerate(self.task_names)}

    def level_gates(self) -> list[dict[str, torch.Tensor]]:
        """Gate weights of the last forward at every level: task -> weights, plus "shared"
        for the gate that builds the next level's shared input."""
        names = [*self.task_names, "shared"]
        return [dict(zip(names, level.last_gates)) for level in self.levels]

    def task_modules(self, task: str) -> list[nn.Module]:
        # Task t's experts and gate at the last level serve t alone; one level down, t's gate
        # feeds only t's last-level experts and gate. Everything below also reaches the
        # shared gates and so every task.
        k = self.task_names.index(task)
        last = self.levels[-1]
        modules = [last.task_experts[k], last.task_gates[k], self.towers[task]]
        if len(self.levels) > 1:
            modules.append(self.levels[-2].task_gates[k])
        return modules


MODELS.variant(
    "cgc",
    of="ple",
    description="customized gate control: per-task and shared experts, one gate per task "
    "(Tang et al. 2020)",
    fixed={"n_levels": 1},
)
