"""In-memory tensors of a split and index-sliced mini-batches (no per-row Dataset objects)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """One mini-batch: categorical ids, numeric inputs, labels and label masks."""

    x_cat: torch.Tensor  # (B, n_cat) int64
    x_num: torch.Tensor  # (B, n_num) float32
    y: torch.Tensor  # (B, T) float32; placeholder 0 where mask is False
    mask: torch.Tensor  # (B, T) bool

    def __len__(self) -> int:
        return self.y.shape[0]


@dataclass
class TensorData(Batch):
    """A whole split as tensors; `batches` slices it without copying row by row."""

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        """Yield mini-batches; with ``shuffle`` the split is permuted once, then sliced.

        The permutation uses ``index_select``, several times faster on a CPU than indexing
        with ``tensor[perm]``.
        """
        n = len(self)
        if shuffle:
            perm = torch.randperm(n, generator=generator).to(self.y.device)
            data = Batch(
                *(t.index_select(0, perm) for t in (self.x_cat, self.x_num, self.y, self.mask))
            )
        else:
            data = self
        for start in range(0, n, batch_size):
            end = start + batch_size
            yield Batch(
                data.x_cat[start:end],
                data.x_num[start:end],
                data.y[start:end],
                data.mask[start:end],
            )

    def to(self, device: torch.device | str) -> TensorData:
        """The same split on ``device`` (no copy when it is already there)."""
        return TensorData(
            self.x_cat.to(device), self.x_num.to(device), self.y.to(device), self.mask.to(device)
        )

    def subset(self, index: torch.Tensor) -> TensorData:
        """Rows selected by an index or boolean tensor."""
        return TensorData(self.x_cat[index], self.x_num[index], self.y[index], self.mask[index])
