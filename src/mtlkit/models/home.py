"""HoME: a two-level hierarchy of normalised experts with feature gates and self gates."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.errors import ConfigError
from mtlkit.models.base import (
    EXPERT_HIDDEN,
    N_SHARED_EXPERTS,
    N_TASK_EXPERTS,
    TOWER_HIDDEN,
    MTLModel,
)
from mtlkit.models.blocks import BatchedMLP, Gate, mix_experts
from mtlkit.models.registry import MODELS
from mtlkit.params import Int, Ints, Range


class FeatureGate(nn.Module):
    """HoME's feature gate, one per expert of a group of ``n``: the expert reads
    ``x * 2 sigmoid(x A B)`` with a rank-``rank`` (LoRA-style) product ``A B``, a private,
    per-example re-weighting of its input features that starts close to 1."""

    def __init__(self, n: int, dim: int, rank: int) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.randn(n, dim, rank) / dim**0.5)
        self.b = nn.Parameter(torch.randn(n, rank, dim) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, d)`` (every expert reads it) or ``(n, B, d)`` -> ``(n, B, d)`` gated inputs."""
        x = x.expand(self.a.shape[0], *x.shape) if x.dim() == 2 else x
        return x * 2.0 * torch.sigmoid(torch.bmm(torch.bmm(x, self.a), self.b))


class GatedExperts(nn.Module):
    """``n`` experts with expert normalisation (linear -> normalisation -> Swish, HoME's fix
    for expert collapse) behind per-expert :class:`FeatureGate` s. The normalisation is a
    layer norm: it gives every expert the same output distribution for each example, and
    unlike a batch norm needs no batch statistics (a batch of one row trains too)."""

    def __init__(
        self, n: int, in_dim: int, hidden: Sequence[int], rank: int, dropout: float
    ) -> None:
        super().__init__()
        self.features = FeatureGate(n, in_dim, rank)
        self.experts = BatchedMLP(
            n, in_dim, hidden, activation="silu", norm="layer", dropout=dropout
        )
        self.output_dim = self.experts.output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.experts(self.features(x))


