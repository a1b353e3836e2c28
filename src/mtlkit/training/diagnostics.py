"""Per-epoch task-conflict diagnostics: gradient cosine and norms, expert utilization.

Per-task gradients cost a backward pass per task, so they are measured on a few evenly spaced
batches of each epoch, not on every step (see ``TrainConfig.diagnostic_batches``). When the
step's gradient is a fixed weighted sum of the task losses' gradients (joint training), a
probed step's gradient is that sum of the per-task gradients just measured, so the probe costs
one backward pass less than the task count (see :meth:`ConflictMonitor.measure`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import torch
from torch import nn
from torchjd.autojac import jac

from mtlkit.evaluation.run_record import Diagnostics
from mtlkit.training.distributed import all_reduce

#: Up to this many losses, one backward pass per loss is faster on a CPU than torchjd's
#: batched (vmap) Jacobian: 1.2-2.4x for 2-4 tasks, measured; from 8 tasks on narrow
#: networks the batched one wins.
FEW_TASKS = 4


def task_gradients(losses: torch.Tensor, params: Sequence[nn.Parameter]) -> torch.Tensor:
    """``(T, P)`` matrix of each loss's gradient w.r.t. ``params``, flattened; keeps the graph.

    In data-parallel training the rows are summed over the ranks: with the trainer's global
    losses (:func:`mtlkit.training.distributed.global_losses`) they are the gradients of the
    whole batch's losses, the same on every rank. Every rank must then call this together.
    """
    params = list(params)
    if 0 < len(losses) <= FEW_TASKS:
        rows = [
            torch.cat([g.reshape(-1) for g in _grads(loss, params)]) for loss in losses.unbind()
        ]
        return all_reduce(torch.stack(rows))
    rows = jac(losses, params, retain_graph=True)
    return all_reduce(torch.cat([r.reshape(len(losses), -1) for r in rows], dim=1))


def _grads(loss: torch.Tensor, params: list[nn.Parameter]) -> tuple[torch.Tensor, ...]:
    """The gradient of ``loss`` w.r.t. each of ``params`` (zeros where it does not reach)."""
    return torch.autograd.grad(loss, params, retain_graph=True, materialize_grads=True)


def probe_steps(n_steps: int, n_probes: int) -> set[int]:
    """Up to ``n_probes`` evenly spaced step indices out of ``n_steps`` (none when 0)."""
    if n_probes <= 0 or n_steps <= 0:
        return set()
    return {int(i) for i in np.linspace(0, n_steps - 1, min(n_probes, n_steps)).round()}


class ConflictMonitor:
    """Accumulates gradient conflict and gate usage over the probed batches of one epoch."""

    def __init__(self, task_names: Sequence[str], shared: Sequence[nn.Parameter]) -> None:
        self.task_names = list(task_names)
        self.shared = [p for p in shared if p.requires_grad]
        self._cos: dict[tuple[int, int], list[float]] = {}
        self._norms: dict[int, list[float]] = {}
        self._gates: dict[str, list[torch.Tensor]] = {}

    def measure(
        self,
        losses: torch.Tensor,
        labelled: torch.Tensor,
        gates: dict[str, torch.Tensor],
        params: Sequence[nn.Parameter] | None = None,
    ) -> dict[int, tuple[torch.Tensor | None, ...]] | None:
        """Record one batch: task gradients of the ``labelled`` tasks and the gate weights.

        With ``params`` (every parameter the step trains, the shared ones among them) and up
        to :data:`FEW_TASKS` labelled tasks, each task's gradient is taken w.r.t. all of them
        and returned, task index -> one gradient per parameter (None where the task's loss
        does not reach it), for the step to reuse (:func:`weighted_gradients`); otherwise, and
        when nothing is shared, None.
        """
        for name, g in gates.items():
            self._gates.setdefault(name, []).append(g.detach().mean(0))
        idx = labelled.nonzero().flatten().tolist()
        if not self.shared or not idx:
            return None
        if params is None or len(idx) > FEW_TASKS:
            self._record(idx, task_gradients(losses[idx], self.shared).detach())
            return None
        losses = losses.unbind()
        per_task = {
            k: torch.autograd.grad(losses[k], params, retain_graph=True, allow_unused=True)
            for k in idx
        }
        position = {id(p): i for i, p in enumerate(params)}
        at = [position[id(p)] for p in self.shared]
        rows = [
            torch.cat(
                [
                    (torch.zeros_like(p) if g[i] is None else g[i]).reshape(-1)
                    for p, i in zip(self.shared, at)
                ]
            )
            for g in per_task.values()
        ]
        self._record(idx, all_reduce(torch.stack(rows)))
        return per_task

    def _record(self, idx: list[int], grads: torch.Tensor) -> None:
        """Norms and pairwise cosines of the tasks ``idx``'s gradient rows ``grads``."""
        with torch.no_grad():  # one Gram matrix: its diagonal holds the squared norms
            gram = (grads @ grads.T).tolist()
        norms = [math.sqrt(gram[row][row]) for row in range(len(idx))]
        for row, k in enumerate(idx):
            self._norms.setdefault(k, []).append(norms[row])
        for (ra, a), (rb, b) in combinations(enumerate(idx), 2):
            denom = norms[ra] * norms[rb]
            if denom > 0:
                self._cos.setdefault((a, b), []).append(gram[ra][rb] / denom)

    def summary(self) -> Diagnostics:
        """The epoch's diagnostics."""
        names = self.task_names
        pairs = {f"{names[a]}|{names[b]}": float(np.mean(v)) for (a, b), v in self._cos.items()}
        norms = {names[k]: float(np.mean(v)) for k, v in sorted(self._norms.items())}
        positive = [v for v in norms.values() if v > 0]
        return Diagnostics(
            grad_cosine=float(np.mean(list(pairs.values()))) if pairs else math.nan,
            grad_cosine_pairs=pairs,
            grad_norm=norms,
            grad_norm_ratio=max(positive) / min(positive) if len(positive) >= 2 else math.nan,
            expert_utilization={
                name: torch.stack(v).mean(0).tolist() for name, v in self._gates.items()
            },
        )


@torch.no_grad()
def weighted_gradients(
    params: Sequence[nn.Parameter],
    per_task: dict[int, tuple[torch.Tensor | None, ...]],
    weights: Sequence[float],
) -> None:
    """Set each parameter's ``.grad`` to ``sum_k weights[k] * per_task[k]`` (what a backward
    pass of ``sum_k weights[k] * L_k`` over the tasks of ``per_task`` gives, up to float
    rounding); a parameter no task reaches keeps no gradient."""
    for i, param in enumerate(params):
        terms = [(weights[k], g[i]) for k, g in per_task.items() if g[i] is not None]
        if not terms:
            continue
        grad = None
        for w, g in terms:
            term = g if w == 1.0 else g * w
            grad = term if grad is None else grad + term
        # As backward(): the parameter's layout (a sparse table's gradient stays sparse).
        if not grad.is_sparse and _layout(grad) != _layout(param):
            grad = torch.empty_strided(
                param.shape, param.stride(), dtype=grad.dtype, device=grad.device
            ).copy_(grad)
        param.grad = grad


def _layout(tensor: torch.Tensor) -> list[int]:
    """The strides of ``tensor``'s dimensions of more than one element (what autograd's
    gradient layout contract compares)."""
    return [st for st, n in zip(tensor.stride(), tensor.shape) if n > 1]
