"""Strategies that rescale tracked task gradients on the shared parameters: DB-MTL, MoCo and
MetaBalance (not in torchjd; written from the papers)."""

from __future__ import annotations

from abc import abstractmethod

import torch

from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.params import Float, Str
from mtlkit.training.diagnostics import task_gradients
from mtlkit.training.strategies.base import register_strategy
from mtlkit.training.strategies.gradients import SharedGradientStrategy

#: The tracking rate of the task gradients, ``beta / step^beta_sigma``.
BETA = Float("beta", 0.9, "tracking (EMA) rate of the task gradients", low=0.0, high=1.0)
BETA_SIGMA = Float("beta_sigma", 0.0, "decay exponent of the tracking rate", low=0.0)


class Tracked(SharedGradientStrategy):
    """A method with a running state of the task gradients: one state per set of tasks
    present in a batch (so an absent task's state never moves), built by :meth:`initial`
    and advanced by :meth:`combine`."""

    def __init__(self, model: MTLModel) -> None:
        super().__init__(model)
        self._states: dict[tuple[int, ...], dict] = {}

    def shared_backward(self, objectives: torch.Tensor, idx: list[int]) -> torch.Tensor:
        grads = task_gradients(objectives, self._shared).detach()
        key = tuple(idx)
        if key not in self._states:
            self._states[key] = self.initial(grads)
        state = self._states[key]
        state["step"] = state.get("step", 0) + 1
        direction, weights = self.combine(grads, objectives.detach(), state)
        self.accumulate(direction)
        return weights

    def initial(self, grads: torch.Tensor) -> dict:
        """The state before the first step, for Jacobians shaped like ``grads``."""
        return {"buffer": torch.zeros_like(grads)}

    @abstractmethod
    def combine(
        self, grads: torch.Tensor, values: torch.Tensor, state: dict
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The update direction and the task weights from the ``(t, P)`` gradients of the
        objectives ``values``; updates ``state`` in place."""


@register_strategy(
    "db_mtl",
    "DB-MTL: log losses, then every task's averaged gradient scaled to the largest norm "
    "(Lin et al., 2023)",
    params=[BETA, BETA_SIGMA],
)
class DBMTL(Tracked):
    """Dual-balancing multi-task learning (Lin et al., "Dual-Balancing for Multi-Task
    Learning", arXiv:2308.12029, 2023).

    Loss-scale balancing: every task's objective is ``log(L_k + 1e-8)`` (task-specific
    parameters train on it too). Gradient-magnitude balancing: an exponential moving average
    ``m_k`` of each task's gradient on the shared parameters (rate ``beta / step^beta_sigma``)
    is rescaled to the largest norm, and the update is ``sum_k (max_j ||m_j|| / ||m_k||) m_k``.
    The weights in the history are these scale factors.
    """

    def __init__(self, model: MTLModel, beta: float, beta_sigma: float) -> None:
        super().__init__(model)
        self.beta, self.beta_sigma = beta, beta_sigma

    def objectives(self, losses: torch.Tensor, idx: list[int]) -> torch.Tensor:
        return torch.log(losses[idx] + 1e-8)

    def combine(self, grads, values, state):
        rate = self.beta / state["step"] ** self.beta_sigma
        state["buffer"] = grads + rate * (state["buffer"] - grads)
        norms = state["buffer"].norm(dim=1)
        alpha = norms.max() / (norms + 1e-8)
        return alpha @ state["buffer"], alpha


@register_strategy(
    "moco",
    "MoCo: tracked, loss-scaled gradients and weights by a stochastic min-norm step "
    "(Fernando et al., ICLR 2023)",
    params=[
        BETA.with_default(0.5),
        BETA_SIGMA.with_default(0.5),
        Float("gamma", 0.1, "step size of the weights", low=0.0, open_low=True),
        Float("gamma_sigma", 0.5, "decay exponent of the weights' step size", low=0.0),
        Float("rho", 0.0, "L2 regularisation of the weights", low=0.0),
    ],
)
class MoCo(Tracked):
    """Multi-objective gradient correction (Fernando et al., "Mitigating Gradient Bias in
    Multi-objective Learning: A Provably Convergent Approach", ICLR 2023).

    Each task's gradient on the shared parameters is normalised and scaled by its loss,
    ``g_k L_k / ||g_k||`` (as in the authors' and LibMTL's code), and tracked:
    ``y <- y - beta_t (y - g)``. The weights take one step of the regularised min-norm
    problem, ``lambda <- softmax(lambda - gamma_t (Y Y^T + rho I) lambda)``, and the update is
    ``Y^T lambda``; ``beta_t = beta / t^beta_sigma``, ``gamma_t = gamma / t^gamma_sigma``.
    Tracking removes the bias that noisy mini-batch gradients give MGDA-like weights.
    """

    def __init__(
        self,
        model: MTLModel,
        beta: float,
        beta_sigma: float,
        gamma: float,
        gamma_sigma: float,
        rho: float,
    ) -> None:
        super().__init__(model)
        self.beta, self.beta_sigma = beta, beta_sigma
        self.gamma, self.gamma_sigma, self.rho = gamma, gamma_sigma, rho

    def initial(self, grads: torch.Tensor) -> dict:
        n = len(grads)
        return {"buffer": torch.zeros_like(grads), "weights": grads.new_full((n,), 1.0 / n)}

    def combine(self, grads, values, state):
        step = state["step"]
        scaled = grads / (grads.norm(dim=1, keepdim=True) + 1e-8) * values.unsqueeze(1)
        y = state["buffer"] - self.beta / step**self.beta_sigma * (state["buffer"] - scaled)
        lam = state["weights"]
        gram = y @ y.T + self.rho * torch.eye(len(y), device=y.device, dtype=y.dtype)
        lam = torch.softmax(lam - self.gamma / step**self.gamma_sigma * gram @ lam, dim=-1)
        state["buffer"], state["weights"] = y, lam
        return lam @ y, lam


@register_strategy(
    "metabalance",
    "MetaBalance: auxiliary tasks' gradients rescaled, per shared tensor, towards the target "
    "task's gradient magnitude (He et al., WWW 2022)",
    params=[
        Str("target", None, "the target (main) task; None: the first task", optional=True),
        Float(
            "relax_factor",
            0.7,
            "how far auxiliary magnitudes move to the target's (1: all the way)",
            low=0.0,
            high=1.0,
        ),
        Float("beta", 0.9, "EMA rate of the gradient magnitudes", low=0.0, high=1.0),
    ],
)
class MetaBalance(SharedGradientStrategy):
    """MetaBalance (He et al., "MetaBalance: Improving Multi-Task Recommendations via Adapting
    Gradient Magnitudes of Auxiliary Tasks", WWW 2022).

    One task is the target, the others help it. For every shared parameter tensor, each
    task's gradient norm is tracked by an exponential moving average ``m_k`` (rate ``beta``,
    started at the first norm seen); an auxiliary task's gradient ``g_k`` becomes
    ``g_k (r m_target / m_k + 1 - r)`` with ``r = relax_factor``, so auxiliary gradients can
    neither drown nor vanish next to the target's. The update is the target's gradient plus
    the rescaled auxiliary ones. A task's averages move only on steps that train it. The
    weights in the history are each task's factor averaged over the shared tensors.
    """

    def __init__(
        self, model: MTLModel, target: str | None, relax_factor: float, beta: float
    ) -> None:
        super().__init__(model)
        names = model.task_names
        if target is not None and target not in names:
            raise ConfigError(
                f"strategy metabalance: target {target!r} is not a task; the tasks are {names}."
            )
        self.target = 0 if target is None else names.index(target)
        self.relax_factor, self.beta = relax_factor, beta
        self._sizes = [p.numel() for p in self._shared]
        self.magnitudes = torch.full((self.n_tasks, len(self._sizes)), float("nan"))
        self.magnitudes = self.magnitudes.to(self.device)

    def shared_backward(self, objectives: torch.Tensor, idx: list[int]) -> torch.Tensor:
        parts = task_gradients(objectives, self._shared).detach().split(self._sizes, dim=1)
        norms = torch.stack([part.norm(dim=1) for part in parts], dim=1)  # (t, tensors)
        old = self.magnitudes[idx]
        self.magnitudes[idx] = torch.where(
            torch.isnan(old), norms, self.beta * old + (1 - self.beta) * norms
        )
        target = self.magnitudes[self.target]
        ratio = torch.nan_to_num(target / (self.magnitudes[idx] + 1e-12), nan=1.0)
        factor = self.relax_factor * ratio + (1 - self.relax_factor)
        if self.target in idx:
            factor[idx.index(self.target)] = 1.0
        direction = torch.cat(
            [(factor[:, j : j + 1] * part).sum(0) for j, part in enumerate(parts)]
        )
        self.accumulate(direction)
        return factor.mean(1)
