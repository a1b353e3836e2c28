"""Multi-gate mixture of experts (MMoE)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.models.blocks import BatchedMLP, Gate, importance_loss, mix_experts
from mtlkit.models.registry import register
from mtlkit.validation import check_positive_int, check_sizes


@register(
    "mmoe",
    "multi-gate mixture of experts: shared experts, one softmax gate per task (Ma et al. 2018)",
)
class MMoE(MTLModel):
    """Multi-gate Mixture-of-Experts (Ma et al., "Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts", KDD 2018).

    ``n_experts`` expert MLPs of ``expert_hidden`` widths share the encoded input; each task
    has its own softmax gate over the experts and a tower of ``tower_hidden`` widths on the
    gate-weighted sum of expert outputs. The experts run as one batched operation.

    Sparse gating (off by default, see ``sparse_mmoe``): ``top_k`` keeps each row's ``k``
    highest-weighted experts, ``gate_noise`` adds trainable noise to the gate logits while
    training, and ``balance_weight`` > 0 adds the importance loss (squared coefficient of
    variation of the experts' total gate weight, summed over tasks) as an auxiliary loss.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        n_experts: int = 8,
        expert_hidden: Sequence[int] = (16,),
        tower_hidden: Sequence[int] = (8,),
        top_k: int | None = None,
        gate_noise: bool = False,
        balance_weight: float = 0.0,
        **common,
    ) -> None:
        super().__init__(schema, **common)
        check_positive_int("n_experts", n_experts)
        expert_hidden = check_sizes("expert_hidden", expert_hidden)
        tower_hidden = check_sizes("tower_hidden", tower_hidden, allow_empty=True)
        if top_k is not None and not 1 <= check_positive_int("top_k", top_k) <= n_experts:
            raise ConfigError(
                f"top_k must lie between 1 and n_experts={n_experts}, got {top_k}; "
                "use top_k=None to weight all experts."
            )
        if not isinstance(balance_weight, (int, float)) or balance_weight < 0:
            raise ConfigError(f"balance_weight must be a number >= 0, got {balance_weight!r}.")
        self.balance_weight = float(balance_weight)
        in_dim = self.encoder.output_dim
        self.experts = BatchedMLP(n_experts, in_dim, expert_hidden, **self.block_kwargs)
        self.gates = nn.ModuleDict(
            {
                t: Gate(in_dim, n_experts, top_k=top_k, noise=bool(gate_noise))
                for t in self.task_names
            }
        )
        self.towers = self.make_towers(self.experts.output_dim, tower_hidden)
        self._aux: torch.Tensor | None = None

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder(x_cat, x_num)
        experts = self.experts(x)
        gates = {t: self.gates[t](x) for t in self.task_names}
        self.last_gates = {t: g.detach() for t, g in gates.items()}
        if self.balance_weight:
            self._aux = self.balance_weight * sum(importance_loss(g) for g in gates.values())
        return {t: self.towers[t](mix_experts(experts, gates[t])) for t in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.gates[task], self.towers[task]]

    def auxiliary_loss(self) -> torch.Tensor | None:
        return self._aux
