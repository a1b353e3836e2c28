"""In-memory tensors of a split and index-sliced mini-batches (no per-row Dataset objects)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
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

    def to(self, device: torch.device | str) -> Batch:
        """The same rows on ``device`` (no copy when they are already there)."""
        return Batch(
            self.x_cat.to(device), self.x_num.to(device), self.y.to(device), self.mask.to(device)
        )


def rank_part(n: int, rank: int, world_size: int) -> slice:
    """The rows ``rank`` of ``world_size`` takes of ``n`` rows: a contiguous share, sizes
    differing by at most one."""
    return slice(n * rank // world_size, n * (rank + 1) // world_size)


@dataclass
class TensorData(Batch):
    """A whole split as tensors; `batches` slices it without copying row by row.

    With ``world_size > 1`` (data-parallel training, see :meth:`shard`) the split is still
    whole on every rank, and ``batches`` and ``subset`` give rank ``rank`` its share of each
    batch: the ranks' shares of one batch together are the batch one process would train on.
    """

    rank: int = 0
    world_size: int = 1
    #: Every row is held at once (see :class:`~mtlkit.data.protocol.EncodedData`).
    in_memory: ClassVar[bool] = True

    def shard(self, rank: int, world_size: int) -> TensorData:
        """This split as rank ``rank`` of ``world_size`` sees it (the tensors are shared)."""
        return replace(self, rank=rank, world_size=world_size)

    def all_labelled(self) -> bool:
        """Whether every row has every label."""
        return bool(self.mask.all())

    def label_chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The labels and label masks of every row, as one chunk."""
        yield self.y, self.mask

    def kept_rows(self, mask: np.ndarray) -> np.ndarray:
        """The labelled rows whose predictions a run record keeps: all of them."""
        return mask

    def num_batches(self, batch_size: int) -> int:
        """Batches per epoch (the same on every rank); a last batch with fewer rows than
        ranks is left out when sharded."""
        full, rest = divmod(len(self), batch_size)
        return full + (rest >= self.world_size)

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        """Yield mini-batches; with ``shuffle`` the split is permuted once, then sliced (the
        same permutation on every rank whose generator is seeded alike).

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
        for k in range(self.num_batches(batch_size)):
            start = k * batch_size
            part = rank_part(min(batch_size, n - start), self.rank, self.world_size)
            rows = slice(start + part.start, start + part.stop)
            yield Batch(data.x_cat[rows], data.x_num[rows], data.y[rows], data.mask[rows])

    def to(self, device: torch.device | str) -> TensorData:
        """The same split on ``device`` (no copy when it is already there)."""
        return replace(self, **vars(Batch.to(self, device)))

    def subset(self, index: torch.Tensor) -> TensorData:
        """Rows selected by an index or boolean tensor (this rank's share of them when
        sharded), as an unsharded split."""
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        index = index[rank_part(len(index), self.rank, self.world_size)]
        return TensorData(self.x_cat[index], self.x_num[index], self.y[index], self.mask[index])
