"""Running the comparison grid: every model x strategy x seed (x correlation) on the same
splits.

Each finished cell is written atomically as one JSON file (see :mod:`.cells`), so an
interrupted grid loses no finished cell and a rerun skips them.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mtlkit.data.schema import MultiTaskTable
from mtlkit.data.streaming import StreamingTable
from mtlkit.errors import ConfigError
from mtlkit.evaluation.metrics import check_reported
from mtlkit.experiments.cells import CONFIG_FILE, Cell, cell_path, grid_cells
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.data import load_splits
from mtlkit.experiments.run import RunSpec, run_one
from mtlkit.files import atomic_write_json


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
    atomic_write_json(saved_path, current)


BACKENDS = ("local", "ray")


def run_grid(
    config: CompareConfig,
    run_dir: Path,
    jobs: int = 1,
    progress: bool = True,
    on_start: Callable[[int, int], None] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> tuple[int, int]:
    """Run the cells of ``config`` that ``run_dir`` does not hold yet; returns (ran, skipped).

    With ``jobs > 1`` cells run in that many worker processes (one torch thread each); with
    ``backend="ray"`` each cell is a Ray task (see :mod:`.ray_backend`) and ``jobs`` bounds the
    cells in flight. Either way the finished cells are written here, atomically, one by one.
    ``on_start(todo, done)`` is called once the pending cells are known.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {backend!r}.")
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
        if backend == "ray":
            from mtlkit.experiments.ray_backend import run_on_ray

            run_on_ray(raw, todo, run_dir, jobs, bar, ray_address)
        elif jobs <= 1:
            for cell in todo:
                bar.set_postfix_str(cell.id)
                save_cell(run_dir, cell, train_cell(raw, cell))
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
        pending = {pool.submit(train_cell, raw, cell): cell for cell in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                save_cell(run_dir, pending.pop(future), future.result())  # a worker's error too
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
    """Load and split every data variant: missing files or labels, a task without labels in
    a split, or a metric no task reports fail here, clearly."""
    for correlation in config.correlations or [None]:
        train, _, _ = _splits(config, correlation)
        tasks = train.tasks if isinstance(train, MultiTaskTable) else _stream_tasks(train)
        check_reported(config.metric, tasks, "metric")
        check_reported(config.train.monitor, tasks, "monitor")


def _stream_tasks(train: StreamingTable) -> list:
    """The tasks of a streamed training split (one pass over it, as each cell makes)."""
    from mtlkit.data.stream_fit import fit_preprocessor

    return list(fit_preprocessor(train).schema().tasks)


def train_cell(raw_config: dict, cell: Cell, splits: tuple | None = None) -> dict:
    """Train one cell (on ``splits``, else its data variant's splits loaded here); returns its
    record as plain data."""
    config = CompareConfig.from_mapping(raw_config, validate=False)
    train, val, test = splits or _splits(config, cell.correlation)
    spec = RunSpec(
        cell.model, cell.strategy, cell.seed, cell.model_params, config.train_params(), cell.label
    )
    record = run_one(spec, train, val, test, tags=cell.tags)
    record.run_id = cell.id
    return record.to_dict()


def save_cell(run_dir: Path, cell: Cell, record: dict) -> None:
    """Write a finished cell's record into the run folder, atomically."""
    atomic_write_json(cell_path(run_dir, cell), record, indent=None)


def data_variants(config: CompareConfig) -> dict[float | None, tuple]:
    """The splits of every data variant (loaded once per process)."""
    return {c: _splits(config, c) for c in config.correlations or [None]}
