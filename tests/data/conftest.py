"""Small partially labelled tables shared by the data-layer tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from mtlkit.data.loading import load_tables
from mtlkit.data.schema import MultiTaskTable
from mtlkit.data.synthetic import make_synthetic


def _people(n: int, seed: int) -> pd.DataFrame:
    """Features of ``n`` people: a numeric, a low-cardinality integer and a string column."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "hours": rng.normal(40, 10, n).round(1),
            "children": rng.integers(0, 4, n),
            "education": rng.choice(["school", "college", "university"], n),
        }
    )


@pytest.fixture
def people() -> Callable[[int, int], pd.DataFrame]:
    """Factory of feature frames: ``people(n_rows, seed)``."""
    return _people


@pytest.fixture
def income_marital_frames() -> dict[str, pd.DataFrame]:
    """Source "a" labels only income, "b" only marital, "c" both (partial labels)."""
    rng = np.random.default_rng(0)
    a = _people(300, 1).assign(income=rng.choice([" - 50000.", " 50000+."], 300))
    b = _people(200, 2).assign(marital=rng.choice(["married", "single", "divorced"], 200))
    c = _people(100, 3).assign(
        income=rng.choice([" - 50000.", " 50000+."], 100),
        marital=rng.choice(["married", "single", "divorced"], 100),
    )
    return {"a": a, "b": b, "c": c}


@pytest.fixture
def merged_table(income_marital_frames: dict[str, pd.DataFrame]) -> MultiTaskTable:
    return load_tables(income_marital_frames, ["income", "marital"])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """300 synthetic rows whose ``label1`` is missing on every fourth row (partial labels)."""
    frame = make_synthetic(300, n_features=4, correlation=0.9, seed=1)
    frame.loc[frame.index % 4 == 0, "label1"] = np.nan
    return frame
