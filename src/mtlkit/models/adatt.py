"""AdaTT: adaptive task-to-task fusion of task-specific experts."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import EXPERT_HIDDEN, N_TASK_EXPERTS, TOWER_HIDDEN, MTLModel
from mtlkit.models.blocks import (
    BatchedMLP,
    EncodedInput,
    Gate,
    experts_and_gates,
    mix_experts,
)
from mtlkit.models.registry import MODELS
from mtlkit.params import Int, Range


class FusionUnit(nn.Module):
    """One task's fusion unit: a softmax gate over every expert of the level plus a learned
    linear combination of the task's own ("native") experts, added as a residual."""

    def __init__(self, in_dim: int, n_all: int, n_own: int) -> None:
        super().__init__()
        self.gate = Gate(in_dim, n_all)
        bound = math.sqrt(1.0 / n_own)
        # One own expert: its output is added as it is (weight 1), as in the paper.
        self.native = (
            nn.Parameter(torch.empty(n_own).uniform_(-bound, bound)) if n_own > 1 else None
        )

    def forward(self, gate: torch.Tensor, experts: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """``gate`` (B, E) this unit's gate weights (:attr:`gate` of the task's input),
        ``experts`` (E, B, h) all experts, ``own`` (m, B, h) the task's own; returns the
        fused (B, h)."""
        residual = own[0] if self.native is None else torch.einsum("m,mbh->bh", self.native, own)
        return mix_experts(experts, gate) + residual


class FusionLevel(nn.Module):
    """One AdaTT-sp level: ``n_tasks x n_task_experts`` experts, each reading its task's input,
    and one :class:`FusionUnit` per task. Input ``(B, d)`` (or the encoder's
    :class:`~mtlkit.models.blocks.EncodedInput`), shared by every task, or ``(T, B, d)``;
    output ``(T, B, h)``."""

    def __init__(
        self, n_tasks: int, in_dim: int, n_task_experts: int, hidden: Sequence[int], **block_kwargs
    ) -> None:
        super().__init__()
        self.n_tasks, self.m = n_tasks, n_task_experts
        self.experts = BatchedMLP(n_tasks * n_task_experts, in_dim, hidden, **block_kwargs)
        self.n_all = n_tasks * n_task_experts
        self.units = nn.ModuleList(
            FusionUnit(in_dim, self.n_all, n_task_experts) for _ in range(n_tasks)
        )
        self.output_dim = self.experts.output_dim
        self.last_gates: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor | EncodedInput) -> torch.Tensor:
        gates = [unit.gate for unit in self.units]
        if isinstance(x, EncodedInput) or x.dim() == 2:
            # Every task reads the same input: one product for the experts and all gates.
            experts, logits = experts_and_gates(x, [self.experts], [g.linear for g in gates], self)
            weights = [g.weights(part, x) for g, part in zip(gates, logits.split(self.n_all))]
        else:
            experts = self.experts(x.repeat_interleave(self.m, dim=0))
            weights = [gate(x[t]) for t, gate in enumerate(gates)]
        # experts: (T * m, B, h), task t's experts in block t
        self.last_gates = [w.detach() for w in weights]
        own = experts.split(self.m)
        return torch.stack(
            [unit(w, experts, mine) for unit, w, mine in zip(self.units, weights, own)]
        )


@MODELS.register(
    "adatt",
    "task-specific experts fused per task by a gate over all experts plus a native residual "
    "(Li et al. 2023)",
    params=[
        N_TASK_EXPERTS,
        Int("n_levels", 2, "fusion levels", low=1, search=Range(1, 3)),
        EXPERT_HIDDEN,
        TOWER_HIDDEN,
    ],
)
class AdaTT(MTLModel):
    """AdaTT-sp (Li et al., "AdaTT: Adaptive Task-to-Task Fusion Network for Multitask
    Learning in Recommendations", KDD 2023).

    At each of ``n_levels`` fusion levels every task owns ``n_task_experts`` experts
    (``expert_hidden`` widths) that read the task's input to the level. Task ``t``'s fusion
    unit adds two parts: a softmax gate, reading the task's input, over *all* tasks' experts
    (adaptive task-to-task fusion), and a learned linear combination of its own experts (the
    native-expert residual; with one expert per task, that expert's output itself). The
    fused outputs are the next level's per-task inputs; task ``t``'s tower
    (``tower_hidden`` widths) reads its last fused output. Unlike CGC/PLE, a task reads the
    other tasks' experts directly, with weights it learns per example.
    :meth:`gate_weights` gives each task's last-level weights over every expert (task order).
    The paper's variant without shared experts (AdaTT-sp) is implemented.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        n_task_experts: int,
        n_levels: int,
        **common,
    ) -> None:
        super().__init__(schema, **common)
        in_dim, levels = self.encoder.output_dim, []
        for _ in range(n_levels):
            level = FusionLevel(
                len(self.task_names), in_dim, n_task_experts, expert_hidden, **self.block_kwargs
            )
            levels.append(level)
            in_dim = level.output_dim
        self.levels = nn.ModuleList(levels)
        self.towers = self.make_towers(in_dim, tower_hidden)

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder.encode(x_cat, x_num)
        fused = functools.reduce(lambda h, level: level(h), self.levels, x)
        self.last_gates = dict(zip(self.task_names, self.levels[-1].last_gates))
        return {t: tower(h) for (t, tower), h in zip(self.towers.items(), fused)}

    def task_modules(self, task: str) -> list[nn.Module]:
        # The last level's experts feed every task's gate; only t's fusion unit is its own.
        k = self.task_names.index(task)
        return [self.levels[-1].units[k], self.towers[task]]
