"""Alternating training: each step trains one task on rows labelled for that task."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from mtlkit.data.tensors import TensorData
from mtlkit.models.base import MTLModel
from mtlkit.params import Str
from mtlkit.training.strategies.base import Step, Strategy, add_extra, register_strategy

ORDERS = ("round_robin", "proportional")


@register_strategy(
    "alternating",
    "one task per step on its labelled rows, order='round_robin' or 'proportional'",
    params=[Str("order", "round_robin", "how tasks take turns", choices=ORDERS)],
)
class Alternating(Strategy):
    """One task per step; an epoch passes once over each task's labelled rows.

    ``order="round_robin"`` cycles through the tasks (a task whose rows run out drops out of
    the cycle); ``"proportional"`` shuffles all task batches together, so a task is picked
    with probability proportional to its number of labelled rows. This is the natural way
    to train on merged files that each label one task.

    A step backpropagates only the active task's loss, and only into the parameters that
    task uses: other tasks' towers and gates get no gradient at all, so the optimizer leaves
    them untouched (no momentum step either). Where one tensor holds every task's weights
    (:meth:`~mtlkit.models.base.MTLModel.task_slices`, single_task's batched networks), the
    other tasks' parts of it get a zero gradient instead: no other task's data reaches them,
    but Adam still moves them by their own momentum.
    """

    one_task_per_step = True
    streams = False
    sparse_gradients = True

    def __init__(self, model: MTLModel, order: str) -> None:
        super().__init__(model)
        self.order = order
        n_tasks = self.n_tasks
        owned = [{id(p) for p in model.task_parameters(t)} for t in model.task_names]
        self._inputs: list[list[nn.Parameter]] = []
        for k in range(n_tasks):
            foreign = set().union(*(owned[j] for j in range(n_tasks) if j != k)) - owned[k]
            self._inputs.append(
                [p for p in model.parameters() if p.requires_grad and id(p) not in foreign]
            )

    def num_steps(self, data: TensorData, batch_size: int) -> int:
        return sum(math.ceil(int(n) / batch_size) for n in data.mask.sum(0))

    def batches(
        self, data: TensorData, batch_size: int, generator: torch.Generator
    ) -> Iterator[Step]:
        """Every rank draws the same steps; with several ranks (a sharded ``data``), each
        trains its share of each step's rows."""
        per_task = []
        for k in range(self.n_tasks):
            rows = data.mask[:, k].nonzero().flatten()
            if self.shuffle:
                rows = rows[torch.randperm(len(rows), generator=generator)]
            per_task.append(
                [(rows[s : s + batch_size], k) for s in range(0, len(rows), batch_size)]
            )
        if self.order == "round_robin":
            longest = max((len(b) for b in per_task), default=0)
            order = [b[i] for i in range(longest) for b in per_task if i < len(b)]
        else:
            flat = [item for b in per_task for item in b]
            if self.shuffle:
                flat = [flat[i] for i in torch.randperm(len(flat), generator=generator).tolist()]
            order = flat
        for rows, k in order:
            yield data.subset(rows), k

    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        (k,) = present.nonzero().flatten().tolist()
        torch.autograd.backward(add_extra(losses[k], extra), inputs=self._inputs[k])
