"""Gradient aggregation on the shared parameters with the aggregators of ``torchjd``.

The task losses' Jacobian with respect to the shared parameters (one row per task) is turned
into one update direction by an aggregator; the task-specific parameters get their own task's
plain gradient. Only the tasks with labelled rows in the batch form rows, so an absent task
neither adds a zero row (which would stall MGDA-like methods) nor counts in the weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchjd.aggregation import (
    IMTLG,
    MGDA,
    Aggregator,
    AlignedMTL,
    CAGrad,
    NashMTL,
    PCGrad,
    UPGrad,
)
from torchjd.autojac import backward as jac_backward
from torchjd.autojac import jac_to_grad

from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.training.strategies.base import Strategy, add_extra, present_indices
from mtlkit.validation import check_choice

#: name -> (aggregator factory taking (n_tasks, **params), citation)
AGGREGATORS: dict[str, tuple[Callable[..., Aggregator], str]] = {
    "pcgrad": (
        lambda n, **kw: PCGrad(**kw),
        "PCGrad: project away conflicting task gradients (Yu et al., NeurIPS 2020)",
    ),
    "mgda": (
        lambda n, **kw: MGDA(**kw),
        "MGDA: min-norm point of the task gradients' convex hull (Sener & Koltun, NeurIPS 2018)",
    ),
    "cagrad": (
        lambda n, c=0.4, **kw: CAGrad(c=c, **kw),
        "CAGrad: conflict-averse gradient near the mean gradient (Liu et al., NeurIPS 2021)",
    ),
    "imtl_g": (
        lambda n, **kw: IMTLG(**kw),
        "IMTL-G: update with equal projections on every task gradient (Liu et al., ICLR 2021)",
    ),
    "nash_mtl": (
        lambda n, **kw: NashMTL(n_tasks=n, **kw),
        "Nash-MTL: Nash bargaining solution over task gradients (Navon et al., ICML 2022)",
    ),
    "aligned_mtl": (
        lambda n, **kw: AlignedMTL(**kw),
        "Aligned-MTL: align the task gradients' principal components (Senushkin et al., CVPR 2023)",
    ),
    "upgrad": (
        lambda n, **kw: UPGrad(**kw),
        "UPGrad: project each gradient onto the dual cone of all (Quinton & Rey, 2024)",
    ),
}


class Aggregation(Strategy):
    """Jacobian descent on the shared parameters with a ``torchjd`` aggregator ``method``.

    ``params`` go to the aggregator (e.g. ``c`` for CAGrad, ``update_weights_every`` for
    Nash-MTL). Stateful aggregators keep one state per set of tasks present in a batch, so
    partially labelled batches do not corrupt the state of full ones. Models without shared
    parameters (the single-task baseline) fall back to the plain sum of losses.
    """

    def __init__(self, method: str, **params: object) -> None:
        check_choice("aggregation method", method, AGGREGATORS)
        self.method = method
        self.params = params
        try:  # fail now on bad parameters, not mid-training
            AGGREGATORS[method][0](2, **params)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad parameters for strategy {method!r}: {exc}") from None

    def setup(self, model: MTLModel, n_tasks: int) -> None:
        super().setup(model, n_tasks)
        shared = {id(p) for p in model.shared_parameters()}
        self._shared = [p for p in model.parameters() if p.requires_grad and id(p) in shared]
        self._specific = [p for p in model.parameters() if p.requires_grad and id(p) not in shared]
        self._aggregators: dict[tuple[int, ...], Aggregator] = {}
        self._weight_sum = torch.zeros(n_tasks, device=self.device)
        self._weight_count = torch.zeros(n_tasks, device=self.device)
        self._epoch_weights: list[float] | None = None

    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        idx = present_indices(present)
        selected = losses[idx]
        if len(idx) < 2 or not self._shared:
            add_extra(selected.sum(), extra).backward()
            return
        if self._specific:
            torch.autograd.backward(
                add_extra(selected.sum(), extra), inputs=self._specific, retain_graph=True
            )
        if extra is not None:
            torch.autograd.backward(extra, inputs=self._shared, retain_graph=True)
        jac_backward(selected, inputs=self._shared)
        weights = jac_to_grad(self._shared, self._aggregator(tuple(idx)))
        if weights is not None:
            self._weight_sum[idx] += weights.detach()
            self._weight_count[idx] += 1

    def _aggregator(self, key: tuple[int, ...]) -> Aggregator:
        if key not in self._aggregators:
            self._aggregators[key] = AGGREGATORS[self.method][0](len(key), **self.params)
        return self._aggregators[key]

    def end_epoch(self, train_losses: torch.Tensor) -> None:
        """Keep the mean weight the aggregator gave each task's gradient over the epoch."""
        counted = self._weight_count > 0
        mean = self._weight_sum / self._weight_count.clamp(min=1)
        mean[~counted] = float("nan")
        self._epoch_weights = mean.tolist() if counted.any() else None
        self._weight_sum.zero_()
        self._weight_count.zero_()

    def task_weights(self) -> list[float] | None:
        return self._epoch_weights
