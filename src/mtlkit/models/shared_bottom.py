"""Shared-bottom network: hard parameter sharing."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import TOWER_HIDDEN, MTLModel
from mtlkit.models.blocks import MLP
from mtlkit.models.registry import MODELS
from mtlkit.params import Choice, Sizes


@MODELS.register(
    "shared_bottom",
    "hard parameter sharing: one shared MLP, one tower per task (Caruana 1997)",
    params=[
        Sizes(
            "bottom_hidden",
            (64,),
            "hidden widths of the shared bottom MLP",
            search=Choice(((32,), (64,), (128,), (64, 32), (128, 64))),
        ),
        TOWER_HIDDEN,
    ],
)
class SharedBottom(MTLModel):
    """Hard parameter sharing (Caruana, "Multitask Learning", Machine Learning 1997).

    All tasks share the input encoder and a bottom MLP of ``bottom_hidden`` widths; each task
    has a tower of ``tower_hidden`` widths and its output layer.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        bottom_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        **common,
    ) -> None:
        super().__init__(schema, **common)
        self.bottom = MLP(self.encoder.output_dim, bottom_hidden, **self.block_kwargs)
        self.towers = self.make_towers(self.bottom.output_dim, tower_hidden)

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.bottom(self.encoder.encode(x_cat, x_num))
        return {t: self.towers[t](shared) for t in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[task]]
