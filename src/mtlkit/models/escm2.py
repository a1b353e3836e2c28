"""ESCM2: ESMM with a counterfactual (IPS or doubly robust) CVR risk over clicked rows."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import FUNNEL_TOWER_HIDDEN
from mtlkit.models.blocks import Tower
from mtlkit.models.esmm import ESMM
from mtlkit.models.outputs import probability_bce
from mtlkit.models.registry import MODELS
from mtlkit.params import Float, Str

COUNTERFACTUALS = ("ips", "dr")


@MODELS.register(
    "escm2",
    "click -> conversion: ESMM plus a counterfactual CVR risk on clicked rows, doubly robust "
    "(counterfactual='dr') or IPS (Wang et al. 2022)",
    params=[
        FUNNEL_TOWER_HIDDEN,
        Str("counterfactual", "dr", "the CVR risk estimator", choices=COUNTERFACTUALS),
        Float(
            "counterfactual_weight",
            0.5,
            "weight of the counterfactual CVR risk (the paper's lambda_c)",
            low=0.0,
        ),
        Float(
            "max_ips_weight",
            15.0,
            "largest inverse-propensity weight 1/pCTR (pCTR is clipped from below)",
            low=1.0,
        ),
    ],
)
class ESCM2(ESMM):
    """ESCM² (Wang et al., "ESCM²: Entire Space Counterfactual Multi-Task Model for
    Post-Click Conversion Rate Estimation", SIGIR 2022).

    ESMM's structure and tasks (the click label, then the conversion label of every
    impression; outputs pCTR and pCTCVR = pCTR x pCVR), plus the counterfactual CVR risk as
    a :meth:`label_loss` weighted by ``counterfactual_weight``. With ``o`` the click,
    ``e = BCE(conversion, pCVR)`` and the propensity ``p = max(pCTR, 1 / max_ips_weight)``,
    averaged over the rows that carry both labels:

    - ``counterfactual="ips"``: ``o e / p``: each clicked row's CVR error reweighted by
      1/pCTR, so the CVR tower is trained for the entire impression space;
    - ``counterfactual="dr"`` (doubly robust): ``ê + o (e - ê) / p`` with ``ê`` the error
      predicted by an imputation tower (softplus output), which is trained on
      ``o (e - ê)^2 / p``.

    The propensity and the imputed error enter the CVR risk as constants (the CTR tower
    learns from its own loss, the imputation tower from its own), as in the joint learning
    of the doubly robust estimator; the clipping at ``max_ips_weight`` (15) follows the
    authors' PaddleRec code. ``escm2_ips`` is the registered IPS configuration.
    """

    model_name = "escm2"

    def __init__(
        self,
        schema: Schema,
        *,
        tower_hidden: Sequence[int],
        counterfactual: str,
        counterfactual_weight: float,
        max_ips_weight: float,
        **common,
    ) -> None:
        super().__init__(schema, tower_hidden=tower_hidden, **common)
        self.counterfactual = counterfactual
        self.counterfactual_weight = float(counterfactual_weight)
        self.min_propensity = 1.0 / max_ips_weight
        in_dim = self.encoder.output_dim
        self.imputation_tower = (
            Tower(in_dim, tower_hidden, 1, **self.block_kwargs) if counterfactual == "dr" else None
        )
        self._last: tuple[torch.Tensor, ...] = ()

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder.encode(x_cat, x_num)
        p_ctr, p_cvr = self.probabilities(x)
        imputed = () if self.imputation_tower is None else (F.softplus(self.imputation_tower(x)),)
        self._last = (p_ctr, p_cvr, *imputed)
        return self.outputs(p_ctr, p_cvr)

    def label_loss(self, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        if not self.counterfactual_weight or not self._last:
            return None
        p_ctr, p_cvr, *imputed = self._last
        both = (mask[:, 0] & mask[:, 1]).to(p_cvr.dtype)
        if not both.any():
            return None
        clicked = y[:, 0] * both
        error = probability_bce(p_cvr, y[:, 1])
        propensity = p_ctr.detach().clamp_min(self.min_propensity)
        if imputed:
            (e_hat,) = imputed
            risk = both * e_hat.detach() + clicked * (error - e_hat.detach()) / propensity
            risk = risk + clicked * (error.detach() - e_hat) ** 2 / propensity
        else:
            risk = clicked * error / propensity
        return self.counterfactual_weight * risk.sum() / both.sum()

    def task_modules(self, task: str) -> list[nn.Module]:
        modules = super().task_modules(task)
        if self.imputation_tower is not None and modules:
            modules.append(self.imputation_tower)
        return modules


MODELS.variant(
    "escm2_ips",
    of="escm2",
    description="click -> conversion: ESMM plus the inverse-propensity-weighted CVR risk on "
    "clicked rows (Wang et al. 2022)",
    fixed={"counterfactual": "ips"},
)
