"""The base of every strategy that combines the task gradients on the shared parameters.

Task-specific parameters get the plain gradient of their own task's loss, or, for the methods
whose reference code backpropagates the weighted sum of the losses (Nash-MTL, FairGrad,
ExcessMTL), that gradient times the task's weight; the shared ones get a combination of the
present tasks' gradients that each method defines. Only the tasks with
labelled rows in the batch take part, so an absent task neither adds a zero gradient (which
would stall MGDA-like methods) nor counts in the weights, and its state is left untouched.
"""

from __future__ import annotations

from abc import abstractmethod

import torch

from mtlkit.models.base import MTLModel
from mtlkit.training.distributed import share
from mtlkit.training.strategies.base import Strategy, WeightRecord, add_extra, present_indices


class SharedGradientStrategy(Strategy):
    """Combine the present tasks' gradients on the shared parameters (:meth:`shared_backward`).

    The objectives of the present tasks are their losses, or a transform of them
    (:meth:`objectives`, e.g. their logarithm). With fewer present tasks than
    :meth:`min_tasks`, or a model without shared parameters (the single-task baseline), a step
    backpropagates the plain sum of the objectives. The model's auxiliary loss is added,
    unweighted, outside the combination.
    """

    def __init__(self, model: MTLModel) -> None:
        super().__init__(model)
        shared = {id(p) for p in model.shared_parameters()}
        self._shared = [p for p in model.parameters() if p.requires_grad and id(p) in shared]
        self._specific = [p for p in model.parameters() if p.requires_grad and id(p) not in shared]
        self._record = WeightRecord(self.n_tasks, self.device)

    def objectives(self, losses: torch.Tensor, idx: list[int]) -> torch.Tensor:
        """The ``(len(idx),)`` objectives whose gradients are combined (default: the losses)."""
        return losses[idx]

    def min_tasks(self) -> int:
        """The fewest present tasks whose gradients the method can combine."""
        return 2

    def tower_weights(self, weights: torch.Tensor | None) -> torch.Tensor | None:
        """The weights of the present tasks' gradients on the task-specific parameters, given
        the weights :meth:`shared_backward` returned; None (the default): each task's plain
        gradient. A method that weighs them keeps the graph in :meth:`shared_backward`."""
        return None

    def weighs_towers(self) -> bool:
        """Whether :meth:`tower_weights` weighs the task-specific parameters' gradients."""
        return False

    @abstractmethod
    def shared_backward(self, objectives: torch.Tensor, idx: list[int]) -> torch.Tensor | None:
        """Add the combined gradient of ``objectives`` (tasks ``idx``) to the shared parameters'
        ``.grad``; return the weight given to each task, or None."""

    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        idx = present_indices(present)
        objectives = self.objectives(losses, idx)
        if len(idx) < self.min_tasks() or not self._shared:
            add_extra(objectives.sum(), extra).backward()
            return
        own = self._specific + self.parameters()
        weighted = self.weighs_towers()
        if own and not weighted:
            total = add_extra(objectives.sum(), extra)
            torch.autograd.backward(total, inputs=own, retain_graph=True)
        if extra is not None:
            torch.autograd.backward(extra, inputs=self._shared, retain_graph=True)
        weights = self.shared_backward(objectives, idx)
        if own and weighted:
            tower = self.tower_weights(weights).detach().to(objectives.dtype)
            torch.autograd.backward(add_extra(tower @ objectives, extra), inputs=own)
        if weights is not None:
            self._record.add(idx, weights)

    def accumulate(self, direction: torch.Tensor) -> None:
        """Add the flat ``direction`` to the shared parameters' ``.grad``. In data-parallel
        training ``direction`` is computed from the global task gradients (see
        :func:`~mtlkit.training.diagnostics.task_gradients`), the same on every rank, and each
        rank adds its share so that the trainer's gradient all-reduce sums them to it."""
        direction = share(direction)
        for p, g in zip(self._shared, direction.split([p.numel() for p in self._shared])):
            g = g.view_as(p).to(p.dtype)
            p.grad = g.clone() if p.grad is None else p.grad + g

    def end_epoch(self, train_losses: torch.Tensor) -> None:
        """Keep the mean weight each task's gradient got over the epoch."""
        self._record.end_epoch()

    def task_weights(self) -> list[float] | None:
        return self._record.epoch_weights()
