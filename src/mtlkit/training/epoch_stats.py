"""An epoch's training loss and accuracy per task, reduced in chunks of steps.

A step's statistics are a dozen tiny tensor operations (loss sums, label counts, predicted
labels compared with the labels); on a CPU each costs a few microseconds of dispatch, which is
several % of a small model's step. So the steps' tensors are only kept (references to the
outputs, labels and masks) and reduced together every :data:`CHUNK_ROWS` rows: the same
counts, and the same loss sums up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtlkit.data.schema import TaskSpec
from mtlkit.data.tensors import Batch

#: Rows of steps kept before they are reduced (bounds the memory the kept outputs take).
CHUNK_ROWS = 65536


class EpochStats:
    """Sums over one epoch's steps of each task's loss (weighted by its labelled rows), of
    the labelled rows and of the correct predictions (0 for regression tasks)."""

    def __init__(
        self,
        tasks: Sequence[TaskSpec],
        probability_outputs: frozenset[str],
        device: torch.device | str = "cpu",
    ) -> None:
        self.tasks = list(tasks)
        self.binary = [k for k, t in enumerate(tasks) if t.kind == "binary"]
        self.multiclass = [k for k, t in enumerate(tasks) if t.kind == "multiclass"]
        #: The decision threshold of each binary task (0.5 for probabilities, 0 for logits).
        self.thresholds = [
            0.5 if tasks[k].name in probability_outputs else 0.0 for k in self.binary
        ]
        self.loss_sum, self.count, self.correct = torch.zeros(3, len(tasks), device=device)
        self._steps: list[tuple] = []
        self._rows = 0

    def add(
        self,
        out: dict[str, torch.Tensor],
        batch: Batch,
        losses: torch.Tensor,
        counts: torch.Tensor,
        present: torch.Tensor | None = None,
    ) -> None:
        """Record a step: the model's outputs on ``batch``, its ``(T,)`` task ``losses`` and
        labelled rows ``counts``; only the tasks in ``present`` (None: all) count."""
        mask = batch.mask
        if present is not None:
            mask, counts = mask & present, counts * present
        outputs = [out[self.tasks[k].name].detach() for k in (*self.binary, *self.multiclass)]
        self._steps.append((outputs, batch.y, mask, losses.detach(), counts))
        self._rows += len(batch)
        if self._rows >= CHUNK_ROWS:
            self._reduce()

    def totals(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``(T,)`` sums so far (floats): loss x labelled rows, labelled rows, correct
        predictions."""
        self._reduce()
        return self.loss_sum, self.count, self.correct

    @torch.no_grad()
    def _reduce(self) -> None:
        """Fold the kept steps into the sums."""
        if not self._steps:
            return
        outputs, ys, masks, losses, counts = zip(*self._steps)
        self._steps, self._rows = [], 0
        counts = torch.stack(counts)
        self.loss_sum += (torch.stack(losses) * counts).sum(0)
        self.count += counts.sum(0)
        self.correct += self._correct(outputs, torch.cat(ys), torch.cat(masks))

    def _correct(
        self, outputs: tuple[list[torch.Tensor], ...], y: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Correct predictions per task over the kept steps (int64)."""
        scored = [torch.cat(column) for column in zip(*outputs)]
        nb = len(self.binary)
        if nb == len(self.tasks):  # (no column indexing, a copy)
            return self._binary_hits(scored, y, mask)
        hits = torch.zeros(len(self.tasks), dtype=torch.int64, device=y.device)
        if nb:
            hits[self.binary] = self._binary_hits(
                scored[:nb], y[:, self.binary], mask[:, self.binary]
            )
        for k, scores in zip(self.multiclass, scored[nb:]):
            hits[k] = ((scores.argmax(-1).to(y.dtype) == y[:, k]) & mask[:, k]).sum()
        return hits

    def _binary_hits(
        self, scored: list[torch.Tensor], y: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Correct predictions of the binary tasks, whose scores, labels and masks are given."""
        one = len(set(self.thresholds)) == 1  # a number: ~3x faster than a broadcast row
        thresholds = self.thresholds[0] if one else torch.tensor(self.thresholds, device=y.device)
        right = (torch.stack(scored, 1) > thresholds).to(y.dtype) == y
        return (right if mask is None else right & mask).sum(0)
