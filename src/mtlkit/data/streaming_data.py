"""Training and evaluation batches read from a streamed table, in bounded memory.

:class:`StreamingData` yields the same :class:`~mtlkit.data.tensors.Batch` objects as
:meth:`TensorData.batches <mtlkit.data.tensors.TensorData.batches>`. Each epoch it reads its
rank's share of the row groups, encodes every record batch with the fitted preprocessor and
cuts batches of exactly ``batch_size`` rows (the last one of an epoch may be smaller). With
``shuffle`` the row groups are permuted and the rows pass through a shuffle buffer, so memory
holds at most ``buffer_rows + read_rows + batch_size`` encoded rows, whatever the data size
(plus the ``prefetch`` record batches a background thread encodes ahead, and the row group
Arrow is decoding).
"""

from __future__ import annotations

import math
import queue
import threading
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from typing import ClassVar, TypeVar

import numpy as np
import pandas as pd
import torch

from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.streaming_table import READ_ROWS, Piece, RowGroup, StreamingTable, labelled_table
from mtlkit.data.tensors import Batch
from mtlkit.errors import ConfigError, DataError
from mtlkit.validation import check_non_negative_int, check_positive_int

BUFFER_ROWS = 250_000
#: Predictions a run record of streamed data keeps per task (a seeded sample; its metrics
#: use every row): they only draw the report's ROC and precision-recall curves.
KEPT_PREDICTIONS = 100_000
T = TypeVar("T")


def _tensors(batch: Batch) -> tuple[torch.Tensor, ...]:
    return batch.x_cat, batch.x_num, batch.y, batch.mask


