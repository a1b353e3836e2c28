"""The strategy interface and its registry.

A strategy decides two things the trainer leaves open: which batches an epoch consists of
(``batches``), and how the ``(T,)`` vector of masked task losses of a batch becomes parameter
gradients (``backward``). The trainer owns the rest (forward pass, optimizer, clipping,
validation, early stopping, diagnostics).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from mtlkit.data.tensors import Batch, TensorData
from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.registry import Checked, Registry

#: One training step: a batch and the index of the only task it trains (None = every task).
Step = tuple[Batch, int | None]

#: Every strategy, by name; each module of this package registers its own.
STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy", "mtlkit.training.strategies")
register_strategy = STRATEGIES.register


class Strategy(ABC):
    """Base strategy: shuffled batches of all rows, every task trained on every batch.

    A strategy is built for one model, once per fit (``make_strategy(name, model, **params)``);
    its state (learnable weights, loss history...) is created in ``__init__``. Hooks, in the
    order the trainer calls them:

    - ``parameters()``: learnable strategy parameters (e.g. uncertainty log-variances) that the
      trainer adds to its optimizer, without weight decay;
    - per epoch ``batches(data, batch_size, generator)`` -> steps ``(batch, active task)``;
    - per step ``before_step()``, then ``backward(losses, present, extra)``: fill ``.grad``.
      ``present`` is a ``(T,)`` bool tensor of the tasks this step trains (labelled rows in the
      batch, and the active task only when one is given); ``extra`` is the model's auxiliary
      loss or None, which every strategy adds, unweighted, to what it backpropagates; then the
      optimizer steps and ``after_step(step_losses)`` runs, where ``step_losses()`` recomputes
      the step's task losses with the updated parameters (without a graph; computed only when
      called, e.g. by FAMO);
    - ``end_epoch(train_losses)`` with the epoch's mean training loss per task;
    - ``task_weights()`` for the history (None when the strategy does not weight tasks);
    - ``linear_weights()``: a strategy whose gradient is a fixed weighted sum of the task
      losses' says so, and a diagnostic probe's per-task gradients then make its step.

    Data-parallel training (several ranks, :mod:`mtlkit.training.distributed`) needs nothing
    more from a strategy that keeps three rules: compute weights and state from the
    ``losses`` it is given (their value is the whole batch's, the same on every rank) and
    from :func:`~mtlkit.training.diagnostics.task_gradients` (summed over the ranks), never
    from the batch's rows; backpropagate the losses themselves (each rank's gradient is then
    its share, which the trainer sums); and add a direction computed from global gradients to
    ``.grad`` through :func:`~mtlkit.training.distributed.share` (or torchjd's Jacobians
    through :func:`~mtlkit.training.distributed.global_jac_to_grad`). A strategy whose
    ``batches`` needs the rows in memory sets ``streams = False``.

    Random draws (RLW's weights, PCGrad's task order, GradDrop's signs...) come from the
    strategy's own stream, which the trainer seeds from the run's seed (:meth:`seed`): every
    rank then draws the same numbers, whatever its share of the rows, and the draws leave
    torch's global generator (dropout's) as it was. A strategy draws inside
    :meth:`own_random`, which also covers the draws torchjd makes from the global generator.

    A strategy's identity is the name it is registered under; see :data:`STRATEGIES`.
    """

    #: Whether each step trains one task only (alternating training); every other task's
    #: parameters then get no gradient in that step.
    one_task_per_step: ClassVar[bool] = False
    #: Whether the strategy trains from a stream (``StreamingData``) as well as from tensors.
    streams: ClassVar[bool] = True
    #: Whether ``backward`` is one backward pass of a function of the task losses, with no
    #: work on the parameters' gradients: a large embedding table may then get sparse
    #: gradients (only the rows a batch looked up; :mod:`mtlkit.training.optim`).
    sparse_gradients: ClassVar[bool] = False

    def __init__(self, model: MTLModel) -> None:
        self.model = model
        self.n_tasks = len(model.task_names)
        #: The model's device: tensors a strategy makes live there too.
        self.device = next(model.parameters()).device
        self.seed(0)

    def seed(self, seed: int) -> None:
        """Start the strategy's own random stream (see :meth:`own_random`) from ``seed``; the
        trainer passes the run's seed, the same on every rank. The stream is derived from
        the seed (``numpy.random.SeedSequence``), so it does not repeat the draws of the data
        order or dropout, which torch's generators seeded with the seed itself make."""
        stream = int(np.random.SeedSequence((seed, 1)).generate_state(1, np.uint64)[0])
        #: The stream's generator states (CPU, and the model's GPU when it has one); state
        #: that a continued run restores.
        self.random_state = [torch.Generator().manual_seed(stream).get_state()]
        if self.device.type == "cuda":
            gpu = torch.Generator(self.device).manual_seed(stream)
            self.random_state.append(gpu.get_state())

    @contextmanager
    def own_random(self) -> Iterator[None]:
        """Inside, torch's global generators (the CPU's and the model's GPU's) draw from the
        strategy's own stream; after it they are as they were before. Library code that
        draws from the global generators (torchjd's random aggregators and scalarizers) runs
        inside it."""
        gpus = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus, device_type="cuda"):
            torch.set_rng_state(self.random_state[0].cpu())
            if gpus:
                torch.cuda.set_rng_state(self.random_state[1].cpu(), self.device)
            yield
            self.random_state = [torch.get_rng_state()]
            if gpus:
                self.random_state.append(torch.cuda.get_rng_state(self.device))

    def parameters(self) -> list[nn.Parameter]:
        return []

    #: Whether ``batches`` shuffles the rows (the trainer sets it from ``TrainConfig.shuffle``).
    shuffle: bool = True

    def batches(
        self, data: TensorData, batch_size: int, generator: torch.Generator
    ) -> Iterator[Step]:
        for batch in data.batches(batch_size, shuffle=self.shuffle, generator=generator):
            yield batch, None

    def num_steps(self, data: TensorData, batch_size: int) -> int:
        """The number of steps ``batches`` yields (without reading the data)."""
        return data.num_batches(batch_size)

    def before_step(self) -> None:  # noqa: B027 (optional hook)
        """Called before each step's ``backward``."""

    @abstractmethod
    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        """Fill the parameters' ``.grad`` from the step's task losses."""

    def linear_weights(self) -> torch.Tensor | None:
        """The ``(T,)`` task weights ``w`` when :meth:`backward` fills exactly the gradient
        of ``sum_k w_k L_k`` over the present tasks (plus ``extra``) and changes no state; None
        (the default) otherwise. On a diagnostic probe, whose per-task gradients the trainer
        takes anyway, it then builds the step's gradient from them instead of calling
        ``backward`` (one backward pass fewer)."""
        return None

    def after_step(self, step_losses: Callable[[], torch.Tensor]) -> None:  # noqa: B027
        """Called after the optimizer step; ``step_losses()`` gives the step's task losses
        under the updated parameters."""

    def end_epoch(self, train_losses: torch.Tensor) -> None:  # noqa: B027
        """Called after each epoch with the mean training loss per task."""

    def task_weights(self) -> list[float] | None:
        return None

    def state_dict(self) -> dict:
        """What the strategy learned or accumulated (attributes holding tensors, numbers,
        text, or lists and dicts of them; not the model's parameters), so that a continued
        training run (``Trainer.fit(state=...)``) picks up where it stopped. Other objects
        (e.g. a torchjd aggregator's internal state) are rebuilt by ``__init__``."""
        owned = {id(p) for p in self.model.parameters()}
        state = {}
        for name, value in vars(self).items():
            if name not in ("model", "device") and _plain(value, owned):
                state[name] = _detached(value)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; learnable parameters keep their identity (the
        optimizer holds them) and get the saved values."""
        for name, value in state.items():
            current = getattr(self, name)
            if isinstance(current, (nn.Parameter, nn.ParameterList)):
                with torch.no_grad():
                    for param, saved in zip(_as_params(current), _as_params(value)):
                        param.copy_(saved)
            else:
                setattr(self, name, _moved(value, self.device))


def _plain(value: object, owned: set[int]) -> bool:
    """Whether ``value`` is state to save: tensors that are not model parameters, numbers,
    text, None, or lists, tuples and string-keyed dicts of these."""
    if isinstance(value, torch.Tensor):
        return id(value) not in owned
    if isinstance(value, nn.ParameterList):
        return all(id(p) not in owned for p in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v, owned) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, owned) for k, v in value.items())
    return False


def _detached(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (nn.ParameterList, list, tuple)):
        return [_detached(v) for v in value]
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


def _moved(value: object, device: torch.device) -> object:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, device) for k, v in value.items()}
    return value


def _as_params(value: object) -> list:
    return list(value) if isinstance(value, (nn.ParameterList, list, tuple)) else [value]


def available_strategies() -> dict[str, str]:
    """Registered strategy names with a one-line description each."""
    return STRATEGIES.available()


def choose_strategy(name: str, params: dict | None = None) -> Checked[Callable[..., Strategy]]:
    """Strategy ``name`` with ``params`` validated (no model needed): unknown names and bad
    values raise :class:`~mtlkit.errors.ConfigError` before any training. The trainer
    builds the strategy from it (``.build(model)``) without checking them again."""
    return STRATEGIES.entry(name).check(params or {}, "strategy")


def check_strategy(name: str, params: dict | None = None) -> dict:
    """Every setting of strategy ``name``, ``params`` validated (see
    :func:`choose_strategy`)."""
    return dict(choose_strategy(name, params).params)


def streaming_strategies() -> list[str]:
    """Names of the strategies that train from a stream."""
    return [name for name in STRATEGIES.names() if _class_of(name).streams]


def check_streams(name: str) -> None:
    """A clear error when strategy ``name`` cannot train from a stream."""
    if not _class_of(name).streams:
        raise ConfigError(
            f"strategy {name!r} needs the training data in memory (its steps pick rows "
            "anywhere in the split); train without streaming, or use one of the strategies "
            f"that stream: {', '.join(streaming_strategies())}."
        )


def _class_of(name: str) -> type[Strategy]:
    target = STRATEGIES.entry(name).target
    return target.func if isinstance(target, partial) else target


def make_strategy(name: str, model: MTLModel, **params: object) -> Strategy:
    """Strategy ``name`` built for ``model`` with its (validated) settings."""
    return choose_strategy(name, params).build(model)


def present_indices(present: torch.Tensor) -> list[int]:
    """Indices of the tasks a step trains."""
    return present.nonzero().flatten().tolist()


def add_extra(objective: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    return objective if extra is None else objective + extra


class WeightRecord:
    """Mean weight a strategy gave each task over an epoch (NaN for a task never trained)."""

    def __init__(self, n_tasks: int, device: torch.device) -> None:
        self._sum = torch.zeros(n_tasks, device=device)
        self._count = torch.zeros(n_tasks, device=device)
        self._epoch: list[float] | None = None

    def add(self, idx: list[int], weights: torch.Tensor) -> None:
        """Record one step's ``weights`` of the tasks ``idx``."""
        self._sum[idx] += weights.detach().to(self._sum)
        self._count[idx] += 1

    def end_epoch(self) -> None:
        counted = self._count > 0
        mean = self._sum / self._count.clamp(min=1)
        mean[~counted] = float("nan")
        self._epoch = mean.tolist() if counted.any() else None
        self._sum.zero_()
        self._count.zero_()

    def epoch_weights(self) -> list[float] | None:
        """The last finished epoch's mean weights (None before the first, or if none)."""
        return self._epoch
