"""DSelect-k: a mixture of experts whose per-task gates select exactly k experts."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.errors import ConfigError
from mtlkit.models.base import EXPERT_HIDDEN, TOWER_HIDDEN, MTLModel
from mtlkit.models.blocks import BatchedMLP, mix_experts
from mtlkit.models.registry import MODELS
from mtlkit.params import Float, Int, Range


def smooth_step(t: torch.Tensor, gamma: float) -> torch.Tensor:
    """The cubic smooth-step of DSelect-k: 0 below ``-gamma/2``, 1 above ``gamma/2`` (there its
    gradient is exactly 0, so a selector that reached a binary code stays there), and
    ``-2 t^3 / gamma^3 + 3 t / (2 gamma) + 1/2`` in between."""
    cubic = -2.0 / gamma**3 * t**3 + 1.5 / gamma * t + 0.5
    return torch.where(t <= -gamma / 2, 0.0, torch.where(t >= gamma / 2, 1.0, cubic))


class DSelectGate(nn.Module):
    """Per-example DSelect-k gate over ``n_experts`` (Hazimeh et al., NeurIPS 2021).

    ``k`` single-expert selectors each read ``m = ceil(log2 n_experts)`` smooth-step "bits"
    ``s = S(z(x))``; selector ``i`` puts weight ``prod_j (s_ij if bit j of e else 1 - s_ij)``
    on expert ``e`` (a distribution over the ``2^m`` binary codes). The gate is the mixture of
    the selectors with softmax weights ``alpha(x)``. Once every bit is saturated at 0 or 1,
    each selector is one expert and the gate has at most ``k`` non-zero weights.

    Returns the ``(B, n_experts)`` gate and the ``(B, k, n_experts)`` selector weights.
    """

    def __init__(self, in_dim: int, n_experts: int, k: int, gamma: float) -> None:
        super().__init__()
        self.k, self.gamma = k, gamma
        self.n_bits = max(1, math.ceil(math.log2(n_experts)))
        self.z = nn.Linear(in_dim, k * self.n_bits)
        self.alpha = nn.Linear(in_dim, k)
        # The paper's initialisation: bits start in the smooth region, selectors near uniform.
        nn.init.uniform_(self.z.weight, -gamma / 100, gamma / 100)
        nn.init.uniform_(self.z.bias, -gamma / 100, gamma / 100)
        nn.init.uniform_(self.alpha.weight, -0.05, 0.05)
        nn.init.uniform_(self.alpha.bias, -0.05, 0.05)
        bits = torch.arange(n_experts).unsqueeze(1) >> torch.arange(self.n_bits - 1, -1, -1)
        self.register_buffer("codes", (bits & 1).bool())  # (n_experts, n_bits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = smooth_step(self.z(x).view(-1, self.k, 1, self.n_bits), self.gamma)
        selectors = torch.where(self.codes, s, 1.0 - s).prod(-1)  # (B, k, n_experts)
        weights = torch.softmax(self.alpha(x), dim=-1)
        return torch.einsum("bk,bke->be", weights, selectors), selectors


def selector_penalty(selectors: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the selectors' entropy, plus (when the number of experts is not a
    power of 2) ``sum_i 1/mass_i - k`` with ``mass_i`` the weight selector ``i`` puts on
    existing experts: 0 once every selector is one existing expert."""
    entropy = -(selectors * torch.log(selectors + 1e-6)).sum((1, 2))
    mass = selectors.sum(-1)
    return entropy.mean() + (1.0 / mass.clamp_min(1e-6) - 1.0).sum(-1).mean()


@MODELS.register(
    "dselect_k",
    "MMoE with differentiable k-sparse gates: each task mixes exactly k experts "
    "(Hazimeh et al. 2021)",
    params=[
        Int("n_experts", 8, "number of shared experts", low=2, search=Range(2, 16)),
        Int("k", 2, "experts each task's gate selects (non-zero weights)", low=1),
        Float("gamma", 1.0, "width of the smooth-step's transition region", low=0.0, open_low=True),
        Float(
            "entropy_weight",
            0.1,
            "weight of the selectors' entropy penalty, which drives the gates to exact sparsity",
            low=0.0,
            search=Range(1e-3, 1.0, log=True),
        ),
        EXPERT_HIDDEN,
        TOWER_HIDDEN,
    ],
)
class DSelectK(MTLModel):
    """DSelect-k (Hazimeh et al., "DSelect-k: Differentiable Selection in the Mixture of
    Experts with Applications to Multi-Task Learning", NeurIPS 2021).

    MMoE's structure (``n_experts`` shared experts, a tower per task) with a per-example
    :class:`DSelectGate` per task instead of a softmax gate: ``k`` selectors built from
    binary codes through the smooth-step function of width ``gamma``. Training drives the
    selectors to binary codes, after which each task mixes exactly ``k`` experts (or fewer,
    when two selectors pick the same one). The auxiliary loss is ``entropy_weight`` times
    the selectors' entropy (and, when ``n_experts`` is not a power of 2, a penalty on weight
    given to codes without an expert, as in the authors' implementation); it speeds up the
    convergence to binary selectors. With a power-of-2 ``n_experts`` every gate is a
    distribution; otherwise its weights sum to at most 1 until the penalty has moved the
    selectors onto existing experts.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        n_experts: int,
        k: int,
        gamma: float,
        entropy_weight: float,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        **common,
    ) -> None:
        super().__init__(schema, **common)
        if k > n_experts:
            raise ConfigError(f"k must lie between 1 and n_experts={n_experts}, got {k}.")
        self.entropy_weight = float(entropy_weight)
        in_dim = self.encoder.output_dim
        self.experts = BatchedMLP(n_experts, in_dim, expert_hidden, **self.block_kwargs)
        self.gates = nn.ModuleDict(
            {t: DSelectGate(in_dim, n_experts, k, gamma) for t in self.task_names}
        )
        self.towers = self.make_towers(self.experts.output_dim, tower_hidden)
        self._aux: torch.Tensor | None = None

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder(x_cat, x_num)
        experts = self.experts(x)
        out, penalties = {}, []
        for task in self.task_names:
            gate, selectors = self.gates[task](x)
            self.last_gates[task] = gate.detach()
            penalties.append(selector_penalty(selectors))
            out[task] = self.towers[task](mix_experts(experts, gate))
        if self.entropy_weight:
            self._aux = self.entropy_weight * torch.stack(penalties).sum()
        return out

    def auxiliary_loss(self) -> torch.Tensor | None:
        return self._aux

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.gates[task], self.towers[task]]
