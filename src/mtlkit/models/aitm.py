"""Adaptive information transfer multi-task model (AITM) for sequential funnel tasks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import FUNNEL_TOWER_HIDDEN, MTLModel, check_sequential_tasks
from mtlkit.models.blocks import MLP, BatchedMLP, Tower
from mtlkit.models.registry import MODELS
from mtlkit.params import Float

ORDER = (
    "earliest step first, each later step a subset of the one before, e.g. "
    "labels=['click', 'conversion'] or ['click', 'purchase', 'repurchase']"
)


class InfoTransfer(nn.Module):
    """The AIT module: attention over the information sent by the previous task and the
    current task's own representation.

    ``p = info(z_prev)``; for ``u`` in ``{p, q}``: ``w_u = softmax_u(<h1(u), h2(u)> / sqrt(d))``
    and the output is ``sum_u w_u h3(u)``. Returns the output and ``w`` as a ``(B, 2)`` tensor
    (weight of the transferred information, weight of the task's own representation).
    """

    def __init__(self, dim: int, **block_kwargs) -> None:
        super().__init__()
        self.info = MLP(dim, (dim,), **block_kwargs)
        self.h = nn.Linear(dim, 3 * dim)  # h1, h2, h3 in one matmul
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, z_prev: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.stack([self.info(z_prev), q], dim=1)  # (B, 2, d)
        h1, h2, h3 = self.h(u).chunk(3, dim=-1)
        weights = torch.softmax((h1 * h2).sum(-1) * self.scale, dim=1)  # (B, 2)
        return torch.einsum("bu,bud->bd", weights, h3), weights


@MODELS.register(
    "aitm",
    "funnel tasks (click -> conversion ...): attention info transfer + calibrator (Xi et al. 2021)",
    params=[
        FUNNEL_TOWER_HIDDEN,
        Float(
            "calibrator_weight",
            0.6,
            "weight of the behavioural expectation calibrator (auxiliary loss)",
            low=0.0,
        ),
    ],
)
class AITM(MTLModel):
    """Adaptive Information Transfer Multi-task model (Xi et al., "Modeling the Sequential
    Dependence among Audience Multi-step Conversions with Multi-task Learning in Targeted
    Display Advertising", KDD 2021).

    Two or more binary tasks in funnel order (e.g. click, then conversion). Each task has a
    tower (``tower_hidden`` widths; all towers run as one batched MLP) giving its
    representation ``q_t``. For ``t > 1`` an AIT module lets task ``t`` attend over ``q_t`` and
    the information ``info(z_{t-1})`` transferred from the previous task; a linear head on the
    result ``z_t`` gives task ``t``'s logit. :meth:`gate_weights` holds the attention weights
    (transferred information, own representation) of every task but the first.

    The behavioural expectation calibrator, ``calibrator_weight * sum_t mean(max(p_t -
    p_{t-1}, 0))`` over consecutive tasks' probabilities, is the :meth:`auxiliary_loss`: it
    penalises predicting a later step as likelier than the step it requires.
    """

    task_roles = ("click", "conversion")  # the paper's two-step case; longer funnels work too

    def __init__(
        self,
        schema: Schema,
        *,
        tower_hidden: Sequence[int],
        calibrator_weight: float,
        **common,
    ) -> None:
        check_sequential_tasks("aitm", schema, ORDER)
        super().__init__(schema, **common)
        self.calibrator_weight = float(calibrator_weight)
        n_tasks = len(self.task_names)
        self.towers = BatchedMLP(
            n_tasks, self.encoder.output_dim, tower_hidden, **self.block_kwargs
        )
        dim = self.towers.output_dim
        self.transfers = nn.ModuleList(
            InfoTransfer(dim, **self.block_kwargs) for _ in range(n_tasks - 1)
        )
        self.heads = nn.ModuleDict({t: Tower(dim, (), 1) for t in self.task_names})
        self._aux: torch.Tensor | None = None

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        q = self.towers(self.encoder.encode(x_cat, x_num))  # (T, B, d)
        z = q[0]
        out = {self.task_names[0]: self.heads[self.task_names[0]](z)}
        self.last_gates = {}
        for k, task in enumerate(self.task_names[1:], start=1):
            z, weights = self.transfers[k - 1](z, q[k])
            self.last_gates[task] = weights.detach()
            out[task] = self.heads[task](z)
        if self.calibrator_weight:
            self._aux = self.calibrator_weight * calibrator_penalty(list(out.values()))
        self._last_probs = [torch.sigmoid(x).detach() for x in out.values()]
        return out

    def conditional_outputs(self) -> dict[str, torch.Tensor]:
        """P(step t | step t-1, x) = p_t / p_{t-1} for every step after the first, clipped to
        [0, 1] (the calibrator discourages, but does not forbid, p_t > p_{t-1})."""
        names, probs = self.task_names, getattr(self, "_last_probs", [])
        return {
            f"{names[k]}_given_{names[k - 1]}": (probs[k] / probs[k - 1].clamp_min(1e-12)).clamp(
                0.0, 1.0
            )
            for k in range(1, len(probs))
        }

    def auxiliary_loss(self) -> torch.Tensor | None:
        return self._aux

    def task_modules(self, task: str) -> list[nn.Module]:
        # z_t feeds the next task's AIT module, so only the last task's AIT is its own.
        modules: list[nn.Module] = [self.heads[task]]
        if task == self.task_names[-1]:
            modules.append(self.transfers[-1])
        return modules


def calibrator_penalty(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_t mean(max(p_t - p_{t-1}, 0))`` over consecutive funnel steps' probabilities."""
    probs = [torch.sigmoid(x) for x in logits]
    return sum(torch.relu(b - a).mean() for a, b in zip(probs[:-1], probs[1:]))
