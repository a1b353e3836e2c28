"""The strategy interface and the name registry.

A strategy decides two things the trainer leaves open: which batches an epoch consists of
(``batches``), and how the ``(T,)`` vector of masked task losses of a batch becomes parameter
gradients (``backward``). The trainer owns the rest (forward pass, optimizer, clipping,
validation, early stopping, diagnostics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from mtlkit.data.tensors import Batch, TensorData
from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.validation import check_choice

#: One training step: a batch and the index of the only task it trains (None = every task).
Step = tuple[Batch, int | None]


class Strategy:
    """Base strategy: shuffled batches of all rows, every task trained on every batch.

    Hooks, in the order the trainer calls them:

    - ``setup(model, n_tasks)`` once before training (reset all state here);
    - ``parameters()``: learnable strategy parameters (e.g. uncertainty log-variances) that the
      trainer adds to its optimizer, without weight decay;
    - per epoch ``batches(data, batch_size, generator)`` -> steps ``(batch, active task)``;
    - per step ``backward(losses, present, extra)``: fill ``.grad``. ``present`` is a ``(T,)``
      bool tensor of the tasks this step trains (labelled rows in the batch, and the active
      task only when one is given). ``extra`` is the model's auxiliary loss or None; every
      strategy adds it, unweighted, to what it backpropagates;
    - ``end_epoch(train_losses)`` with the epoch's mean training loss per task;
    - ``task_weights()`` for the history (None when the strategy does not weight tasks).
    """

    name = "base"

    def setup(self, model: MTLModel, n_tasks: int) -> None:
        self.model = model
        self.n_tasks = n_tasks
        #: The model's device: tensors a strategy makes live there too.
        self.device = next(model.parameters()).device

    def parameters(self) -> list[nn.Parameter]:
        return []

    def batches(
        self, data: TensorData, batch_size: int, generator: torch.Generator
    ) -> Iterator[Step]:
        for batch in data.batches(batch_size, shuffle=True, generator=generator):
            yield batch, None

    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        raise NotImplementedError

    def end_epoch(self, train_losses: torch.Tensor) -> None:
        """Called after each epoch with the mean training loss per task."""

    def task_weights(self) -> list[float] | None:
        return None


def present_indices(present: torch.Tensor) -> list[int]:
    """Indices of the tasks a step trains."""
    return present.nonzero().flatten().tolist()


def add_extra(objective: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    return objective if extra is None else objective + extra


@dataclass(frozen=True)
class StrategyEntry:
    name: str
    factory: Callable[..., Strategy]
    description: str


_STRATEGIES: dict[str, StrategyEntry] = {}


def register_strategy(name: str, factory: Callable[..., Strategy], description: str) -> None:
    """Make ``factory`` (a class or function taking keyword parameters) available by ``name``."""
    if name in _STRATEGIES:
        raise ValueError(f"strategy name {name!r} is registered twice")
    _STRATEGIES[name] = StrategyEntry(name, factory, description)


def available_strategies() -> dict[str, str]:
    """Registered strategy names with a one-line description each."""
    return {name: entry.description for name, entry in _STRATEGIES.items()}


def make_strategy(strategy: str | Strategy, **params: object) -> Strategy:
    """A strategy from its name (with its parameters), or a ready instance."""
    if isinstance(strategy, Strategy):
        if params:
            raise ConfigError("strategy parameters can only go with a strategy name.")
        return strategy
    check_choice("strategy", strategy, _STRATEGIES)
    try:
        made = _STRATEGIES[strategy].factory(**params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for strategy {strategy!r}: {exc}") from None
    made.name = strategy
    return made
