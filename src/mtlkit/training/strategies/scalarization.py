"""Strategies that backpropagate one scalar function of the task losses (no per-task gradients):
random loss weights (RLW), the geometric mean (GLS), smooth Tchebycheff (STCH) and FAMO, with
the scalarizers of ``torchjd``."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from functools import partial

import torch
from torchjd import scalarization

from mtlkit.models.base import MTLModel
from mtlkit.params import Float, Int, Range
from mtlkit.training.strategies.base import (
    STRATEGIES,
    Strategy,
    WeightRecord,
    add_extra,
    present_indices,
    register_strategy,
)


class Scalarized(Strategy):
    """Backpropagate ``scalarize(losses of the present tasks)``.

    The history records each task's effective weight, the derivative of the scalar with
    respect to the task's loss, averaged over the epoch's steps.
    """

    sparse_gradients = True

    def __init__(self, model: MTLModel) -> None:
        super().__init__(model)
        self._record = WeightRecord(self.n_tasks, self.device)

    @abstractmethod
    def scalarize(self, losses: torch.Tensor, idx: list[int]) -> torch.Tensor:
        """One scalar from the ``(len(idx),)`` losses of the present tasks ``idx``."""

    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        idx = present_indices(present)
        selected = losses[idx]
        if not idx:
            add_extra(selected.sum(), extra).backward()
            return
        with self.own_random():  # RLW draws its weights
            objective = self.scalarize(selected, idx)
        (weights,) = torch.autograd.grad(objective, selected, retain_graph=True)
        self._record.add(idx, weights)
        add_extra(objective, extra).backward()

    def end_epoch(self, train_losses: torch.Tensor) -> None:
        self._record.end_epoch()

    def task_weights(self) -> list[float] | None:
        return self._record.epoch_weights()


class Stateless(Scalarized):
    """A stateless torchjd scalarizer of the present tasks' losses:

    - ``rlw``, random loss weighting (Lin et al., "Reasonable Effectiveness of Random
      Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022): each step draws
      ``w = softmax(N(0, I))`` and minimises ``sum_k w_k L_k`` (``Random``); ``rgw`` draws the
      same weights for the shared parameters' gradients instead;
    - ``gls``, the geometric loss strategy (Chennupati et al., "MultiNet++: Multi-Stream
      Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning", CVPR
      Workshops 2019): minimise ``(prod_k L_k)^(1/T)`` (``GeometricMean``); each task's
      effective weight is ``GM / (T L_k)``, so no task's loss scale dominates.
    """

    def __init__(self, model: MTLModel, scalarizer: Callable[[], scalarization.Scalarizer]):
        super().__init__(model)
        self._scalarizer = scalarizer()

    def scalarize(self, losses: torch.Tensor, idx: list[int]) -> torch.Tensor:
        return self._scalarizer(losses)


STATELESS = {
    "rlw": (
        scalarization.Random,
        "RLW: task losses weighted by softmax of Gaussian draws, anew each step "
        "(Lin et al., TMLR 2022)",
    ),
    "gls": (
        scalarization.GeometricMean,
        "GLS: minimise the geometric mean of the task losses (Chennupati et al., CVPRW 2019)",
    ),
}
for _name, (_factory, _description) in STATELESS.items():
    STRATEGIES.add(_name, partial(Stateless, scalarizer=_factory), _description)


@register_strategy(
    "stch",
    "STCH: smooth Tchebycheff (soft maximum) of the log losses relative to a nadir point "
    "(Lin et al., ICML 2024)",
    params=[
        Float(
            "mu",
            1.0,
            "smoothing: small mu approaches the maximum",
            low=0.0,
            open_low=True,
            search=Range(0.01, 1.0, log=True),
        ),
        Int(
            "warmup_epochs",
            4,
            "epochs of plain summed log losses; the next epoch's mean losses are the nadir",
            low=0,
        ),
    ],
)
class SmoothTchebycheff(Scalarized):
    """Smooth Tchebycheff scalarisation (Lin et al., "Smooth Tchebycheff Scalarization for
    Multi-Objective Optimization", ICML 2024), in its multi-task form.

    For ``warmup_epochs`` epochs (and one more, whose mean loss per task is recorded as the
    nadir point ``n_k``) a step minimises ``sum_k log L_k``; afterwards
    ``T mu logsumexp_k(log(L_k / n_k) / mu)`` over the present tasks (torchjd's ``STCH``
    scalarizer with unit preferences), a smooth maximum that pushes on the task furthest
    from its nadir. A task never labelled in the nadir epoch keeps ``n_k = 1``.
    """

    def __init__(self, model: MTLModel, mu: float, warmup_epochs: int) -> None:
        super().__init__(model)
        self.mu, self.warmup_epochs = mu, warmup_epochs
        self.epoch = 0
        self._sum = torch.zeros(self.n_tasks, device=self.device)
        self._count = torch.zeros(self.n_tasks, device=self.device)
        self.nadir: torch.Tensor | None = None

    def scalarize(self, losses: torch.Tensor, idx: list[int]) -> torch.Tensor:
        if self.nadir is None:
            if self.epoch == self.warmup_epochs:
                self._sum[idx] += losses.detach()
                self._count[idx] += 1
            return torch.log(losses + 1e-20).sum()
        values = torch.log(losses / self.nadir[idx] + 1e-20)
        stch = scalarization.STCH(self.mu, weights=torch.ones_like(values))
        return len(idx) * stch(values)

    def end_epoch(self, train_losses: torch.Tensor) -> None:
        super().end_epoch(train_losses)
        if self.epoch == self.warmup_epochs:
            seen = self._count > 0
            self.nadir = torch.where(seen, self._sum / self._count.clamp(min=1), 1.0)
        self.epoch += 1


@register_strategy(
    "famo",
    "FAMO: loss-only weights that make every task's log loss fall at the same rate, O(1) "
    "per step (Liu et al., NeurIPS 2023)",
    params=[
        Float("lr", 0.025, "learning rate of the weights' Adam", low=0.0, open_low=True),
        Float("weight_decay", 1e-3, "weight decay of the weights' Adam", low=0.0),
    ],
)
class FAMO(Scalarized):
    """Fast adaptive multitask optimisation (Liu et al., "FAMO: Fast Adaptive Multitask
    Optimization", NeurIPS 2023), with torchjd's ``FAMO`` scalarizer.

    A step minimises ``c sum_k z_k log L_k`` with ``z = softmax(w)`` and ``c`` normalising the
    update to a convex combination of the task gradients. After the optimizer step the losses
    are recomputed on the same batch (:meth:`after_step`) and ``w`` takes one Adam step
    (``lr``, ``weight_decay``) towards the task whose log loss fell least. One forward pass
    more per step, no per-task gradients. The logits are kept per set of tasks present in a
    batch, so partially labelled batches never move a full set's weights.
    """

    def __init__(self, model: MTLModel, lr: float, weight_decay: float) -> None:
        super().__init__(model)
        self.lr, self.weight_decay = lr, weight_decay
        self._famo: dict[tuple[int, ...], scalarization.FAMO] = {}
        self._last: tuple[int, ...] | None = None

    def scalarize(self, losses: torch.Tensor, idx: list[int]) -> torch.Tensor:
        key = tuple(idx)
        if key not in self._famo:
            famo = scalarization.FAMO(len(key), lr=self.lr, weight_decay=self.weight_decay)
            self._famo[key] = famo.to(self.device)
        self._last = key
        return self._famo[key](losses)

    def after_step(self, step_losses: Callable[[], torch.Tensor]) -> None:
        if self._last is not None:
            self._famo[self._last].update(step_losses()[list(self._last)])
            self._last = None
