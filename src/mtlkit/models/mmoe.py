"""Mixtures of experts: MMoE, and its registered variants OMoE (one gate) and sparse MMoE."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.errors import ConfigError
from mtlkit.models.base import EXPERT_HIDDEN, TOWER_HIDDEN, MTLModel
from mtlkit.models.blocks import (
    BatchedMLP,
    Gate,
    experts_and_gates,
    importance_loss,
    mix_experts,
)
from mtlkit.models.registry import MODELS
from mtlkit.params import Bool, Float, Int, Range, Str

GATINGS = ("per_task", "shared")


@MODELS.register(
    "mmoe",
    "multi-gate mixture of experts: shared experts, one softmax gate per task (Ma et al. 2018)",
    params=[
        Int("n_experts", 8, "number of shared experts", low=1, search=Range(2, 16)),
        EXPERT_HIDDEN,
        TOWER_HIDDEN,
        Int("top_k", None, "keep each row's k highest-weighted experts (None: all)", low=1),
        Bool("gate_noise", False, "trainable Gaussian noise on the gate logits while training"),
        Float("balance_weight", 0.0, "weight of the experts' load-balancing loss", low=0.0),
        Str("gating", "per_task", "one gate per task, or one gate shared by all", choices=GATINGS),
    ],
)
class MMoE(MTLModel):
    """Multi-gate Mixture-of-Experts (Ma et al., "Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts", KDD 2018).

    ``n_experts`` expert MLPs of ``expert_hidden`` widths share the encoded input; each task
    has its own softmax gate over the experts and a tower of ``tower_hidden`` widths on the
    gate-weighted sum of expert outputs. The experts run as one batched operation.

    Registered configurations of this one implementation:

    - ``omoe``: ``gating="shared"``, the one-gate mixture of experts of the same paper: one
      gate mixes the experts into a single representation every tower reads
      (:meth:`gate_weights` then gives the same weights under every task's name);
    - ``sparse_mmoe``: noisy top-k gating (Shazeer et al., "Outrageously Large Neural
      Networks: The Sparsely-Gated Mixture-of-Experts Layer", ICLR 2017): ``top_k`` keeps
      each row's k largest gate logits (weight exactly 0 elsewhere), ``gate_noise`` adds noise
      with a learned, input-dependent scale while training, and ``balance_weight`` > 0 adds
      the importance loss (squared coefficient of variation of the experts' total gate
      weight, summed over gates) as an auxiliary loss. The experts still run batched; on
      tabular widths computing all of them is cheaper than dispatching rows.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        n_experts: int,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        top_k: int | None,
        gate_noise: bool,
        balance_weight: float,
        gating: str,
        **common,
    ) -> None:
        super().__init__(schema, **common)
        if top_k is not None and top_k > n_experts:
            raise ConfigError(
                f"top_k must lie between 1 and n_experts={n_experts}, got {top_k}; "
                "use top_k=None to weight all experts."
            )
        self.balance_weight = float(balance_weight)
        self.shared_gate = gating == "shared"
        in_dim = self.encoder.output_dim
        self.experts = BatchedMLP(n_experts, in_dim, expert_hidden, **self.block_kwargs)
        gate_names = ["shared"] if self.shared_gate else self.task_names
        self.gates = nn.ModuleDict(
            {g: Gate(in_dim, n_experts, top_k=top_k, noise=gate_noise) for g in gate_names}
        )
        self.towers = self.make_towers(self.experts.output_dim, tower_hidden)
        self._aux: torch.Tensor | None = None

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder.encode(x_cat, x_num)
        linears = [gate.linear for gate in self.gates.values()]
        experts, logits = experts_and_gates(x, [self.experts], linears, self)
        computed = {
            g: gate.weights(part, x)
            for (g, gate), part in zip(self.gates.items(), logits.split(self.experts.n))
        }
        gates = {t: computed["shared" if self.shared_gate else t] for t in self.task_names}
        self.last_gates = {t: g.detach() for t, g in gates.items()}
        if self.balance_weight:
            self._aux = self.balance_weight * sum(importance_loss(g) for g in computed.values())
        mixed = {g: mix_experts(experts, w) for g, w in computed.items()}
        return {
            t: self.towers[t](mixed["shared" if self.shared_gate else t]) for t in self.task_names
        }

    def task_modules(self, task: str) -> list[nn.Module]:
        if self.shared_gate:
            return [self.towers[task]]
        return [self.gates[task], self.towers[task]]

    def auxiliary_loss(self) -> torch.Tensor | None:
        return self._aux


MODELS.variant(
    "omoe",
    of="mmoe",
    description="one-gate mixture of experts: shared experts, one gate for all tasks "
    "(Ma et al. 2018)",
    fixed={"gating": "shared"},
)
MODELS.variant(
    "sparse_mmoe",
    of="mmoe",
    description="MMoE with noisy top-k gates: each task mixes only its k best experts "
    "(Shazeer et al. 2017)",
    defaults={"top_k": 2, "gate_noise": True, "balance_weight": 0.01},
    fixed={"gating": "per_task"},
)
