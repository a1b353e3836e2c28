"""Shared fixtures: small synthetic tables and their splits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.splits import split_table
from mtlkit.data.synthetic import make_synthetic

# The suite trains many small models on small batches: one thread is faster on 2 cores and
# does not fight the other process when the machine is busy.
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def synthetic_splits():
    """Binary two-task synthetic data at correlation 0.9, split 70/15/15."""
    frame = make_synthetic(6000, n_features=20, correlation=0.9, seed=0)
    table = load_tables(frame, labels=["label0", "label1"])
    return split_table(table, seed=0)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (present in CI, absent in a user's clone)."""
    return SHARED_DATA


@pytest.fixture
def census_path() -> Path:
    path = SHARED_DATA / "census-income.test.gz"
    if not path.is_file():
        pytest.skip("../shared/data/census-income.test.gz is not present")
    return path
