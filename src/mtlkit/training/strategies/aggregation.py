"""Gradient aggregation on the shared parameters with the aggregators of ``torchjd``.

The task losses' Jacobian with respect to the shared parameters (one row per task) is turned
into one update direction by an aggregator; the task-specific parameters get their own task's
plain gradient. In data-parallel training the Jacobian is summed over the ranks before it is
aggregated (:func:`~mtlkit.training.distributed.global_jac_to_grad`). Only the tasks with labelled rows in the batch form rows, so an absent task
neither adds a zero row (which would stall MGDA-like methods) nor counts in the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

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

from mtlkit.models.base import MTLModel
from mtlkit.params import Float, Int, Param, Range, Str
from mtlkit.training.distributed import global_jac_to_grad
from mtlkit.training.strategies.base import (
    STRATEGIES,
    Strategy,
    add_extra,
    present_indices,
)


@dataclass(frozen=True)
class AggregatorSpec:
    """A torchjd aggregator offered as a strategy: its factory ``(n_tasks, **params)``, a
    citation and its declared settings."""

    factory: Callable[..., Aggregator]
    description: str
    params: tuple[Param, ...] = ()


AGGREGATORS: dict[str, AggregatorSpec] = {
    "pcgrad": AggregatorSpec(
        lambda n: PCGrad(),
        "PCGrad: project away conflicting task gradients (Yu et al., NeurIPS 2020)",
    ),
    "mgda": AggregatorSpec(
        lambda n, **kw: MGDA(**kw),
        "MGDA: min-norm point of the task gradients' convex hull (Sener & Koltun, NeurIPS 2018)",
        (
            Float(
                "epsilon",
                0.001,
                "convergence tolerance of the min-norm solver",
                low=0.0,
                open_low=True,
            ),
            Int("max_iters", 100, "iterations of the min-norm solver", low=1),
        ),
    ),
    "cagrad": AggregatorSpec(
        lambda n, **kw: CAGrad(**kw),
        "CAGrad: conflict-averse gradient near the mean gradient (Liu et al., NeurIPS 2021)",
        (
            Float(
                "c",
                0.4,
                "radius of the ball around the mean gradient",
                low=0.0,
                search=Range(0.1, 0.9),
            ),
            Float("norm_eps", 1e-4, "numerical floor of the gradient norm", low=0.0, open_low=True),
        ),
    ),
    "imtl_g": AggregatorSpec(
        lambda n: IMTLG(),
        "IMTL-G: update with equal projections on every task gradient (Liu et al., ICLR 2021)",
    ),
    "nash_mtl": AggregatorSpec(
        lambda n, **kw: NashMTL(n_tasks=n, **kw),
        "Nash-MTL: Nash bargaining solution over task gradients (Navon et al., ICML 2022)",
        (
            Float("max_norm", 1.0, "largest norm of the update", low=0.0, open_low=True),
            Int("update_weights_every", 1, "steps between two solves of the weights", low=1),
            Int("optim_niter", 20, "iterations of the weight solver", low=1),
        ),
    ),
    "aligned_mtl": AggregatorSpec(
        lambda n, **kw: AlignedMTL(**kw),
        "Aligned-MTL: align the task gradients' principal components (Senushkin et al., CVPR 2023)",
        (Str("scale_mode", "min", "eigenvalue used to scale", choices=("min", "median", "rmse")),),
    ),
    "upgrad": AggregatorSpec(
        lambda n: UPGrad(),
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

    def __init__(self, model: MTLModel, method: str, **params: object) -> None:
        super().__init__(model)
        self.method = method
        self.params = params
        n_tasks = self.n_tasks
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
        weights = global_jac_to_grad(self._shared, self._aggregator(tuple(idx)))
        if weights is not None:
            self._weight_sum[idx] += weights.detach()
            self._weight_count[idx] += 1

    def _aggregator(self, key: tuple[int, ...]) -> Aggregator:
        if key not in self._aggregators:
            self._aggregators[key] = AGGREGATORS[self.method].factory(len(key), **self.params)
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


for _name, _spec in AGGREGATORS.items():
    STRATEGIES.add(
        _name, partial(Aggregation, method=_name), _spec.description, params=_spec.params
    )
