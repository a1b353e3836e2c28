"""Masked per-task losses: a row without a task's label contributes nothing to that task."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mtlkit.data.schema import TaskSpec
from mtlkit.models.outputs import probability_bce


def elementwise_loss(
    spec: TaskSpec, output: torch.Tensor, target: torch.Tensor, is_probability: bool = False
) -> torch.Tensor:
    """Per-row loss: BCE (binary), cross-entropy (multiclass) or squared error (regression).

    Binary outputs are logits, or probabilities where the model says so (``is_probability``,
    e.g. ESMM's pCTCVR = pCTR x pCVR).
    """
    if spec.kind == "binary" and is_probability:
        return probability_bce(output, target)
    if spec.kind == "binary":
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")
    if spec.kind == "multiclass":
        return F.cross_entropy(output, target.long(), reduction="none")
    return F.mse_loss(output, target, reduction="none")


def masked_task_losses(
    tasks: Sequence[TaskSpec],
    logits: dict[str, torch.Tensor],
    y: torch.Tensor,
    mask: torch.Tensor | None,
    probability_outputs: frozenset[str] = frozenset(),
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean loss over the labelled rows of each task, as a ``(T,)`` tensor.

    ``probability_outputs`` names the binary tasks whose outputs are probabilities, not logits.
    ``counts`` (default: the batch's labelled rows per task) divides the sums instead; in
    data-parallel training, the counts of the whole batch over all ranks give each rank its
    share of the batch's mean.

    Unlabelled rows carry a finite placeholder target and are multiplied by a zero weight, so
    their gradient is exactly zero. A task with no labelled row in the batch gets loss 0.
    ``mask`` None says every row is labelled for every task (the same losses, without the
    product by a weight of one; without ``counts``, a mean over the rows).
    When every task is binary with logits, their losses are one operation on the stacked
    logits (the same values up to float rounding, in fewer steps).
    """
    weights = None if mask is None else mask.to(y.dtype)
    if counts is None and (weights is not None or not len(y)):
        counts = y.new_zeros(y.shape[1]) if weights is None else weights.sum(0)
    if counts is not None:
        counts = counts.clamp(min=1.0)

    def mean(rows: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """The mean over the labelled rows of task ``k``'s (or all tasks') row losses."""
        if counts is None:  # every row labelled
            return rows.mean(0)
        if weights is not None:
            rows = rows * (weights if k is None else weights[:, k])
        return rows.sum(0) / (counts if k is None else counts[k])

    if all(spec.kind == "binary" and spec.name not in probability_outputs for spec in tasks):
        stacked = torch.stack([logits[spec.name] for spec in tasks], 1)
        return mean(F.binary_cross_entropy_with_logits(stacked, y, reduction="none"))
    losses = [
        mean(
            elementwise_loss(spec, logits[spec.name], y[:, k], spec.name in probability_outputs), k
        )
        for k, spec in enumerate(tasks)
    ]
    return torch.stack(losses)


def output_to_scores(
    spec: TaskSpec, output: torch.Tensor, is_probability: bool = False
) -> torch.Tensor:
    """Model output -> P(y=1) (binary), class probabilities (multiclass) or the prediction."""
    if spec.kind == "binary":
        return output if is_probability else torch.sigmoid(output)
    if spec.kind == "multiclass":
        return torch.softmax(output, dim=-1)
    return output
