"""Entire-space multi-task model (ESMM): pCTCVR = pCTR x pCVR over all impressions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import FUNNEL_TOWER_HIDDEN, MTLModel, check_sequential_tasks
from mtlkit.models.blocks import EncodedInput, Tower
from mtlkit.models.registry import MODELS

ORDER = (
    "first the click label (CTR), then the conversion label over all impressions (CTCVR, "
    "1 only where the row was clicked and converted), e.g. labels=['click', 'conversion']"
)


@MODELS.register(
    "esmm",
    "click -> conversion: pCTCVR = pCTR x pCVR, trained over all impressions (Ma et al. 2018)",
    params=[
        FUNNEL_TOWER_HIDDEN,
    ],
)
class ESMM(MTLModel):
    """Entire Space Multi-task Model (Ma et al., "Entire Space Multi-Task Model: An Effective
    Approach for Estimating Post-Click Conversion Rate", SIGIR 2018).

    Two binary tasks in this order: the click label (CTR) and the conversion label of every
    impression (CTCVR). A CTR tower and a CVR tower (both ``tower_hidden`` widths) read the
    shared input encoding (the paper's shared embeddings). The outputs are probabilities:
    pCTR and pCTCVR = pCTR x pCVR; both losses use all rows, so pCVR is learned over the entire
    impression space and never fitted to a conversion label directly. pCVR is kept in
    ``last_cvr`` after each forward and returned by :meth:`predict_cvr`.
    """

    task_roles = ("ctr", "ctcvr")
    #: The registered name, for error messages (models built on ESMM set their own).
    model_name = "esmm"

    def __init__(self, schema: Schema, *, tower_hidden: Sequence[int], **common) -> None:
        check_sequential_tasks(self.model_name, schema, ORDER, n_tasks=2)
        super().__init__(schema, **common)
        in_dim = self.encoder.output_dim
        self.ctr_tower = Tower(in_dim, tower_hidden, 1, **self.block_kwargs)
        self.cvr_tower = Tower(in_dim, tower_hidden, 1, **self.block_kwargs)
        self.probability_outputs = frozenset(self.task_names)
        self.last_cvr: torch.Tensor | None = None

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.outputs(*self.probabilities(self.encoder.encode(x_cat, x_num)))

    def probabilities(self, x: torch.Tensor | EncodedInput) -> tuple[torch.Tensor, torch.Tensor]:
        """pCTR and pCVR of the encoded rows ``x``."""
        return torch.sigmoid(self.ctr_tower(x)), torch.sigmoid(self.cvr_tower(x))

    def outputs(self, p_ctr: torch.Tensor, p_cvr: torch.Tensor) -> dict[str, torch.Tensor]:
        """The task outputs (pCTR, pCTCVR = pCTR x pCVR); keeps pCVR in ``last_cvr``."""
        self.last_cvr = p_cvr.detach()
        ctr, ctcvr = self.task_names
        return {ctr: p_ctr, ctcvr: p_ctr * p_cvr}

    @torch.no_grad()
    def predict_cvr(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> torch.Tensor:
        """pCVR = P(conversion | click, x) for every row (evaluation mode)."""
        was_training = self.training
        self.eval()
        self(x_cat, x_num)
        self.train(was_training)
        return self.last_cvr

    def conditional_outputs(self) -> dict[str, torch.Tensor]:
        """pCVR = P(conversion | click, x) as ``"<conversion>_given_<click>"``."""
        ctr, ctcvr = self.task_names
        return {} if self.last_cvr is None else {f"{ctcvr}_given_{ctr}": self.last_cvr}

    def task_modules(self, task: str) -> list[nn.Module]:
        # The CTR tower feeds pCTR and pCTCVR, so only the CVR tower is task-specific.
        return [self.cvr_tower] if task == self.task_names[1] else []
