"""Tiny files in the real formats of the built-in data sets, made on the fly."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mtlkit.datasets.census import COLUMNS

# A few real values per column; numbers are drawn, everything else is picked from these.
_CENSUS_VALUES = {
    "class_worker": ["Private", "Not in universe", "Self-employed-not incorporated"],
    "education": [
        "High school graduate",
        "Children",
        "Bachelors degree(BA AB BS)",
        "Masters degree(MA MS MEng MEd MSW MBA)",
        "10th grade",
    ],
    "marital_stat": ["Never married", "Married-civilian spouse present", "Divorced"],
    "sex": ["Female", "Male"],
    "citizenship": ["Native- Born in the United States", "Foreign born- Not a citizen of U S"],
    "race": ["White", "Black"],
    "mig_chg_msa": ["?", "Nonmover"],
    "country_self": ["United-States", "Mexico", "NA"],
    "hisp_origin": ["All other", "Mexican-American", "Puerto Rican", "Do not know", "NA"],
    "income_50k": ["- 50000.", "50000+."],
}
_NUMERIC = {"age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends"}
_NUMERIC |= {"instance_weight", "num_emp", "weeks_worked"}
_CODES = {"det_ind_code": 52, "det_occ_code": 47, "own_or_self": 3, "vet_benefits": 3}


def census_rows(n: int, seed: int = 0) -> list[list[str]]:
    """``n`` rows of the 42 Census-Income fields (as strings)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        row = []
        for column in COLUMNS:
            if column == "year":
                row.append(str(rng.choice([94, 95])))
            elif column in _CODES:
                row.append(str(rng.integers(0, _CODES[column])))
            elif column == "instance_weight":
                row.append(f"{rng.uniform(100, 3000):.2f}")
            elif column in _NUMERIC:
                row.append(str(rng.integers(0, 90)))
            else:
                row.append(str(rng.choice(_CENSUS_VALUES.get(column, ["Not in universe", "Yes"]))))
        rows.append(row)
    return rows


def write_census(path: Path, rows: list[list[str]]) -> Path:
    """Write rows as UCI does: ', ' separated (values with a leading space), no header."""
    text = "".join(", ".join(r) + "\n" for r in rows).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text) if path.name.endswith(".gz") else text)
    return path


@pytest.fixture
def make_census():
    """``make_census(path, n_rows, seed)`` writes a census file and returns its rows."""

    def make(path: Path, n_rows: int, seed: int = 0) -> list[list[str]]:
        rows = census_rows(n_rows, seed)
        write_census(path, rows)
        return rows

    return make


@pytest.fixture
def census_file(tmp_path, make_census) -> tuple[Path, list[list[str]]]:
    path = tmp_path / "census-income.test.gz"
    return path, make_census(path, 300)
