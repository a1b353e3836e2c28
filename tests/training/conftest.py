"""A probe "model" for testing strategies on fixed losses and gradients."""

import pytest
import torch
from torch import nn

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models.base import MTLModel


class Probe(MTLModel):
    """Task losses linear in one shared parameter vector ``theta = 0``:
    ``L_k = c_k + g_k . theta``, so the losses are ``c``, the Jacobian is ``G`` and a
    strategy's update on the shared parameters ends in ``theta.grad``."""

    def __init__(self, n_tasks: int, dim: int = 5) -> None:
        tasks = tuple(TaskSpec(f"t{k}", "regression", 1) for k in range(n_tasks))
        super().__init__(
            Schema((), 1, tasks), embedding_dim=1, activation="relu", dropout=0.0, norm=None
        )
        self.theta = nn.Parameter(torch.zeros(dim))

    def task_modules(self, task: str) -> list[nn.Module]:
        return []

    def losses(self, step: dict) -> torch.Tensor:
        return torch.tensor(step["losses"]) + torch.tensor(step["grads"]) @ self.theta

    def update(self, strategy, step: dict, present=None) -> torch.Tensor:
        """The update ``strategy`` puts on ``theta`` for the losses and gradients of ``step``
        (every task present unless ``present`` says otherwise)."""
        self.theta.grad = None
        n = len(step["losses"])
        present = torch.ones(n, dtype=torch.bool) if present is None else torch.tensor(present)
        strategy.backward(self.losses(step), present)
        return self.theta.grad


@pytest.fixture
def probe():
    """``probe(n_tasks, dim=5)`` builds a :class:`Probe`."""
    return Probe
