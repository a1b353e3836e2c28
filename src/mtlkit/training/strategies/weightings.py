"""Two torchjd weightings that torchjd does not ship: a constant multiple of another weighting
(CAGrad's rescaling, Aligned-MTL's scale as LibMTL ships them), and MGDA's min-norm weights
solved exactly as a quadratic program (torchjd's Frank-Wolfe solver stops far from it).
"""

from __future__ import annotations

import clarabel
import numpy as np
import torch
from scipy import sparse
from torchjd.aggregation import Weighting


class Scaled(Weighting):
    """``factor`` times the weights of ``weighting`` (so ``factor`` times its update)."""

    def __init__(self, weighting: Weighting, factor: float) -> None:
        super().__init__()
        self.weighting = weighting
        self.factor = factor

    def forward(self, stat: torch.Tensor, /) -> torch.Tensor:
        return self.factor * self.weighting(stat)


class MinNorm(Weighting):
    """MGDA's weights (Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
    NeurIPS 2018): ``w`` on the simplex minimising ``||J^T w||^2 = w^T G w`` for the Gramian
    ``G = J J^T``, solved in float64 by the interior-point QP solver Clarabel to its default
    accuracy (about 1e-8), instead of the paper's Frank-Wolfe iterations. ``G`` is divided by
    its trace first (the weights do not change); a zero Gramian (no gradient at all), or a
    solve that fails, gives equal weights.
    """

    def forward(self, gramian: torch.Tensor, /) -> torch.Tensor:
        n = gramian.shape[0]
        g = gramian.detach().to("cpu", torch.float64).numpy()
        trace = float(np.trace(g))
        weights = np.full(n, 1.0 / n)
        if trace > 0:
            cost = sparse.csc_matrix(np.triu((g + g.T) / (2 * trace)))
            # sum(w) = 1 (a zero cone), -w <= 0 (a non-negative cone)
            rows = sparse.csc_matrix(np.vstack([np.ones((1, n)), -np.eye(n)]))
            cones = [clarabel.ZeroConeT(1), clarabel.NonnegativeConeT(n)]
            settings = clarabel.DefaultSettings()
            settings.verbose = False
            solution = clarabel.DefaultSolver(
                cost, np.zeros(n), rows, np.r_[1.0, np.zeros(n)], cones, settings
            ).solve()
            if str(solution.status) == "Solved":
                weights = np.clip(np.asarray(solution.x), 0.0, None)
                weights /= weights.sum()
        return torch.from_numpy(weights).to(device=gramian.device, dtype=gramian.dtype)
