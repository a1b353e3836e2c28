"""Running the comparison grid: every model x strategy x seed (x correlation x label
fraction) on the same splits.

Each finished cell is written atomically as one JSON file (see :mod:`.cells`), so an
interrupted grid loses no finished cell and a rerun skips them. A cell whose run did not
converge also keeps its training state (``state/<cell>.pt``): resuming the grid with a
larger epoch budget continues exactly those cells from where they stopped.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mtlkit.errors import ConfigError
from mtlkit.evaluation.metrics import check_reported
from mtlkit.experiments.cells import (
    CONFIG_FILE,
    Cell,
    cell_path,
    grid_cells,
    pending_cells,
    read_config,
    state_path,
)
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.data import load_splits, with_label_fraction
from mtlkit.experiments.run import RunSpec, run_one
from mtlkit.experiments.workers import die_with_parent, parent_alive, stop_workers
from mtlkit.files import atomic_write_json
from mtlkit.tracking.grid import CellTracking


def prepare_run_dir(config: CompareConfig, run_dir: Path) -> None:
    """Save the config in ``run_dir``, or check it against the saved one when resuming.

    Only the epoch budget may change, and only grow (to continue the runs that did not
    converge); the saved config then records the new budget.
    """
    run_dir = Path(run_dir)
    saved_path = run_dir / CONFIG_FILE
    current = config.to_dict()
    if saved_path.is_file():  # read as now: settings added since take their defaults
        saved = CompareConfig.from_mapping(read_config(run_dir), str(saved_path), False).to_dict()
        keys = set(saved) | set(current)
        differs = sorted(k for k in keys if k != "epochs" and saved.get(k) != current.get(k))
        if differs:
            detail = "; ".join(
                f"{k}: {saved.get(k)!r} there, {current.get(k)!r} now" for k in differs
            )
            raise ConfigError(
                f"{run_dir} holds a grid with another configuration ({detail}). Rerun with the "
                "same settings to resume it (only --epochs may grow), or choose a new --out "
                "folder."
            )
        if current["epochs"] < saved["epochs"]:
            raise ConfigError(
                f"{run_dir} holds a grid trained for up to {saved['epochs']} epochs; resuming "
                f"may raise the epoch budget (to continue runs that did not converge), not lower "
                f"it to {current['epochs']}. Rerun with --epochs {saved['epochs']} or more."
            )
        if current["epochs"] == saved["epochs"]:
            return
    atomic_write_json(saved_path, current)


def run_grid(
    config: CompareConfig,
    run_dir: Path,
    jobs: int = 1,
    progress: bool = True,
    on_start: Callable[[int, int, int], None] | None = None,
    tracking: CellTracking | None = None,
) -> tuple[int, int]:
    """Run the cells of ``config`` that ``run_dir`` does not hold yet, and continue those that
    did not converge within a smaller epoch budget; returns (ran, skipped).

    With ``jobs > 1`` cells run in that many worker processes (one torch thread each).
    ``on_start(todo, done, continued)`` is called once the pending cells are known
    (``continued`` of the ``todo`` cells resume from their saved state). With ``tracking``
    each cell is logged as a child of the grid's tracked run (see :mod:`mtlkit.tracking`).
    """
    run_dir = Path(run_dir)
    check_data(config)  # bad data fails before the run folder is touched or any training
    prepare_run_dir(config, run_dir)
    cells = grid_cells(config)
    todo = pending_cells(run_dir, cells, config.train.epochs)  # a corrupted cell runs again
    done = len(cells) - len(todo)
    if on_start:
        on_start(len(todo), done, sum(cell_path(run_dir, c).is_file() for c in todo))
    if not todo:
        return 0, done
    bar = tqdm(total=len(cells), initial=done, desc="grid cells", unit="cell", disable=not progress)
    raw = config.to_dict()
    try:
        if jobs <= 1:
            for cell in todo:
                bar.set_postfix_str(cell.id)
                run_cell(raw, cell, run_dir, tracking)
                bar.update()
        else:
            _run_parallel(raw, todo, run_dir, jobs, bar, tracking)
    finally:
        bar.close()
    return len(todo), done


def _run_parallel(
    raw: dict, todo: list[Cell], run_dir: Path, jobs: int, bar, tracking: CellTracking | None
) -> None:
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
    )
    try:
        pending = {pool.submit(run_cell, raw, cell, run_dir, tracking) for cell in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()  # re-raise a worker's error here
                bar.update()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM on the command line
        stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(parent: int) -> None:
    torch.set_num_threads(1)
    die_with_parent(parent)  # a worker never outlives the grid's main process


_SPLITS: dict[tuple[str, float | None], tuple] = {}


def _splits(config: CompareConfig, correlation: float | None, fraction: float | None) -> tuple:
    """The splits of one data variant (loaded once per process per correlation)."""
    key = (json.dumps(config.to_dict(), sort_keys=True), correlation)
    if key not in _SPLITS:
        _SPLITS[key] = load_splits(config, correlation)
    return with_label_fraction(config, _SPLITS[key], fraction)


def check_data(config: CompareConfig) -> None:
    """Load and split every data variant: missing files or labels, a task without labels in
    a split, or a metric no task reports fail here, clearly."""
    for correlation in config.correlations or [None]:
        for fraction in config.label_fraction_values() or [None]:
            train, _, _ = _splits(config, correlation, fraction)
        check_reported(config.metric, train.tasks, "metric")
        check_reported(config.train.monitor, train.tasks, "monitor")


def run_cell(
    raw_config: dict, cell: Cell, run_dir: Path, tracking: CellTracking | None = None
) -> str:
    """Train one cell (or continue it from its saved state), log it with ``tracking`` (its
    model folder included) and write its record atomically; returns the cell id."""
    config = CompareConfig.from_mapping(raw_config, validate=False)
    train, val, test = _splits(config, cell.correlation, cell.label_fraction)
    train_params = {**config.train_params(), "progress": False}  # the grid has its own bar
    spec = RunSpec(
        cell.model, cell.strategy, cell.seed, cell.model_params, train_params, cell.label
    )
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model" if tracking else None
        record = run_one(
            spec,
            train,
            val,
            test,
            tags=cell.tags,
            model_dir=model_dir,
            state=state_path(run_dir, cell),
        )
        record.run_id = cell.id
        if tracking:
            tracking.log_cell(cell, config, record, model_dir)
    if not parent_alive():  # an orphaned worker writes nothing
        os._exit(1)
    atomic_write_json(cell_path(run_dir, cell), record.to_dict(), indent=None)
    return cell.id
