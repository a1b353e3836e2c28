"""Training strategies: how the per-task losses of a batch become parameter gradients.

A strategy chooses the batches of an epoch (e.g. alternating tasks) and turns the ``(T,)``
vector of masked task losses into gradients. The trainer owns everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from mtlkit.data.tensors import Batch, TensorData
from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.validation import check_choice


class Strategy:
    """Base strategy: every batch trains every task (subclasses override the hooks)."""

    name = "base"

    def setup(self, model: MTLModel, n_tasks: int) -> None:
        """Called once before training."""
        self.model = model
        self.n_tasks = n_tasks

    def batches(
        self, data: TensorData, batch_size: int, generator: torch.Generator
    ) -> Iterator[Batch]:
        """The batches of one epoch."""
        return data.batches(batch_size, shuffle=True, generator=generator)

    def backward(self, losses: torch.Tensor) -> None:
        """Fill ``.grad`` of the model's parameters from the ``(T,)`` task losses."""
        raise NotImplementedError

    def end_epoch(self, train_losses: torch.Tensor) -> None:
        """Called after each epoch with the mean training loss per task."""

    def task_weights(self) -> list[float] | None:
        """Current task weights (for the history), if the strategy weights tasks."""
        return None


class Joint(Strategy):
    """Joint training: minimise the weighted sum of task losses (equal weights by default)."""

    name = "joint"

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        self.weights = None if weights is None else [float(w) for w in weights]

    def setup(self, model: MTLModel, n_tasks: int) -> None:
        super().setup(model, n_tasks)
        if self.weights is not None and len(self.weights) != n_tasks:
            raise ConfigError(
                f"joint strategy got {len(self.weights)} task weights for {n_tasks} tasks."
            )
        self._w = torch.tensor(self.weights if self.weights is not None else [1.0] * n_tasks)

    def backward(self, losses: torch.Tensor) -> None:
        (losses * self._w).sum().backward()

    def task_weights(self) -> list[float]:
        return self._w.tolist()


_STRATEGIES: dict[str, Callable[..., Strategy]] = {"joint": Joint}


def register_strategy(name: str, factory: Callable[..., Strategy]) -> None:
    _STRATEGIES[name] = factory


def available_strategies() -> list[str]:
    return list(_STRATEGIES)


def make_strategy(strategy: str | Strategy, **params: object) -> Strategy:
    """A strategy from its name (with its parameters), or a ready instance."""
    if isinstance(strategy, Strategy):
        return strategy
    check_choice("strategy", strategy, _STRATEGIES)
    try:
        return _STRATEGIES[strategy](**params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for strategy {strategy!r}: {exc}") from None
