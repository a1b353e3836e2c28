"""Stochastic multi-objective methods whose weights come from two independent batches: MoDo
and SDMGrad, with the weightings of ``torchjd``."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torchjd.aggregation import MoDoWeighting, SDMGradWeighting, Weighting

from mtlkit.data.tensors import TensorData
from mtlkit.models.base import MTLModel
from mtlkit.params import Float, Int, Param
from mtlkit.training.diagnostics import task_gradients
from mtlkit.training.distributed import all_reduce, global_losses
from mtlkit.training.losses import masked_task_losses
from mtlkit.training.strategies.base import STRATEGIES, Step
from mtlkit.training.strategies.gradients import SharedGradientStrategy

#: A function giving the task losses of one batch under the current parameters.
LossFn = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class WeightingSpec:
    factory: Callable[..., Weighting]
    description: str
    params: tuple[Param, ...]


WEIGHTINGS: dict[str, WeightingSpec] = {
    "modo": WeightingSpec(
        MoDoWeighting,
        "MoDo: weights by projected SGD on the min-norm problem, with double sampling "
        "(Chen et al., NeurIPS 2023)",
        (
            Float("gamma", 1e-3, "step size of the weight update", low=0.0, open_low=True),
            Float("rho", 0.1, "L2 regularisation of the weights", low=0.0),
        ),
    ),
    "sdmgrad": WeightingSpec(
        lambda lambda_, lr, n_iter: SDMGradWeighting(lr=lr, n_iter=n_iter, lambda_=lambda_),
        "SDMGrad: MGDA pulled towards the mean gradient, stochastic and provably convergent "
        "(Xiao et al., NeurIPS 2023)",
        (
            Float(
                "lambda_",
                0.3,
                "pull towards the mean gradient (0: MGDA)",
                low=0.0,
            ),
            Float("lr", 5.0, "step size of the inner weight solver", low=0.0, open_low=True),
            Int("n_iter", 20, "iterations of the inner weight solver", low=1),
        ),
    ),
}


class DoubleSampling(SharedGradientStrategy):
    """Weights from the product ``J1 J2^T`` of the task Jacobians on two more independent
    batches, applied to the step batch's task gradients (three batches per step, as in the
    MoDo and SDMGrad papers and LibMTL).

    :meth:`batches` queues, for every step, two more batches drawn at random from the
    training split; :attr:`samples` holds them as functions giving their task losses.
    Without a queued pair (the strategy driven directly, not by the trainer) the step
    batch's own Jacobian is used for both. In data-parallel training every rank draws the
    same rows and computes its share of them; their losses are those of the whole batches
    (divided by their labelled rows over all ranks, summed over the ranks, as the trainer's
    step losses), so the weights are those of one process. The weights' state is kept per
    set of tasks present in a batch. Costs three forward and backward passes per step.
    """

    streams = False  # the extra batches are rows drawn from the whole split

    def __init__(self, model: MTLModel, method: str, **params: object) -> None:
        super().__init__(model)
        self.method, self.params = method, params
        self.samples: deque[tuple[LossFn, LossFn]] = deque()
        self._pair: tuple[LossFn, LossFn] | None = None
        self._weightings: dict[tuple[int, ...], Weighting] = {}

    def batches(
        self, data: TensorData, batch_size: int, generator: torch.Generator
    ) -> Iterator[Step]:
        for step in super().batches(data, batch_size, generator):
            rows = torch.randperm(len(data), generator=generator)[: 2 * batch_size]
            half = (len(rows) + 1) // 2
            self.samples.append((self._losses(data, rows[:half]), self._losses(data, rows[half:])))
            yield step

    def _losses(self, data: TensorData, rows: torch.Tensor) -> LossFn:
        model = self.model

        def losses() -> torch.Tensor:
            batch = data.subset(rows)  # this rank's share of the rows
            out = model(batch.x_cat, batch.x_num)
            counts = all_reduce(batch.mask.sum(0).to(batch.y.dtype))  # over every rank
            shares = masked_task_losses(
                model.schema.tasks, out, batch.y, batch.mask, model.probability_outputs, counts
            )
            return global_losses(shares)

        return losses

    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        self._pair = self.samples.popleft() if self.samples else None
        super().backward(losses, present, extra)

    def shared_backward(self, objectives: torch.Tensor, idx: list[int]) -> torch.Tensor:
        step = task_gradients(objectives, self._shared).detach()
        if self._pair is None:
            first = second = step
        else:
            first, second = (task_gradients(fn()[idx], self._shared).detach() for fn in self._pair)
        key = tuple(idx)
        if key not in self._weightings:
            self._weightings[key] = WEIGHTINGS[self.method].factory(**self.params)
        weights = self._weightings[key](first @ second.T)
        self.accumulate(weights @ step)
        return weights


for _name, _spec in WEIGHTINGS.items():
    STRATEGIES.add(
        _name, partial(DoubleSampling, method=_name), _spec.description, params=_spec.params
    )
