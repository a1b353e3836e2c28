"""Cross-stitch networks: one column per task, learnable linear mixing between columns."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import TOWER_HIDDEN, MTLModel
from mtlkit.models.blocks import BatchedMLP
from mtlkit.models.registry import MODELS
from mtlkit.params import Choice, Float, Sizes


class CrossStitch(nn.Module):
    """A cross-stitch unit: column ``t``'s new activation is ``sum_s alpha[t, s] * x_s``.

    ``alpha`` starts at ``self_weight`` on the diagonal and shares the rest equally among the
    other columns (each row sums to 1), as in the paper's (0.9, 0.1) initialisation.
    """

    def __init__(self, n_columns: int, self_weight: float) -> None:
        super().__init__()
        other = (1.0 - self_weight) / max(n_columns - 1, 1)
        alpha = torch.full((n_columns, n_columns), other)
        alpha.fill_diagonal_(self_weight)
        self.alpha = nn.Parameter(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ts,sbh->tbh", self.alpha, x)


@MODELS.register(
    "cross_stitch",
    "one column per task, learnable cross-stitch mixing after each layer (Misra et al. 2016)",
    params=[
        Sizes(
            "hidden",
            (32, 16),
            "widths of each task's column (one cross-stitch unit after each layer)",
            search=Choice(((16,), (32, 16), (64, 32))),
        ),
        TOWER_HIDDEN,
        Float(
            "stitch_self_weight",
            0.9,
            "initial weight of a column on itself in each cross-stitch unit",
            low=0.0,
            high=1.0,
        ),
    ],
)
class CrossStitchNet(MTLModel):
    """Cross-stitch networks (Misra et al., "Cross-stitch Networks for Multi-task Learning",
    CVPR 2016).

    Every task has its own column: layers of ``hidden`` widths (all columns of one layer run
    as a single :class:`BatchedMLP`). After each layer a cross-stitch unit replaces each
    column's activation by a learned linear combination of all columns' activations; its
    ``(T, T)`` matrix starts at ``stitch_self_weight`` on the diagonal (the rest of each row
    shared equally). Task ``t``'s tower (``tower_hidden`` widths) reads column ``t``. The
    paper's higher learning rate for the stitch weights is not applied.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        hidden: Sequence[int],
        tower_hidden: Sequence[int],
        stitch_self_weight: float,
        **common,
    ) -> None:
        super().__init__(schema, **common)
        n_tasks, width = len(self.task_names), self.encoder.output_dim
        layers, stitches = [], []
        for h in hidden:
            layers.append(BatchedMLP(n_tasks, width, (h,), **self.block_kwargs))
            stitches.append(CrossStitch(n_tasks, float(stitch_self_weight)))
            width = h
        self.layers = nn.ModuleList(layers)
        self.stitches = nn.ModuleList(stitches)
        self.towers = self.make_towers(width, tower_hidden)

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encoder(x_cat, x_num)
        for layer, stitch in zip(self.layers, self.stitches):
            h = stitch(layer(h))
        return {t: self.towers[t](h[k]) for k, t in enumerate(self.task_names)}

    def task_modules(self, task: str) -> list[nn.Module]:
        # The columns are mixed after every layer, so every column serves every task.
        return [self.towers[task]]
