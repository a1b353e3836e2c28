"""Strategies that minimise a weighted sum of task losses: fixed, learned or adapted weights."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.params import Float, Floats
from mtlkit.training.diagnostics import task_gradients
from mtlkit.training.strategies.base import (
    STRATEGIES,
    Strategy,
    add_extra,
    present_indices,
    register_strategy,
)


class WeightedSum(Strategy):
    """Backpropagate ``sum_k w_k L_k`` over the tasks a step trains; subclasses set ``w``."""

    sparse_gradients = True

    @abstractmethod
    def weights(self) -> torch.Tensor:
        """The ``(T,)`` task weights used for the next step (may carry a graph)."""

    def objective(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if present.all():  # the same sum, without indexing (and its backward) on every step
            return (self.weights() * losses).sum()
        idx = present_indices(present)
        return (self.weights()[idx] * losses[idx]).sum()

    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        add_extra(self.objective(losses, present), extra).backward()

    def task_weights(self) -> list[float]:
        return self.weights().detach().tolist()


@register_strategy(
    "joint",
    "minimise the sum of task losses, equal or given fixed weights (weights=[...])",
    params=[
        Floats("weights", None, "one fixed weight >= 0 per task, in task order", low=0.0),
    ],
)
class Joint(WeightedSum):
    """Joint training: minimise the weighted sum of task losses (equal weights by default)."""

    def __init__(self, model: MTLModel, weights: Sequence[float] | None) -> None:
        super().__init__(model)
        if weights is not None and len(weights) != self.n_tasks:
            raise ConfigError(
                f"strategy weights: got {len(weights)} task weights for {self.n_tasks} tasks "
                f"{model.task_names}; give one weight per task, in task order."
            )
        if weights is not None and not any(weights):
            raise ConfigError("strategy weights: at least one task weight must be above 0.")
        fixed = [1.0] * self.n_tasks if weights is None else list(weights)
        self._w = torch.tensor(fixed, device=self.device)
        self._unit = all(w == 1.0 for w in fixed)

    def weights(self) -> torch.Tensor:
        return self._w

    def objective(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if self._unit and present.all():  # the same sum, without products by 1
            return losses.sum()
        return super().objective(losses, present)

    def linear_weights(self) -> torch.Tensor:
        return self._w


@register_strategy("uncertainty", "learned homoscedastic-uncertainty weights (Kendall et al. 2018)")
class Uncertainty(WeightedSum):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, "Multi-Task Learning Using
    Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018).

    Each task k learns ``s_k = log sigma_k^2`` and contributes ``c_k exp(-s_k) L_k + s_k / 2``
    with ``c_k = 1/2`` for regression and 1 for classification (the paper's two likelihoods).
    Noisier tasks (higher loss at the optimum) end up with smaller weights ``c_k exp(-s_k)``.
    """

    def __init__(self, model: MTLModel) -> None:
        super().__init__(model)
        self.log_vars = nn.ParameterList(
            [nn.Parameter(torch.zeros((), device=self.device)) for _ in range(self.n_tasks)]
        )
        self.scale = [0.5 if t.kind == "regression" else 1.0 for t in model.schema.tasks]

    def parameters(self) -> list[nn.Parameter]:
        return list(self.log_vars)

    def weights(self) -> torch.Tensor:
        return torch.stack([c * torch.exp(-s) for c, s in zip(self.scale, self.log_vars)])

    def objective(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        # Only the tasks trained by this step enter the graph: an absent task's s_k gets no
        # gradient (not a zero one that Adam's momentum would still act on).
        terms = [
            self.scale[k] * torch.exp(-self.log_vars[k]) * losses[k] + 0.5 * self.log_vars[k]
            for k in present_indices(present)
        ]
        return torch.stack(terms).sum()


@register_strategy(
    "dwa",
    "dynamic weight average from loss descent rates (Liu et al. 2019)",
    params=[
        Float("temperature", 2.0, "softmax temperature of the weights", low=0.0, open_low=True)
    ],
)
class DynamicWeightAverage(WeightedSum):
    """Dynamic weight average (Liu, Johns & Davison, "End-to-End Multi-Task Learning with
    Attention", CVPR 2019).

    Weights for epoch t are ``T softmax(r / temperature)`` with ``r_k = L_k(t-1) / L_k(t-2)``,
    the rate at which each task's training loss fell; equal for the first two epochs.
    """

    def __init__(self, model: MTLModel, temperature: float) -> None:
        super().__init__(model)
        self.temperature = temperature
        self._w = torch.ones(self.n_tasks, device=self.device)
        self._past: list[torch.Tensor] = []

    def weights(self) -> torch.Tensor:
        return self._w

    def linear_weights(self) -> torch.Tensor:
        return self._w

    def end_epoch(self, train_losses: torch.Tensor) -> None:
        self._past = [*self._past[-1:], train_losses.detach().clone()]
        if len(self._past) == 2:
            rate = self._past[1] / self._past[0].clamp(min=1e-12)
            self._w = self.n_tasks * torch.softmax(rate / self.temperature, dim=0)


@register_strategy(
    "gradnorm",
    "weights that balance task gradient norms (Chen et al. 2018)",
    params=[Float("alpha", 1.5, "strength of the restoring force", low=0.0, open_low=True)],
)
class GradNorm(WeightedSum):
    """GradNorm (Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing
    in Deep Multitask Networks", ICML 2018).

    Learns weights ``w_k`` so that each weighted task's gradient norm on the shared parameters,
    ``G_k = w_k ||grad L_k||``, approaches ``mean(G) * r_k^alpha``, where ``r_k`` is task k's
    loss relative to its first loss, normalised by the mean over tasks: tasks that train
    slower get larger gradients. Weights are renormalised to sum to T before each step.
    The norms are taken over all shared parameters (the paper uses the last shared layer;
    our tabular models are small enough for the whole set).
    """

    sparse_gradients = False  # it takes each task's gradient on the shared parameters

    def __init__(self, model: MTLModel, alpha: float) -> None:
        super().__init__(model)
        self.alpha = alpha
        self._w = nn.Parameter(torch.ones(self.n_tasks, device=self.device))
        self._initial = torch.full((self.n_tasks,), float("nan"), device=self.device)
        self._shared = [p for p in model.shared_parameters() if p.requires_grad]

    def parameters(self) -> list[nn.Parameter]:
        return [self._w]

    def weights(self) -> torch.Tensor:
        return self._w

    def backward(
        self, losses: torch.Tensor, present: torch.Tensor, extra: torch.Tensor | None = None
    ) -> None:
        with torch.no_grad():
            self._w.clamp_(min=1e-3)
            self._w.mul_(self.n_tasks / self._w.sum())
        idx = present_indices(present)
        first = torch.isnan(self._initial) & present
        self._initial[first] = losses.detach()[first]
        if len(idx) >= 2 and self._shared:
            norms = task_gradients(losses[idx], self._shared).norm(dim=1)
            weighted = self._w[idx] * norms
            ratio = losses.detach()[idx] / self._initial[idx].clamp(min=1e-12)
            target = weighted.mean().detach() * (ratio / ratio.mean()) ** self.alpha
            (weight_grad,) = torch.autograd.grad((weighted - target).abs().sum(), self._w)
            self._w.grad = weight_grad
        idx_losses = (self._w.detach()[idx] * losses[idx]).sum()
        add_extra(idx_losses, extra).backward()

    def task_weights(self) -> list[float]:
        w = self._w.detach().clamp(min=1e-3)
        return (w * self.n_tasks / w.sum()).tolist()


# LibMTL's names for the same methods.
STRATEGIES.variant("ew", of="joint", description="equal weighting: the same method as 'joint'")
STRATEGIES.variant(
    "uw",
    of="uncertainty",
    description="uncertainty weighting: the same method as 'uncertainty' (Kendall et al. 2018)",
)
