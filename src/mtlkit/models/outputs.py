"""Binary task outputs given as probabilities, not logits (ESMM's pCTR and pCTCVR, ESCM2's
pCVR): their per-row cross-entropy, clipped away from 0 and 1 before the log."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mtlkit.evaluation.metrics import PROB_EPS


def probability_bce(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row binary cross-entropy of the probabilities ``p`` (clipped by :data:`PROB_EPS`)."""
    return F.binary_cross_entropy(p.clamp(PROB_EPS, 1 - PROB_EPS), target, reduction="none")