def _cat(parts: Sequence[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    return Batch(*(torch.cat(ts) for ts in zip(*map(_tensors, parts))))


def _rows(batch: Batch, index: slice | torch.Tensor) -> Batch:
    if isinstance(index, slice):
        return Batch(*(t[index] for t in _tensors(batch)))
    return Batch(*(t.index_select(0, index) for t in _tensors(batch)))


def shard(
    row_groups: Sequence[RowGroup],
    order: Sequence[int],
    rank: int,
    world_size: int,
    equal_steps: bool = True,
) -> list[Piece]:
    """The pieces of row groups rank ``rank`` of ``world_size`` reads, in reading order.

    The row groups, taken in ``order``, form one sequence of ``N`` rows; rank ``r`` reads the
    rows from ``floor(r N / W)``: with ``equal_steps`` exactly ``floor(N / W)`` of them (every
    rank the same count, hence the same number of batches; the at most ``W - 1`` rows left
    over are skipped that epoch), otherwise up to ``floor((r + 1) N / W)`` (all rows, for
    evaluation). A row group on a boundary is read by both ranks, each its own rows.
    """
    total = sum(g.num_rows for g in row_groups)
    lo = total * rank // world_size
    hi = lo + total // world_size if equal_steps else total * (rank + 1) // world_size
    pieces, offset = [], 0
    for i in order:
        group = row_groups[i]
        start, stop = max(lo - offset, 0), min(hi - offset, group.num_rows)
        if start < stop:
            pieces.append((group, start, stop))
        offset += group.num_rows
    return pieces


#: Rows of a chunk, all of them in order (index None) or those an index tensor picks.
Part = tuple[Batch, torch.Tensor | None]


class _Queue:
    """Encoded rows waiting to be cut into batches, in order; nothing is copied until a batch
    is taken (a slice is a view, an index picks rows out of a shuffled block)."""

    def __init__(self) -> None:
        self.parts: deque[Part] = deque()
        self.rows = 0

    def add(self, parts: Sequence[Part]) -> None:
        for data, index in parts:
            self.parts.append((data, index))
            self.rows += len(data) if index is None else len(index)

    @property
    def held_rows(self) -> int:
        """Rows of the chunks kept alive (an index part keeps all of its block)."""
        return sum(len(data) for data in {id(d): d for d, _ in self.parts}.values())

    def take(self, n: int) -> Batch:
        """The next ``n`` rows."""
        taken = []
        self.rows -= n
        while n:
            data, index = self.parts.popleft()
            size = len(data) if index is None else len(index)
            k = min(n, size)
            if index is None:
                taken.append(_rows(data, slice(0, k)))
                rest = (_rows(data, slice(k, None)), None)
            else:
                taken.append(_rows(data, index[:k]))
                rest = (data, index[k:])
            if k < size:
                self.parts.appendleft(rest)
            n -= k
        return _cat(taken)

    def compact(self) -> None:
        """Copy out the rows left, so that the blocks they come from can be freed."""
        if self.rows:
            rest = self.take(self.rows)
            self.add([(rest, None)])


class ShuffleBuffer:
    """Chunks gathered until they hold ``capacity`` rows, then handed out as one block in a
    random order: a block shuffle within a bounded buffer."""

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity, self.rng = capacity, rng
        self.chunks: list[Batch] = []
        self.rows = 0

    def push(self, chunk: Batch) -> list[Part]:
        """Add ``chunk``; once ``capacity`` rows are held, returns them all as a shuffled block."""
        self.chunks.append(chunk)
        self.rows += len(chunk)
        return self.drain() if self.rows >= self.capacity else []

    def drain(self) -> list[Part]:
        """The rows held, as one block in a random order; empties the buffer."""
        if not self.rows:
            return []
        block = (_cat(self.chunks), torch.from_numpy(self.rng.permutation(self.rows)))
        self.chunks, self.rows = [], 0
        return [block]


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Generator[T, None, None], depth: int) -> Iterator[T]:
    """``items`` produced by a background thread at most ``depth`` ahead of the consumer (as
    is, without a thread, when ``depth`` is 0). An error in the thread is raised here; when
    the consumer stops early, the thread stops too."""
    if depth == 0:
        yield from items
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop, done = threading.Event(), object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failed(error))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="mtlkit-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class StreamingData:
    """Encoded batches of a :class:`~mtlkit.data.streaming_table.StreamingTable`: the streaming
    counterpart of :class:`~mtlkit.data.tensors.TensorData`.

    ``rank``/``world_size`` select this process's shard for data-parallel training (see
    :func:`shard`; with ``equal_steps`` every rank yields the same number of batches, so no
    rank waits for another at the end of an epoch); ``batch_size`` stays the size of the
    batch all ranks train on together, each rank yielding ``batch_size // world_size`` rows
    of it. ``buffer_rows`` bounds the shuffle
    buffer, ``read_rows`` the record batches read; a background thread reads and encodes up
    to ``prefetch`` record batches ahead of training (0: no thread). With
    ``require_labels=False`` label columns absent from the data are masked out (prediction).
    """

    def __init__(
        self,
        table: StreamingTable,
        preprocessor: Preprocessor,
        *,
        buffer_rows: int = BUFFER_ROWS,
        read_rows: int = READ_ROWS,
        rank: int = 0,
        world_size: int = 1,
        equal_steps: bool = True,
        require_labels: bool = True,
        prefetch: int = 1,
    ) -> None:
        self.table, self.preprocessor = table, preprocessor
        self.buffer_rows = check_positive_int("buffer_rows", buffer_rows)
        self.read_rows = check_positive_int("read_rows", read_rows)
        self.world_size = check_positive_int("world_size", world_size)
        self.rank = check_non_negative_int("rank", rank)
        if rank >= world_size:
            raise ConfigError(f"rank must be below world_size ({world_size}), got {rank}.")
        self.equal_steps, self.require_labels = equal_steps, require_labels
        self.prefetch = check_non_negative_int("prefetch", prefetch)
        self.tasks = list(preprocessor.schema().tasks)
        names = preprocessor.feature_names  # indicator names are not columns: never read
        labels = [t.name for t in self.tasks if t.name in table.labels]  # none to score rows
        self.columns = [*names["categorical"], *names["numeric"], *labels]
        self._encode(table.empty_frame(), table.source)  # missing columns fail here, not later
        order = range(len(table.row_groups))
        self.num_rows = sum(b - a for _, a, b in self._shard(order))
        if self.num_rows == 0:
            raise DataError(
                f"{table.source!r} has no rows; remove it or fill it."
                if table.num_rows == 0
                else f"{table.source!r} has {table.num_rows} rows, too few to give each of "
                f"{world_size} processes at least one."
            )
        #: The most encoded rows the last iteration held at once (buffer and pending rows).
        self.peak_rows = 0

    #: Rows are read batch by batch (see :class:`~mtlkit.data.protocol.EncodedData`).
    in_memory: ClassVar[bool] = False

    def __len__(self) -> int:
        """Rows this rank yields per epoch."""
        return self.num_rows

    def to(self, device: torch.device | str) -> StreamingData:
        """This stream: its batches are read on the CPU and moved one at a time."""
        return self

    def all_labelled(self) -> bool:
        """False: a stream is not read to find out (the trainer counts labels per step)."""
        return False

    def label_chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The labels and label masks of this rank's rows, one record batch at a time."""
        for _, chunk in self.chunks():
            yield chunk.y, chunk.mask

    def kept_rows(self, mask: np.ndarray) -> np.ndarray:
        """The labelled rows whose predictions a run record keeps: at most
        :data:`KEPT_PREDICTIONS` per task, drawn with a fixed seed."""
        kept = np.zeros_like(mask)
        rng = np.random.default_rng(0)
        for k in range(mask.shape[1]):
            rows = np.flatnonzero(mask[:, k])
            if len(rows) > KEPT_PREDICTIONS:
                rows = rng.choice(rows, KEPT_PREDICTIONS, replace=False)
            kept[rows, k] = True
        return kept

    def shard(self, rank: int, world_size: int) -> StreamingData:
        """The same stream as rank ``rank`` of ``world_size`` reads it (with equal steps)."""
        return StreamingData(
            self.table,
            self.preprocessor,
            buffer_rows=self.buffer_rows,
            read_rows=self.read_rows,
            rank=rank,
            world_size=world_size,
            require_labels=self.require_labels,
            prefetch=self.prefetch,
        )

    def local_batch_size(self, batch_size: int) -> int:
        """Rows of this rank's part of a batch of ``batch_size`` rows."""
        batch_size = check_positive_int("batch_size", batch_size)
        if batch_size < self.world_size:
            raise ConfigError(
                f"batch_size ({batch_size}) must be at least the number of processes "
                f"({self.world_size}): each trains its share of every batch."
            )
        return batch_size // self.world_size

    def num_batches(self, batch_size: int) -> int:
        """Batches per epoch, the same on every rank when ``equal_steps``."""
        return math.ceil(self.num_rows / self.local_batch_size(batch_size))

    def _shard(self, order: Sequence[int]) -> list[Piece]:
        groups = self.table.row_groups
        return shard(groups, order, self.rank, self.world_size, self.equal_steps)

    def _encode(self, frame: pd.DataFrame, path: str) -> Batch:
        table = labelled_table(self.table.checked(frame, path), path, self.tasks)
        try:
            return self.preprocessor.transform(table, self.require_labels)
        except DataError as err:
            raise DataError(f"{path}: {err}") from err

    def _chunks(self, pieces: Sequence[Piece]) -> Generator[Batch, None, None]:
        for path, frame in self.table.frames(pieces, self.columns, self.read_rows):
            yield self._encode(frame, path)

    def chunks(self) -> Iterator[tuple[str, Batch]]:
        """This rank's rows in file order, one encoded record batch at a time, each with the
        file it comes from (e.g. to write predictions next to their source)."""
        pieces = self._shard(range(len(self.table.row_groups)))
        for path, frame in self.table.frames(pieces, self.columns, self.read_rows):
            yield path, self._encode(frame, path)

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        """One epoch of batches. Without ``shuffle``: the rows in file order. With it: the row
        groups in an order drawn from ``generator`` (identically on every rank when their
        generators agree), then through the shuffle buffer."""
        batch_size = self.local_batch_size(batch_size)
        order: Sequence[int] = range(len(self.table.row_groups))
        buffer = None
        if shuffle:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            order = np.random.default_rng(seed).permutation(len(order)).tolist()
            capacity = min(self.buffer_rows, self.num_rows)
            buffer = ShuffleBuffer(capacity, np.random.default_rng([seed, self.rank]))
        rows = _Queue()
        self.peak_rows = 0
        for chunk in prefetched(self._chunks(self._shard(order)), self.prefetch):
            rows.add([(chunk, None)] if buffer is None else buffer.push(chunk))
            held = rows.held_rows + (0 if buffer is None else buffer.rows)
            self.peak_rows = max(self.peak_rows, held)
            while rows.rows >= batch_size:
                yield rows.take(batch_size)
            rows.compact()
        if buffer is not None:
            rows.add(buffer.drain())
        while rows.rows:
            yield rows.take(min(batch_size, rows.rows))
