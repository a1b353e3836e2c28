"""TAG's lookahead inter-task affinity, measured on a model while it trains.

Fifty et al., "Efficiently Identifying Task Groupings for Multi-Task Learning", NeurIPS 2021,
eq. 2-3: on a batch X, take one step of the shared parameters along task i's gradient alone,
``theta_s' = theta_s - lr * grad_{theta_s} L_i(X)`` (task heads unchanged), and measure how
task j's loss on the same batch changed: ``Z_{i->j} = 1 - L_j(X, theta_s') / L_j(X, theta_s)``.
Positive: a step for task i lowers task j's loss. ``Z`` is not symmetric.

As the reference implementation (google-research/tag) does, the value is divided by the
step size ``lr``, so it is a relative loss decrease per unit step, comparable across learning
rates (the groups do not change: a positive factor). Deliberate differences, documented:

- the reference's lookahead is its optimizer's update (SGD with momentum: the momentum buffer
  plus the task's step); mtlkit trains with Adam, whose shared momentum would shift every
  column alike and whose per-coordinate scaling reweights the step, so the lookahead is the
  plain gradient step of the paper's eq. 2 with Adam's learning rate;
- the reference measures on every training step; mtlkit on a few evenly spaced steps of
  each epoch (the lookahead "on a subset of steps" the paper allows for cost), on the step's
  own batch before its update, as the reference does;
- losses are taken in evaluation mode (no dropout), so ``L_j`` before and after the step see
  the same network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mtlkit.data.tensors import Batch, TensorData
from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.training.diagnostics import probe_steps, task_gradients
from mtlkit.training.losses import masked_task_losses
from mtlkit.training.trainer import fused_adam_supported


def _losses(model: MTLModel, batch: Batch) -> torch.Tensor:
    out = model(batch.x_cat, batch.x_num)
    return masked_task_losses(
        model.schema.tasks, out, batch.y, batch.mask, model.probability_outputs
    )


def lookahead_affinity(model: MTLModel, batch: Batch, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Two ``(T, T)`` matrices on one batch: ``Z[i, j] = Z_{i->j} / lr`` and the cosine of
    tasks i and j's gradients on the shared parameters (NaN where task i or j has no
    labelled row in the batch, or task j's loss is 0). The model's weights are unchanged
    afterwards; it is left in evaluation mode."""
    shared = [p for p in model.shared_parameters() if p.requires_grad]
    if not shared:
        raise ConfigError(
            f"model {type(model).__name__} shares no parameters between tasks, so no task's "
            "step can move another's loss; measure affinity with a shared model "
            "(shared_bottom, mmoe, ...)."
        )
    model.eval()
    n_tasks = len(model.schema.tasks)
    labelled = batch.mask.any(0).nonzero().flatten().tolist()
    affinity = np.full((n_tasks, n_tasks), math.nan)
    cosine = np.full((n_tasks, n_tasks), math.nan)
    if not labelled:
        return affinity, cosine
    losses = _losses(model, batch)
    grads = task_gradients(losses[labelled], shared).detach()
    norms = grads.norm(dim=1, keepdim=True).clamp_min(torch.finfo(grads.dtype).tiny)
    unit = grads / norms
    cosine[np.ix_(labelled, labelled)] = (unit @ unit.T).cpu().numpy()
    before = losses.detach()
    saved = [p.detach().clone() for p in shared]
    try:
        with torch.no_grad():
            for row, i in enumerate(labelled):
                offset = 0
                for param, original in zip(shared, saved):
                    step = grads[row, offset : offset + param.numel()].view_as(param)
                    param.copy_(original - lr * step)
                    offset += param.numel()
                after = _losses(model, batch)
                for j in labelled:
                    if before[j] > 0:
                        affinity[i, j] = float(1.0 - after[j] / before[j]) / lr
    finally:
        with torch.no_grad():
            for param, original in zip(shared, saved):
                param.copy_(original)
    return affinity, cosine


@dataclass
class Probed:
    """What :func:`train_and_probe` measured: one ``(T, T)`` matrix per probed step."""

    affinity: list[np.ndarray]
    cosine: list[np.ndarray]

    @staticmethod
    def mean(matrices: list[np.ndarray]) -> np.ndarray:
        """The mean per pair over the probed steps, ignoring NaN (NaN if never measured)."""
        stacked = np.stack(matrices)
        seen = np.isfinite(stacked)
        total = np.where(seen, stacked, 0.0).sum(0)
        return np.where(seen.any(0), total / np.maximum(seen.sum(0), 1), math.nan)


def train_and_probe(
    model: MTLModel,
    data: TensorData,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    probes_per_epoch: int,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
) -> Probed:
    """Train ``model`` jointly on ``data`` for exactly ``epochs`` epochs (the unweighted sum
    of the masked task losses, Adam: the trainer's joint training, without validation or
    early stopping) and, on ``probes_per_epoch`` evenly spaced steps of each epoch, before the
    step's update and on its own batch, measure :func:`lookahead_affinity` and the cosine of
    the task gradients on the shared parameters (:func:`task_gradients`, as the trainer's
    diagnostics)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(
        params, lr=lr, weight_decay=weight_decay, fused=fused_adam_supported(params)
    )
    generator = torch.Generator().manual_seed(seed)
    probed = Probed([], [])
    for _ in range(epochs):
        probes = probe_steps(data.num_batches(batch_size), probes_per_epoch)
        for step, batch in enumerate(data.batches(batch_size, shuffle=True, generator=generator)):
            if step in probes:
                affinity, cosine = lookahead_affinity(model, batch, lr)
                probed.affinity.append(affinity)
                probed.cosine.append(cosine)
            model.train()
            optimizer.zero_grad(set_to_none=True)
            _losses(model, batch).sum().backward()
            optimizer.step()
        if on_epoch is not None:
            on_epoch()
    return probed
