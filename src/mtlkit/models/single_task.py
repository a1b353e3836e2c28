"""Single-task baseline: one independent network per task, nothing shared."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import MTLModel
from mtlkit.models.blocks import InputEncoder
from mtlkit.models.registry import MODELS
from mtlkit.params import Choice, Sizes


@MODELS.register(
    "single_task",
    "one independent MLP per task; the baseline every MTL model is measured against",
    params=[
        Sizes(
            "hidden",
            (64, 32),
            "hidden widths of each task's own MLP",
            search=Choice(((32,), (64,), (64, 32), (128, 64))),
        ),
    ],
)
class SingleTask(MTLModel):
    """One independent network per task (no parameter sharing).

    Each task gets its own embedding table and an MLP of ``hidden`` widths followed by its
    output layer, so results equal training one model per task. The reference point for the
    gain of multi-task learning.

    Hyperparameters: ``hidden`` (widths of each task's MLP), plus the common
    ``embedding_dim``, ``activation``, ``dropout`` and ``norm``.
    """

    def __init__(self, schema: Schema, *, hidden: Sequence[int], **common) -> None:
        super().__init__(schema, **common)
        self.hidden = tuple(hidden)
        # Each task owns a whole network, its input encoder included.
        self.encoders = nn.ModuleDict(
            {t: InputEncoder(schema, self.encoder.embedding_dim) for t in self.task_names}
        )
        self.towers = self.make_towers(self.encoder.output_dim, self.hidden)
        del self.encoder

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: self.towers[t](self.encoders[t].encode(x_cat, x_num)) for t in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.encoders[task], self.towers[task]]
