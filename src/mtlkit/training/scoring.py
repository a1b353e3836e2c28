"""Scoring a model: its scores per task, batch by batch, in memory or streamed.

The scores are probabilities (classification) or predictions (regression), after the
trainer's post-hoc calibration when there is one; the trainer's ``predict_scores``,
``labelled_scores`` and ``evaluate`` and its per-epoch validation read them from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from mtlkit.data.protocol import EncodedData
from mtlkit.data.schema import TaskSpec
from mtlkit.data.tensors import Batch
from mtlkit.models.base import MTLModel
from mtlkit.models.blocks import reused_folds
from mtlkit.training.allocator import keep_freed_memory
from mtlkit.training.calibration import Calibration
from mtlkit.training.losses import output_to_scores

#: Rows per batch when scoring (prediction, validation): small enough for a batch's
#: activations to stay in the CPU's caches, large enough for two threads to share one
#: (census MMoE, 2026-12-06, quiet 2-core machine: with torch's default 2 threads 1.10x the
#: rows/s of 2,048-row batches, 0.97x those of 16,384; with 1 thread 0.99x of 2,048 and
#: 1.33x of 16,384; BENCHMARKS.md).
SCORING_BATCH = 4096


@torch.inference_mode()
def scored(
    model: MTLModel,
    tasks: Sequence[TaskSpec],
    calibration: Calibration | None,
    data: EncodedData,
    batch_size: int,
    conditional: bool = False,
) -> Iterator[tuple[Batch, dict[str, torch.Tensor]]]:
    """Each batch of ``data`` (in order) with the model's scores per task, on the CPU."""
    keep_freed_memory()
    model.eval()
    device = next(model.parameters()).device
    folds: dict = {}  # the weights do not change while the batches are scored
    for batch in data.batches(batch_size):
        on_device = batch.to(device)
        with reused_folds(folds):
            out = model(on_device.x_cat, on_device.x_num)
        scores = {
            spec.name: output_to_scores(
                spec, out[spec.name], spec.name in model.probability_outputs
            ).cpu()
            for spec in tasks
        }
        if conditional:
            scores |= {k: v.cpu() for k, v in model.conditional_outputs().items()}
        if calibration is not None:  # a funnel's also recomposes its conditionals
            calibrated = calibration(scores)
            scores = {k: calibrated[k] for k in scores}
        yield batch, scores


def predict_scores(
    batches: Iterator[tuple[Batch, dict[str, torch.Tensor]]], tasks: Sequence[TaskSpec]
) -> dict[str, np.ndarray]:
    """The scores of :func:`scored` ``batches`` joined per task (and per conditional output)."""
    parts: dict[str, list[torch.Tensor]] = {t.name: [] for t in tasks}
    for _, scores in batches:
        for name, values in scores.items():
            parts.setdefault(name, []).append(values)
    return {t: torch.cat(p).numpy() for t, p in parts.items()}


def labelled_scores(
    batches: Iterator[tuple[Batch, dict[str, torch.Tensor]]], tasks: Sequence[TaskSpec]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The labels ``(N, T)`` (0 where missing), label masks ``(N, T)`` and scores per task
    of :func:`scored` ``batches``, joined."""
    labels, masks, parts = [], [], {t.name: [] for t in tasks}
    for batch, scores in batches:
        labels.append(batch.y)
        masks.append(batch.mask)
        for name, values in scores.items():
            parts[name].append(values)
    scores = {t: torch.cat(p).numpy() for t, p in parts.items()}
    return torch.cat(labels).numpy(), torch.cat(masks).numpy(), scores
