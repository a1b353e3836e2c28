"""Running the comparison grid: every model x strategy x seed (x correlation x label
fraction) on the same splits, after tuning every model x strategy with the same budget when
the grid tunes.

Each finished cell is written atomically as one JSON file (see :mod:`.cells`), so an
interrupted grid loses no finished cell and a rerun skips them; tuning studies resume the
same way (see :mod:`.study`). A cell whose run did not
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

from mtlkit.data import protocol
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
from mtlkit.experiments.data import cached_splits, with_label_fraction
from mtlkit.experiments.grid_tracking import CellTracking
from mtlkit.experiments.ray_backend import run_on_ray
from mtlkit.experiments.run import RunSpec, run_one
from mtlkit.experiments.study import StudySpec, finished_trials, run_study
from mtlkit.experiments.tuning import StudyRecord, study_path
from mtlkit.experiments.workers import die_with_parent, parent_alive, stop_workers
from mtlkit.files import atomic_write_json
from mtlkit.processes import own_folder


def prepare_run_dir(config: CompareConfig, run_dir: Path) -> None:
    """Save the config in ``run_dir``, or check it against the saved one when resuming.

    Only the epoch budget may change, and only grow (to continue the runs that did not
    converge); the saved config then records the new budget. The folder is this process's
    until it exits (:func:`~mtlkit.processes.own_folder`): a second command on it is refused.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    own_folder(run_dir)
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


BACKENDS = ("local", "ray")


def run_grid(
    config: CompareConfig,
    run_dir: Path,
    jobs: int = 1,
    progress: bool = True,
    on_start: Callable[[int, int, int], None] | None = None,
    tracking: CellTracking | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> tuple[int, int]:
    """Run the cells of ``config`` that ``run_dir`` does not hold yet, and continue those that
    did not converge within a smaller epoch budget; returns (ran, skipped).

    With ``jobs > 1`` cells run in that many worker processes (one torch thread each); with
    ``backend="ray"`` each cell is a Ray task (see :mod:`.ray_backend`) and ``jobs`` bounds the
    cells in flight. Either way each cell writes its record into ``run_dir`` atomically.
    ``on_start(todo, done, continued)`` is called once the pending cells are known
    (``continued`` of the ``todo`` cells resume from their saved state). With ``tracking``
    each cell is logged as a child of the grid's tracked run (see :mod:`mtlkit.tracking`).
    A grid that tunes (``config.tune``) runs its studies first (:func:`tune_grid`).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {backend!r}.")
    run_dir = Path(run_dir)
    check_data(config)  # bad data fails before the run folder is touched or any training
    prepare_run_dir(config, run_dir)
    if config.tune is not None:
        tune_grid(config, run_dir, jobs, progress)
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
        if backend == "ray":
            run_on_ray(run_cell, raw, todo, run_dir, jobs, bar, ray_address, tracking)
        elif jobs <= 1:
            for cell in todo:
                bar.set_postfix_str(cell.id)
                bar.update(run_cell(raw, cell, run_dir, tracking))
        else:
            _run_parallel(run_cell, raw, todo, run_dir, jobs, bar, tracking)
    finally:
        bar.close()
    return len(todo), done


def tune_grid(
    config: CompareConfig,
    run_dir: Path,
    jobs: int = 1,
    progress: bool = True,
    studies: list[Cell] | None = None,
) -> int:
    """Tune every model x strategy (x data variant) of ``config``, the single-task baseline
    included, with the same budget (or only the ``studies`` of these cells); studies that
    ``run_dir`` holds finished are skipped, an interrupted one continues. Returns the number
    of studies run. With ``jobs > 1`` studies run in that many processes (each study's
    trials one after another)."""
    if studies is None:
        studies = list({c.study_id: c for c in grid_cells(config)}.values())
    todo = [c for c in studies if not study_path(run_dir, c.study_id).is_file()]
    if not todo:
        return 0
    budget = config.tune.trials
    bar = tqdm(
        total=len(studies) * budget,
        initial=finished_trials(run_dir, [c.study_id for c in studies]),
        desc="tuning trials",
        unit="trial",
        disable=not progress,
    )
    raw = config.to_dict()
    try:
        if jobs <= 1:
            for cell in todo:
                bar.set_postfix_str(cell.study_id)
                tune_cell(raw, cell, run_dir, on_trial=bar.update)
        else:
            _run_parallel(tune_cell, raw, todo, run_dir, jobs, bar)
    finally:
        bar.close()
    return len(todo)


def _run_parallel(
    task: Callable, raw: dict, todo: list[Cell], run_dir: Path, jobs: int, bar, *extra
) -> None:
    """``task(raw, cell, run_dir, *extra)`` for every cell in ``jobs`` processes; the bar
    advances by what each returns."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
    )
    try:
        pending = {pool.submit(task, raw, cell, run_dir, *extra) for cell in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                bar.update(future.result())  # re-raises a worker's error here
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM on the command line
        stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(parent: int) -> None:
    torch.set_num_threads(1)
    die_with_parent(parent)  # a worker never outlives the grid's main process


def _splits(config: CompareConfig, correlation: float | None, fraction: float | None) -> tuple:
    """The splits of one data variant (loaded once per process per correlation)."""
    return with_label_fraction(config, cached_splits(config, correlation), fraction)


def check_data(config: CompareConfig) -> None:
    """Load and split every data variant: missing files or labels, a task without labels in
    a split, or a metric no task reports fail here, clearly."""
    for correlation in config.correlations or [None]:
        for fraction in config.label_fraction_values() or [None]:
            train, _, _ = _splits(config, correlation, fraction)
        tasks = protocol.tasks(train)  # of a stream: one pass over it, as each cell makes
        check_reported(config.metric, tasks, "metric")
        check_reported(config.train.monitor, tasks, "monitor")


def run_cell(
    raw_config: dict, cell: Cell, run_dir: Path, tracking: CellTracking | None = None
) -> int:
    """Train one cell (or continue it from its saved state) with its study's tuned settings
    when the grid tunes, log it with ``tracking`` (its model folder included) and write its
    record atomically; returns 1 (one cell done)."""
    config = CompareConfig.from_mapping(raw_config, validate=False)
    train, val, test = _splits(config, cell.correlation, cell.label_fraction)
    train_params = {**config.train_params(), "progress": False}  # the grid has its own bar
    model_params, strategy_params = cell.model_params, {}
    if config.tune is not None:
        path = study_path(run_dir, cell.study_id)
        best = StudyRecord.from_dict(json.loads(path.read_text())).best
        model_params = {**model_params, **best["model"]}
        strategy_params, train_params = best["strategy"], {**train_params, **best["train"]}
    spec = RunSpec(
        cell.model,
        cell.strategy,
        cell.seed,
        model_params,
        train_params,
        cell.label,
        strategy_params=strategy_params,
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
    return 1


def tune_cell(
    raw_config: dict, cell: Cell, run_dir: Path, on_trial: Callable[[], None] | None = None
) -> int:
    """Run (or finish) the tuning study of ``cell``'s model x strategy on the training and
    validation splits of its data variant only, and write its record; returns the trials
    run."""
    config = CompareConfig.from_mapping(raw_config, validate=False)
    train, val, _ = _splits(config, cell.correlation, cell.label_fraction)  # test stays here
    spec = StudySpec(
        cell.study_id,
        cell.model,
        cell.strategy,
        config.tune,
        cell.model_params,
        config.train_params(),
        cell.label,
        cell.tags,
    )
    record, ran = run_study(spec, train, val, run_dir, on_trial)
    atomic_write_json(study_path(run_dir, cell.study_id), record.to_dict())
    return ran
