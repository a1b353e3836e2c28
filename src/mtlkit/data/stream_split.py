"""Train / validation / test splits of a streamed table, by row groups.

A stream cannot be split row by row like :func:`~mtlkit.data.splits.split_table` (which sorts
every row by its labels) without reading all of it for each split. Here whole row groups go to
one split: the row groups are put in an order drawn from ``seed``, and dealt out along that
order until each split holds its fraction of the rows. Every split then reads only its own
row groups. The fractions hold to within one row group's rows; nothing is stratified, so keep
row groups small next to the data (``csv_to_parquet`` writes 65,536 rows) and rows in no
meaningful order within a file, or give separate validation and test folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from mtlkit.data.splits import SPLIT_NAMES, split_fractions
from mtlkit.data.streaming_table import StreamingTable
from mtlkit.errors import DataError


def split_stream(
    table: StreamingTable, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> tuple[StreamingTable, ...]:
    """(train, validation, test) streams of ``table``'s row groups, one split each; a split
    with fraction 0 has no row groups. The same ``seed`` gives the same split."""
    wanted = split_fractions(fractions, len(SPLIT_NAMES))
    groups = table.row_groups
    order = np.random.default_rng(seed).permutation(len(groups))
    sizes = np.array([groups[i].num_rows for i in order], dtype=float)
    middle = np.cumsum(sizes) - sizes / 2  # where each row group sits in the dealt rows
    split = np.searchsorted(np.cumsum(wanted)[:-1] * sizes.sum(), middle, side="right")
    parts = tuple(
        replace(table, row_groups=[groups[i] for i in sorted(order[split == k])])
        for k in range(len(SPLIT_NAMES))
    )
    for name, share, part in zip(SPLIT_NAMES, wanted, parts):
        if share > 0 and not part.num_rows:
            raise DataError(
                f"{table.source!r} has {len(groups)} row groups, too few to give the {name} "
                f"split its {share:.0%} of the rows (a split takes whole row groups); write "
                "smaller row groups (csv_to_parquet(rows_per_group=...)) or give separate "
                "validation and test data."
            )
    return parts
