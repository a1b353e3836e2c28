"""STEM: shared and task-specific embeddings with all-forward, task-specific-backward gates."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import (
    EXPERT_HIDDEN,
    N_SHARED_EXPERTS,
    N_TASK_EXPERTS,
    TOWER_HIDDEN,
    MTLModel,
)
from mtlkit.models.blocks import BatchedMLP, Gate, InputEncoder, mix_experts
from mtlkit.models.registry import MODELS


@MODELS.register(
    "stem",
    "shared + per-task embeddings; each task's gate sees every expert but trains only its own "
    "(Su et al. 2024)",
    params=[
        N_TASK_EXPERTS.with_default(1),
        N_SHARED_EXPERTS.with_default(1),
        EXPERT_HIDDEN,
        TOWER_HIDDEN,
    ],
)
class STEM(MTLModel):
    """STEM-Net (Su et al., "STEM: Unleashing the Power of Embeddings for Multi-Task
    Recommendation", AAAI 2024).

    Every task has its own embedding tables (an :class:`InputEncoder` of ``embedding_dim``)
    besides the shared ones. Task ``t`` owns ``n_task_experts`` experts reading its own
    embeddings; ``n_shared_experts`` experts read the shared embeddings. Task ``t``'s softmax
    gate reads the sum of its own and the shared embeddings and mixes *all* experts
    ("all forward"), but the other tasks' experts enter its mixture through a stop-gradient
    ("task-specific backward"): task ``t``'s loss never reaches another task's experts or
    embeddings, so each task's embeddings learn from that task alone. A tower per task
    reads its mixture. :meth:`gate_weights` gives each task's weights over every task's
    experts (task order) and then the shared ones.

    The paper's one STEM layer is implemented, with linear gates (mtlkit's :class:`Gate`)
    where the authors' code uses a small MLP.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        n_shared_experts: int,
        n_task_experts: int,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        **common,
    ) -> None:
        super().__init__(schema, **common)
        dim = self.encoder.embedding_dim
        in_dim = self.encoder.output_dim
        n_tasks = len(self.task_names)
        self.task_encoders = nn.ModuleDict({t: InputEncoder(schema, dim) for t in self.task_names})
        self.task_experts = nn.ModuleDict(
            {
                t: BatchedMLP(n_task_experts, in_dim, expert_hidden, **self.block_kwargs)
                for t in self.task_names
            }
        )
        self.shared_experts = BatchedMLP(
            n_shared_experts, in_dim, expert_hidden, **self.block_kwargs
        )
        n_all = n_tasks * n_task_experts + n_shared_experts
        self.gates = nn.ModuleDict({t: Gate(in_dim, n_all) for t in self.task_names})
        self.towers = self.make_towers(self.shared_experts.output_dim, tower_hidden)

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        shared_in = self.encoder(x_cat, x_num)
        own_in = {t: enc(x_cat, x_num) for t, enc in self.task_encoders.items()}
        own = {t: self.task_experts[t](own_in[t]) for t in self.task_names}
        shared = self.shared_experts(shared_in)
        out = {}
        for task in self.task_names:
            experts = [own[t] if t == task else own[t].detach() for t in self.task_names]
            gate = self.gates[task](own_in[task] + shared_in)
            self.last_gates[task] = gate.detach()
            out[task] = self.towers[task](mix_experts(torch.cat([*experts, shared]), gate))
        return out

    def task_modules(self, task: str) -> list[nn.Module]:
        return [m[task] for m in (self.task_encoders, self.task_experts, self.gates, self.towers)]
