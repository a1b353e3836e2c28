"""The cells of a comparison grid and their files (torch-free: the report reads them).

Each finished cell is one JSON file under ``RUN_DIR/cells/`` holding its
:class:`~mtlkit.evaluation.run_record.RunRecord`, written atomically; the final tables are
always rebuilt from these files.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import pandas as pd

from mtlkit.errors import ConfigError, DataWarning
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments.config import AUTO_GROUPS, BASELINE, CompareConfig, grouped_label
from mtlkit.files import read_json
from mtlkit.training.settings import DEFAULT_STRATEGY

CONFIG_FILE = "config.json"
#: The report of a run folder: its tables (each ``.csv`` and ``.parquet``), plots folder and
#: pages, written by mtlkit.reporting.report and kept by a tracked grid's parent run.
RESULTS_TABLE = "results"
SUMMARY_TABLE = "summary"
PLOTS_DIR = "plots"
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
#: What a tracked grid's parent run keeps of the report (files and folders of the run folder).
REPORT_FILES = (
    REPORT_HTML,
    REPORT_MD,
    f"{SUMMARY_TABLE}.csv",
    f"{RESULTS_TABLE}.csv",
    CONFIG_FILE,
    PLOTS_DIR,
)
#: The command line that started the grid (for the report's "Reproduce" section).
COMMAND_FILE = "command.txt"
CELLS_DIR = "cells"
#: The task affinity an ``auto`` grouping was chosen from (``mtlkit affinity``'s JSON).
AFFINITY_FILE = "affinity.json"
#: Suffix of a cell file set aside because it could not be read (its cell runs again).
CORRUPT_SUFFIX = ".corrupt"
#: The training state of cells that did not converge (see :func:`state_path`).
STATE_DIR = "state"


@dataclass(frozen=True)
class Cell:
    """One training run of the grid: a model x strategy x seed, on one data variant (a task
    correlation of synthetic data, a share of the scarce task's training labels), on every
    task or, for a grouped configuration, on one group of ``tasks``."""

    model: str
    strategy: str
    seed: int
    model_params: dict
    label: str
    correlation: float | None = None
    label_fraction: float | None = None
    tasks: tuple[str, ...] | None = None

    @property
    def run_id(self) -> str:
        return f"{self.name}__{self.strategy}__seed{self.seed}"

    @property
    def name(self) -> str:
        """The label, with the cell's task group: ``mmoe (grouped)[income+education]``."""
        return self.label if self.tasks is None else f"{self.label}[{'+'.join(self.tasks)}]"

    @property
    def id(self) -> str:
        """A file-name-safe, unique name, e.g. ``corr+0.90__frac0.1__mmoe__joint__seed1``."""
        return self._file_name(self.run_id)

    @property
    def study_id(self) -> str:
        """The name of the tuning study whose settings this cell trains with (one per model
        x strategy x data variant, shared by every seed), e.g. ``corr+0.90__mmoe__joint``."""
        return self._file_name(f"{self.name}__{self.strategy}")

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


def read_config(run_dir: Path) -> dict:
    """The saved configuration of a run folder (its ``config.json``), or one ConfigError
    line naming the file when it is missing or damaged."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} is not a comparison run folder ({CONFIG_FILE} is missing); pass the "
            "folder 'mtlkit compare' printed."
        )
    advice = "restore it, or start the grid again in a new folder (cells/ holds the finished runs)"
    values = read_json(path, ConfigError, advice)
    if not isinstance(values, dict):
        raise ConfigError(f"{str(path)!r} holds no mapping of settings; restore it.")
    return values


def grid_cells(config: CompareConfig, run_dir: Path | None = None) -> list[Cell]:
    """The cells of ``config``: the baseline with the joint strategy, every other model with
    every strategy, each for every seed, correlation and label fraction. With task groups,
    each other model x strategy also trains once per group (the baseline model for a task
    alone), labelled :func:`~.config.grouped_label` (not when one group holds every task:
    that is the all-in-one model); the groups of ``auto`` are read from ``run_dir``
    (:func:`task_groups`), none before they are measured."""
    variants = product(config.correlations or [None], config.label_fraction_values() or [None])
    groups = task_groups(config, run_dir)
    models = config.grid_models()
    cells = []
    for (corr, fraction), choice in product(variants, models):
        strategies = [DEFAULT_STRATEGY] if choice.label == BASELINE else config.strategies
        for strategy, seed in product(strategies, config.seeds):
            cells.append(
                Cell(choice.model, strategy, seed, choice.params, choice.label, corr, fraction)
            )
        if choice.label == BASELINE or groups is None or len(groups) == 1:
            continue  # one group of every task is the all-in-one model itself
        label = grouped_label(choice.label)
        for strategy, seed, group in product(config.strategies, config.seeds, groups):
            model = choice if len(group) > 1 else models[0]  # models[0]: the baseline
            cells.append(
                Cell(model.model, strategy, seed, model.params, label, corr, fraction, group)
            )
    return cells


def task_groups(config: CompareConfig, run_dir: Path | None = None) -> list[tuple[str, ...]] | None:
    """The task groups of ``config``: as given, or the ``auto`` groups measured into
    ``run_dir``'s :data:`AFFINITY_FILE` (None without groups, or before they are measured)."""
    if config.task_groups == AUTO_GROUPS:
        path = None if run_dir is None else Path(run_dir) / AFFINITY_FILE
        if path is None or not path.is_file():
            return None
        advice = "delete it to measure the affinity again"
        saved = read_json(path, ConfigError, advice)
        groups = saved.get("groups") if isinstance(saved, dict) else None
        if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
            raise ConfigError(f"{path} holds no task groups; {advice}.")
        return [tuple(g) for g in groups]
    given = config.given_groups
    return None if given is None else [tuple(g) for g in given]


def cell_path(run_dir: Path, cell: Cell) -> Path:
    return Path(run_dir) / CELLS_DIR / f"{cell.id}.json"


class CorruptCell(ConfigError):
    """A cell file that is not a complete run record (truncated, edited); ``damage`` says
    what is wrong with which file."""

    damage = ""


def read_cell(path: Path) -> RunRecord:
    """The record in one cell file, or a :class:`CorruptCell` error naming the file."""
    try:
        return RunRecord.from_dict(json.loads(path.read_bytes()))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        damage = f"cell file {str(path)!r} is corrupted ({type(err).__name__})"
        error = CorruptCell(
            f"{damage}; 'mtlkit compare --resume' on its run folder sets it aside "
            f"({CORRUPT_SUFFIX}) and runs that cell again."
        )
        error.damage = damage
        raise error from None


def state_path(run_dir: Path, cell: Cell) -> Path:
    """Where an unconverged cell keeps what continuing it needs (weights, optimizer...)."""
    return Path(run_dir) / STATE_DIR / f"{cell.id}.pt"


def needs_training(run_dir: Path, cell: Cell, epochs: int) -> bool:
    """Whether ``cell`` must train: it has no record yet, or its run did not converge and
    stopped at an epoch cap below ``epochs`` (then it is continued). A :class:`CorruptCell`
    error names a record that cannot be read."""
    path = cell_path(run_dir, cell)
    if not path.is_file():
        return True
    history = read_cell(path).history
    return not history.converged and len(history.epochs) < epochs


def pending_cells(run_dir: Path, cells: list[Cell], epochs: int) -> list[Cell]:
    """The cells of ``cells`` that must train (:func:`needs_training`). A cell file that
    cannot be read (a disk fault, an edit) is renamed ``<cell>.json.corrupt``, with a
    warning naming it, and its cell is run again."""
    todo = []
    for cell in cells:
        try:
            if needs_training(run_dir, cell, epochs):
                todo.append(cell)
        except CorruptCell as err:
            path = cell_path(run_dir, cell)
            aside = path.with_name(path.name + CORRUPT_SUFFIX)
            path.replace(aside)
            warnings.warn(
                f"{err.damage}; set aside as {aside.name}, its cell runs again.",
                DataWarning,
                stacklevel=2,
            )
            todo.append(cell)
    return todo


def load_cells(run_dir: Path, config: CompareConfig | None = None) -> list[RunRecord]:
    """The record of every finished cell of ``run_dir``, in the grid order of ``config``
    (else by file name); a :class:`CorruptCell` error names a file that cannot be read."""
    files = sorted((Path(run_dir) / CELLS_DIR).glob("*.json"))
    if not files:
        raise ConfigError(
            f"{run_dir} holds no finished grid cells ({CELLS_DIR}/*.json); run "
            "'mtlkit compare' into it first."
        )
    records = {path.stem: read_cell(path) for path in files}
    if config is None:
        return list(records.values())
    order = {c.id: i for i, c in enumerate(grid_cells(config, run_dir))}
    return [records[k] for k in sorted(records, key=lambda k: order.get(k, len(order)))]


def results_frame(records: list[RunRecord]) -> pd.DataFrame:
    """The tidy table: one row per run x task x split x metric."""
    return pd.DataFrame([row for r in records for row in r.rows()])
