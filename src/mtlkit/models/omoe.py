"""One-gate mixture of experts (OMoE)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import MTLModel
from mtlkit.models.blocks import BatchedMLP, Gate, mix_experts
from mtlkit.models.registry import register
from mtlkit.validation import check_positive_int, check_sizes


@register(
    "omoe",
    "one-gate mixture of experts: shared experts, one softmax gate for all tasks (Ma et al. 2018)",
)
class OMoE(MTLModel):
    """One-gate Mixture-of-Experts, the baseline defined in Ma et al., "Modeling Task
    Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018.

    ``n_experts`` expert MLPs of ``expert_hidden`` widths share the encoded input; a single
    softmax gate mixes them into one representation that every task's tower (``tower_hidden``
    widths) reads. The gate is shared, so :meth:`gate_weights` gives the same weights under
    every task's name.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        n_experts: int = 8,
        expert_hidden: Sequence[int] = (16,),
        tower_hidden: Sequence[int] = (8,),
        **common,
    ) -> None:
        super().__init__(schema, **common)
        check_positive_int("n_experts", n_experts)
        expert_hidden = check_sizes("expert_hidden", expert_hidden)
        tower_hidden = check_sizes("tower_hidden", tower_hidden, allow_empty=True)
        in_dim = self.encoder.output_dim
        self.experts = BatchedMLP(n_experts, in_dim, expert_hidden, **self.block_kwargs)
        self.gate = Gate(in_dim, n_experts)
        self.towers = self.make_towers(self.experts.output_dim, tower_hidden)

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder(x_cat, x_num)
        gate = self.gate(x)
        self.last_gates = dict.fromkeys(self.task_names, gate.detach())
        shared = mix_experts(self.experts(x), gate)
        return {t: self.towers[t](shared) for t in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[task]]