@MODELS.register(
    "home",
    "two-level hierarchy (shared / task-category / task experts), normalised Swish experts, "
    "feature and self gates (Wang et al. 2024)",
    params=[
        Ints(
            "task_groups",
            None,
            "category of each task in task order, e.g. [0, 0, 1] (None: one category per task)",
            low=0,
        ),
        N_SHARED_EXPERTS,
        Int(
            "n_group_experts",
            1,
            "experts of each task category (per level)",
            low=1,
            search=Range(1, 3),
        ),
        N_TASK_EXPERTS.with_default(1),
        Int("feature_gate_rank", 4, "rank of each expert's feature gate", low=1),
        EXPERT_HIDDEN,
        TOWER_HIDDEN,
    ],
)
class HoME(MTLModel):
    """HoME (Wang et al., "HoME: Hierarchy of Multi-Gate Experts for Multi-Task Learning at
    Kuaishou", arXiv:2408.05430, 2024).

    Tasks are grouped into categories (``task_groups``; the paper groups e.g. watch-time and
    interaction tasks). Every expert is normalised (linear, layer norm, Swish: the same output
    distribution for every expert, against expert collapse) and reads its input through its
    own feature gate (``x * 2 sigmoid(x A B)``, rank ``feature_gate_rank``).

    - Meta level (the hierarchy mask): ``n_shared_experts`` global experts and
      ``n_group_experts`` per category read the encoded input; each category's softmax gate
      mixes its own and the global experts into the category's meta representation, and a
      shared gate mixes all of them into the shared one.
    - Task level: global experts read the shared meta representation, each category's
      experts and each task's ``n_task_experts`` experts read the category's. Task ``t``'s
      softmax gate (reading its category's representation) mixes its own, its category's
      and the global experts; a self gate (sigmoid for one expert, softmax for several) adds
      the task's own experts once more as a residual, so a sparse task's experts keep
      learning. Task ``t``'s tower reads the result.

    A task never reads another category's experts, so categories cannot take over each
    other's experts (expert degradation). :meth:`gate_weights` gives each task's task-level
    weights over (its own experts, its category's, the global ones). Gates are linear
    (mtlkit's :class:`Gate`); the paper's per-expert MLP details are not public.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        task_groups: Sequence[int] | None,
        n_shared_experts: int,
        n_group_experts: int,
        n_task_experts: int,
        feature_gate_rank: int,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        **common,
    ) -> None:
        super().__init__(schema, **common)
        names = self.task_names
        groups = list(range(len(names))) if task_groups is None else list(task_groups)
        if len(groups) != len(names):
            raise ConfigError(
                f"task_groups gives {len(groups)} categories for {len(names)} tasks {names}; "
                "give one category id per task, in task order, e.g. [0, 0, 1]."
            )
        ids = sorted(set(groups))
        self.group_of = {t: ids.index(g) for t, g in zip(names, groups)}
        n_groups, in_dim = len(ids), self.encoder.output_dim
        rank, dropout = feature_gate_rank, common["dropout"]
        self.n_shared, self.n_group = n_shared_experts, n_group_experts
        n_meta = n_shared_experts + n_groups * n_group_experts

        def experts(n: int, dim: int) -> GatedExperts:
            return GatedExperts(n, dim, expert_hidden, rank, dropout)

        # Level 1: global experts first, then each category's block.
        self.meta_experts = experts(n_meta, in_dim)
        h = self.meta_experts.output_dim
        self.meta_gates = nn.ModuleList(
            Gate(in_dim, n_group_experts + n_shared_experts) for _ in range(n_groups)
        )
        self.shared_meta_gate = Gate(in_dim, n_meta)
        # Level 2: the same layout, plus each task's own experts, gate and self gate.
        self.experts = experts(n_meta, h)
        self.task_experts = nn.ModuleDict({t: experts(n_task_experts, h) for t in names})
        n_gate = n_task_experts + n_group_experts + n_shared_experts
        self.gates = nn.ModuleDict({t: Gate(h, n_gate) for t in names})
        self.self_gates = nn.ModuleDict({t: nn.Linear(h, n_task_experts) for t in names})
        self.towers = self.make_towers(h, tower_hidden)

    def _group_block(self, experts: torch.Tensor, g: int) -> torch.Tensor:
        start = self.n_shared + g * self.n_group
        return experts[start : start + self.n_group]

    def _member_inputs(self, shared: torch.Tensor, groups: list[torch.Tensor]) -> torch.Tensor:
        """Level-2 inputs ``(n_meta, B, h)``: global experts read the shared representation,
        each category's experts their category's."""
        blocks = [shared.expand(self.n_shared, *shared.shape)]
        blocks += [z.expand(self.n_group, *z.shape) for z in groups]
        return torch.cat(blocks)

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder(x_cat, x_num)
        meta = self.meta_experts(x)
        glob = meta[: self.n_shared]
        groups = [
            mix_experts(torch.cat([self._group_block(meta, g), glob]), gate(x))
            for g, gate in enumerate(self.meta_gates)
        ]
        shared = mix_experts(meta, self.shared_meta_gate(x))
        level2 = self.experts(self._member_inputs(shared, groups))
        out = {}
        for task in self.task_names:
            g = self.group_of[task]
            z = groups[g]
            own = self.task_experts[task](z)
            gate = self.gates[task](z)
            self.last_gates[task] = gate.detach()
            candidates = torch.cat([own, self._group_block(level2, g), level2[: self.n_shared]])
            logits = self.self_gates[task](z)
            self_gate = torch.sigmoid(logits) if len(own) == 1 else torch.softmax(logits, -1)
            out[task] = self.towers[task](
                mix_experts(candidates, gate) + mix_experts(own, self_gate)
            )
        return out

    def task_modules(self, task: str) -> list[nn.Module]:
        return [m[task] for m in (self.task_experts, self.gates, self.self_gates, self.towers)]
