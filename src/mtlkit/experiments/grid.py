"""The comparison grid: every model x strategy x seed (x correlation) on the same splits.

Each finished cell is written atomically as one JSON file under ``RUN_DIR/cells/`` (its tidy
result rows, its training history and its test predictions), so an interrupted grid loses no
finished cell and a rerun skips them. The final tables are always rebuilt from these files.
"""

from __future__ import annotations

import json
import multiprocessing
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mtlkit.errors import ConfigError
from mtlkit.experiments.config import BASELINE, CompareConfig
from mtlkit.experiments.data import load_splits
from mtlkit.experiments.run import RunSpec, run_one
from mtlkit.files import atomic_write_bytes
from mtlkit.training.trainer import History

CONFIG_FILE = "config.json"
CELLS_DIR = "cells"


@dataclass(frozen=True)
class Cell:
    """One training run of the grid."""

    spec: RunSpec
    correlation: float | None = None

    @property
    def id(self) -> str:
        """A file-name-safe, unique name, e.g. ``corr+0.90__mmoe__joint__seed1``."""
        prefix = "" if self.correlation is None else f"corr{self.correlation:+.2f}__"
        return re.sub(r"[^A-Za-z0-9_.+=-]+", "-", prefix + self.spec.run_id)

    @property
    def tags(self) -> dict:
        return {} if self.correlation is None else {"correlation": self.correlation}


@dataclass
class CellResult:
    """What one finished cell left in its file."""

    cell_id: str
    rows: list[dict]
    history: History
    #: ``{task: (y_true, y_score)}`` on the labelled test rows.
    predictions: dict[str, tuple[np.ndarray, np.ndarray]]


def grid_cells(config: CompareConfig) -> list[Cell]:
    """The cells of ``config``: the baseline with the joint strategy, every other model with
    every strategy, each for every seed and correlation."""
    cells = []
    for corr in config.correlations or [None]:
        for choice in config.grid_models():
            strategies = ["joint"] if choice.label == BASELINE else config.strategies
            for strategy in strategies:
                for seed in config.seeds:
                    spec = RunSpec(
                        choice.model,
                        strategy,
                        seed,
                        model_params=choice.params,
                        train_params=config.train_params(),
                        label=choice.label,
                    )
                    cells.append(Cell(spec, corr))
    return cells


def cell_path(run_dir: Path, cell: Cell) -> Path:
    return Path(run_dir) / CELLS_DIR / f"{cell.id}.json"


def prepare_run_dir(config: CompareConfig, run_dir: Path) -> None:
    """Save the config in ``run_dir``, or check it equals the saved one when resuming."""
    run_dir = Path(run_dir)
    saved_path = run_dir / CONFIG_FILE
    current = config.to_dict()
    if saved_path.is_file():
        saved = json.loads(saved_path.read_text())
        differs = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if differs:
            detail = "; ".join(
                f"{k}: {saved.get(k)!r} there, {current.get(k)!r} now" for k in differs
            )
            raise ConfigError(
                f"{run_dir} holds a grid with another configuration ({detail}). Rerun with the "
                "same settings to resume it, or choose a new --out folder."
            )
        return
    atomic_write_bytes(saved_path, json.dumps(current, indent=2).encode())


def run_grid(
    config: CompareConfig,
    run_dir: Path,
    jobs: int = 1,
    progress: bool = True,
    on_start: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Run the cells of ``config`` that ``run_dir`` does not hold yet; returns (ran, skipped).

    With ``jobs > 1`` cells run in that many worker processes (one torch thread each).
    ``on_start(todo, done)`` is called once the pending cells are known.
    """
    run_dir = Path(run_dir)
    check_data(config)  # bad data fails before the run folder is touched or any training
    prepare_run_dir(config, run_dir)
    cells = grid_cells(config)
    todo = [c for c in cells if not cell_path(run_dir, c).is_file()]
    done = len(cells) - len(todo)
    if on_start:
        on_start(len(todo), done)
    if not todo:
        return 0, done
    bar = tqdm(total=len(cells), initial=done, desc="grid cells", unit="cell", disable=not progress)
    raw = config.to_dict()
    try:
        if jobs <= 1:
            for cell in todo:
                bar.set_postfix_str(cell.id)
                run_cell(raw, cell, run_dir)
                bar.update()
        else:
            _run_parallel(raw, todo, run_dir, jobs, bar)
    finally:
        bar.close()
    return len(todo), done


def _run_parallel(raw: dict, todo: list[Cell], run_dir: Path, jobs: int, bar) -> None:
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker)
    try:
        pending = {pool.submit(run_cell, raw, cell, run_dir) for cell in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()  # re-raise a worker's error here
                bar.update()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker() -> None:
    torch.set_num_threads(1)


_SPLITS: dict[tuple[str, float | None], tuple] = {}


def _splits(config: CompareConfig, correlation: float | None) -> tuple:
    """The splits of one data variant, loaded once per process."""
    key = (json.dumps(config.to_dict(), sort_keys=True), correlation)
    if key not in _SPLITS:
        _SPLITS[key] = load_splits(config, correlation)
    return _SPLITS[key]


def check_data(config: CompareConfig) -> None:
    """Load and split every data variant: missing files or labels fail here, clearly."""
    for correlation in config.correlations or [None]:
        _splits(config, correlation)


def run_cell(raw_config: dict, cell: Cell, run_dir: Path) -> str:
    """Train one cell and write its file atomically; returns the cell id."""
    train, val, test = _splits(CompareConfig.from_mapping(raw_config), cell.correlation)
    spec = RunSpec(
        cell.spec.model,
        cell.spec.strategy,
        cell.spec.seed,
        cell.spec.model_params,
        {**cell.spec.train_params, "progress": False},
        cell.spec.label,
    )
    rows, est = run_one(spec, train, val, test, tags=cell.tags)
    scores = est.predict_proba(test)
    predictions = {
        task: {
            "y_true": test.labels[task][test.masks[task]].tolist(),
            "y_score": np.asarray(scores[task])[test.masks[task]].tolist(),
        }
        for task in test.task_names
    }
    payload = {
        "cell_id": cell.id,
        "rows": [{**r, "run_id": cell.id} for r in rows],
        "history": est.history_.to_dict(),
        "predictions": predictions,
    }
    atomic_write_bytes(cell_path(run_dir, cell), json.dumps(payload).encode())
    return cell.id


def load_cells(run_dir: Path, config: CompareConfig | None = None) -> list[CellResult]:
    """Every finished cell of ``run_dir``, in the grid order of ``config`` (else by name)."""
    files = sorted((Path(run_dir) / CELLS_DIR).glob("*.json"))
    if not files:
        raise ConfigError(
            f"{run_dir} holds no finished grid cells ({CELLS_DIR}/*.json); run "
            "'mtlkit compare' into it first."
        )
    out = []
    for path in files:
        d = json.loads(path.read_text())
        out.append(
            CellResult(
                d["cell_id"],
                d["rows"],
                History.from_dict(d["history"]),
                {
                    t: (np.asarray(p["y_true"]), np.asarray(p["y_score"]))
                    for t, p in d["predictions"].items()
                },
            )
        )
    if config is not None:
        order = {c.id: i for i, c in enumerate(grid_cells(config))}
        out.sort(key=lambda c: order.get(c.cell_id, len(order)))
    return out


def results_frame(cells: list[CellResult]) -> pd.DataFrame:
    """The tidy table: one row per run x task x split x metric."""
    return pd.DataFrame([row for c in cells for row in c.rows])
