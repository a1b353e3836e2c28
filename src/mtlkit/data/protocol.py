"""The one data protocol: what training and the experiments ask of data, in memory or streamed.

mtlkit holds data in two ways: a :class:`~mtlkit.data.schema.MultiTaskTable` keeps every row
in memory, a :class:`~mtlkit.data.streaming_table.StreamingTable` reads a Parquet dataset record
batch by record batch. Code outside this package never asks which one it has:

- **tables** (:data:`Table`): both give their length, ``feature_names`` and
  ``label_summary()`` (what :func:`~mtlkit.data.splits.check_splits` checks, for both). The
  steps that need other parts of the data layer are the functions below, dispatched on the
  table's type here and only here: :func:`split` (train / validation / test), :func:`fit`
  (a preprocessor fitted on the rows), :func:`encode` (the rows as :class:`EncodedData`),
  :func:`tasks` (the tasks the labels make) and :func:`is_table`;
- **encoded data** (:class:`EncodedData`): the rows encoded by a fitted preprocessor, as
  tensors in memory (:class:`~mtlkit.data.tensors.TensorData`) or as a stream of them
  (:class:`~mtlkit.data.streaming_data.StreamingData`). The trainer reads batches, shards
  and labels through it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import singledispatch
from typing import Protocol

import numpy as np
import torch

from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.schema import MultiTaskTable, TaskSpec
from mtlkit.data.splits import split_table
from mtlkit.data.stream_fit import fit_preprocessor
from mtlkit.data.stream_split import split_stream
from mtlkit.data.streaming_data import StreamingData
from mtlkit.data.streaming_table import StreamingTable
from mtlkit.data.tensors import Batch
from mtlkit.errors import DataError

#: Labelled rows: in memory, or a Parquet dataset read in record batches.
Table = MultiTaskTable | StreamingTable


class EncodedData(Protocol):
    """Rows encoded for a model, in memory or streamed: what the trainer reads.

    ``len()`` counts the rows (of the data before ``shard``); ``batches`` yields one epoch of
    :class:`~mtlkit.data.tensors.Batch` objects (with ``shuffle``, in an order drawn from
    ``generator``, the same on every rank), ``num_batches`` counts them without reading;
    ``shard`` gives rank ``rank`` of ``world_size`` its share of every batch (data-parallel
    training); ``to`` puts rows held in memory on a device (a stream's batches are moved
    one by one). ``all_labelled()`` says, without a pass over the rows, that every row has
    every label (the trainer then skips counting labels per step); ``label_chunks()`` yields
    the labels and masks ``(n, T)`` of every row in one pass (of the data before ``shard``);
    ``kept_rows(mask)`` picks the labelled rows whose predictions a run record keeps.
    ``in_memory`` says whether every row is held at once (strategies that pick rows by their
    labels need it).
    """

    in_memory: bool

    def __len__(self) -> int: ...

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]: ...

    def num_batches(self, batch_size: int) -> int: ...

    def shard(self, rank: int, world_size: int) -> EncodedData: ...

    def to(self, device: torch.device | str) -> EncodedData: ...

    def all_labelled(self) -> bool: ...

    def label_chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def kept_rows(self, mask: np.ndarray) -> np.ndarray: ...


def is_table(value: object) -> bool:
    """Whether ``value`` is a table (in memory or streamed), as opposed to files, frames or
    arrays still to be read."""
    return isinstance(value, (MultiTaskTable, StreamingTable))


def _not_a_table(value: object) -> DataError:
    return DataError(
        f"expected a MultiTaskTable (load_tables) or a StreamingTable (stream_tables), got "
        f"{type(value).__name__}."
    )


@singledispatch
def split(table: Table, fractions: Sequence[float], seed: int = 0) -> tuple[Table, Table, Table]:
    """(train, validation, test) of ``table``, fixed by ``seed``: rows stratified on every
    task's labels in memory (:func:`~mtlkit.data.splits.split_table`), whole row groups for
    a stream (:func:`~mtlkit.data.stream_split.split_stream`)."""
    raise _not_a_table(table)


@split.register(MultiTaskTable)
def _(table: MultiTaskTable, fractions: Sequence[float], seed: int = 0) -> tuple:
    return split_table(table, fractions, seed=seed)


@split.register(StreamingTable)
def _(table: StreamingTable, fractions: Sequence[float], seed: int = 0) -> tuple:
    return split_stream(table, fractions, seed=seed)


@singledispatch
def fit(table: Table, preprocessor: Preprocessor) -> Preprocessor:
    """``preprocessor`` fitted on the rows of ``table`` (a stream in one pass, see
    :func:`~mtlkit.data.stream_fit.fit_preprocessor`)."""
    raise _not_a_table(table)


@fit.register(MultiTaskTable)
def _(table: MultiTaskTable, preprocessor: Preprocessor) -> Preprocessor:
    return preprocessor.fit(table)


@fit.register(StreamingTable)
def _(table: StreamingTable, preprocessor: Preprocessor) -> Preprocessor:
    return fit_preprocessor(table, preprocessor)


@singledispatch
def encode(table: Table, preprocessor: Preprocessor, require_labels: bool = True) -> EncodedData:
    """The rows of ``table`` encoded by the fitted ``preprocessor`` (labels recoded to its
    tasks and masked where missing); with ``require_labels=False`` label columns the table
    lacks are masked out (prediction)."""
    raise _not_a_table(table)


@encode.register(MultiTaskTable)
def _(table: MultiTaskTable, preprocessor: Preprocessor, require_labels: bool = True):
    return preprocessor.transform(table, require_labels)


@encode.register(StreamingTable)
def _(table: StreamingTable, preprocessor: Preprocessor, require_labels: bool = True):
    return StreamingData(table, preprocessor, require_labels=require_labels)


@singledispatch
def tasks(table: Table) -> list[TaskSpec]:
    """The tasks of ``table``'s labels (a stream infers them in one pass over its rows,
    with every value check of fitting a preprocessor)."""
    raise _not_a_table(table)


@tasks.register(MultiTaskTable)
def _(table: MultiTaskTable) -> list[TaskSpec]:
    return list(table.tasks)


@tasks.register(StreamingTable)
def _(table: StreamingTable) -> list[TaskSpec]:
    return list(fit_preprocessor(table).schema().tasks)
