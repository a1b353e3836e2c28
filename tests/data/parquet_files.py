"""Writing a frame as a Parquet folder, for the tests that stream it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(folder: Path, frame: pd.DataFrame, group_rows: int = 25) -> Path:
    """``frame`` as ``folder/a.parquet`` in row groups of ``group_rows``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), folder / "a.parquet", group_rows
    )
    return folder
