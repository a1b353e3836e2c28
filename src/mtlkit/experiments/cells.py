"""The cells of a comparison grid and their files (torch-free: the report reads them).

Each finished cell is one JSON file under ``RUN_DIR/cells/`` holding its
:class:`~mtlkit.evaluation.record.RunRecord`, written atomically; the final tables are
always rebuilt from these files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import pandas as pd

from mtlkit.errors import ConfigError
from mtlkit.evaluation.record import History, RunRecord
from mtlkit.experiments.config import BASELINE, CompareConfig

CONFIG_FILE = "config.json"
#: The command line that started the grid (for the report's "Reproduce" section).
COMMAND_FILE = "command.txt"
CELLS_DIR = "cells"
#: The training state of cells that did not converge (see :func:`state_path`).
STATE_DIR = "state"


@dataclass(frozen=True)
class Cell:
    """One training run of the grid: a model x strategy x seed, on one data variant (a task
    correlation of synthetic data, a share of the scarce task's training labels)."""

    model: str
    strategy: str
    seed: int
    model_params: dict
    label: str
    correlation: float | None = None
    label_fraction: float | None = None

    @property
    def run_id(self) -> str:
        return f"{self.label}__{self.strategy}__seed{self.seed}"

    @property
    def id(self) -> str:
        """A file-name-safe, unique name, e.g. ``corr+0.90__frac0.1__mmoe__joint__seed1``."""
        return self._file_name(self.run_id)

    @property
    def study_id(self) -> str:
        """The name of the tuning study whose settings this cell trains with (one per model
        x strategy x data variant, shared by every seed), e.g. ``corr+0.90__mmoe__joint``."""
        return self._file_name(f"{self.label}__{self.strategy}")

    def _file_name(self, name: str) -> str:
        prefix = "" if self.correlation is None else f"corr{self.correlation:+.2f}__"
        if self.label_fraction is not None:
            prefix += f"frac{self.label_fraction:g}__"
        return re.sub(r"[^A-Za-z0-9_.+=-]+", "-", prefix + name)

    @property
    def tags(self) -> dict:
        """The data variant, as the result columns ``correlation`` and ``label_fraction``."""
        tags = {"correlation": self.correlation, "label_fraction": self.label_fraction}
        return {k: v for k, v in tags.items() if v is not None}


def grid_cells(config: CompareConfig) -> list[Cell]:
    """The cells of ``config``: the baseline with the joint strategy, every other model with
    every strategy, each for every seed, correlation and label fraction."""
    variants = product(config.correlations or [None], config.label_fraction_values() or [None])
    cells = []
    for (corr, fraction), choice in product(variants, config.grid_models()):
        strategies = ["joint"] if choice.label == BASELINE else config.strategies
        for strategy, seed in product(strategies, config.seeds):
            cells.append(
                Cell(choice.model, strategy, seed, choice.params, choice.label, corr, fraction)
            )
    return cells


def cell_path(run_dir: Path, cell: Cell) -> Path:
    return Path(run_dir) / CELLS_DIR / f"{cell.id}.json"


def state_path(run_dir: Path, cell: Cell) -> Path:
    """Where an unconverged cell keeps what continuing it needs (weights, optimizer...)."""
    return Path(run_dir) / STATE_DIR / f"{cell.id}.pt"


def needs_training(run_dir: Path, cell: Cell, epochs: int) -> bool:
    """Whether ``cell`` must train: it has no record yet, or its run did not converge and
    stopped at an epoch cap below ``epochs`` (then it is continued)."""
    path = cell_path(run_dir, cell)
    if not path.is_file():
        return True
    history = History.from_dict(json.loads(path.read_text())["history"])
    return not history.converged and len(history.epochs) < epochs


def load_cells(run_dir: Path, config: CompareConfig | None = None) -> list[RunRecord]:
    """The record of every finished cell of ``run_dir``, in the grid order of ``config``
    (else by file name)."""
    files = sorted((Path(run_dir) / CELLS_DIR).glob("*.json"))
    if not files:
        raise ConfigError(
            f"{run_dir} holds no finished grid cells ({CELLS_DIR}/*.json); run "
            "'mtlkit compare' into it first."
        )
    records = {path.stem: RunRecord.from_dict(json.loads(path.read_text())) for path in files}
    if config is None:
        return list(records.values())
    order = {c.id: i for i, c in enumerate(grid_cells(config))}
    return [records[k] for k in sorted(records, key=lambda k: order.get(k, len(order)))]


def results_frame(records: list[RunRecord]) -> pd.DataFrame:
    """The tidy table: one row per run x task x split x metric."""
    return pd.DataFrame([row for r in records for row in r.rows()])
