"""A probe "model" for testing strategies on fixed losses and gradients."""

import pytest
import torch
from torch import nn

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models.base import MTLModel


class Head(nn.Module):
    """A task's own parameters: one vector ``phi_k = 0``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.phi = nn.Parameter(torch.zeros(dim))


class Probe(MTLModel):
    """Task losses linear in one shared parameter vector ``theta = 0`` and in a task-specific
    vector ``phi_k = 0`` (task k's "tower"): ``L_k = c_k + g_k . theta + h_k . phi_k``, so the
    losses are ``c``, the Jacobian on the shared part is ``G``, task k's own gradient is
    ``h_k`` (zero where a step gives no ``heads``), and a strategy's update ends in
    ``theta.grad`` (:meth:`update`) and the ``phi_k.grad`` (:meth:`towers`)."""

    def __init__(self, n_tasks: int, dim: int = 5, head: int = 2) -> None:
        tasks = tuple(TaskSpec(f"t{k}", "regression", 1) for k in range(n_tasks))
        super().__init__(
            Schema((), 1, tasks), embedding_dim=1, activation="relu", dropout=0.0, norm=None
        )
        self.theta = nn.Parameter(torch.zeros(dim))
        self.heads = nn.ModuleDict({t.name: Head(head) for t in tasks})

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.heads[task]]

    def losses(self, step: dict) -> torch.Tensor:
        phi = torch.stack([h.phi for h in self.heads.values()])
        heads = torch.tensor(step["heads"]) if "heads" in step else torch.zeros_like(phi)
        own = (heads * phi).sum(1)
        return torch.tensor(step["losses"]) + torch.tensor(step["grads"]) @ self.theta + own

    def update(self, strategy, step: dict, present=None) -> torch.Tensor:
        """The update ``strategy`` puts on ``theta`` for the losses and gradients of ``step``
        (every task present unless ``present`` says otherwise)."""
        self.zero_grad(set_to_none=True)
        n = len(step["losses"])
        present = torch.ones(n, dtype=torch.bool) if present is None else torch.tensor(present)
        strategy.backward(self.losses(step), present)
        return self.theta.grad

    def towers(self) -> torch.Tensor:
        """The last update on the task-specific vectors, one row per task (zero: none)."""
        return torch.stack(
            [
                torch.zeros_like(h.phi) if h.phi.grad is None else h.phi.grad
                for h in self.heads.values()
            ]
        )


@pytest.fixture
def probe():
    """``probe(n_tasks, dim=5)`` builds a :class:`Probe`."""
    return Probe
