"""Running the comparison grid: every model x strategy x seed (x correlation x label
fraction) on the same splits, after tuning every model x strategy with the same budget when
the grid tunes.

The flow of ``mtlkit compare``: a validated :class:`~.config.CompareConfig` -> its cells
(:func:`~.cells.grid_cells`) -> the data loaded and checked once (:func:`load_grid_data`,
:func:`check_data`) -> a :class:`~.backends.Backend` runs each study and cell
(:func:`tune_study`, :func:`train_cell`) with what they share sent once -> this process
writes each result. Each finished cell is written atomically as one JSON file (see
:mod:`.cells`), so an interrupted grid loses no finished cell and a rerun skips them; tuning
studies resume the same way (see :mod:`.study`). A cell whose run did not converge also keeps
its training state (``state/<cell>.pt``): resuming the grid with a larger epoch budget
continues exactly those cells from where they stopped.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from mtlkit.affinity.study import AffinityResult, measure_affinity
from mtlkit.data import protocol
from mtlkit.errors import ConfigError
from mtlkit.evaluation.metrics import check_reported
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments.backends import Backend, Tick, Work
from mtlkit.experiments.cells import (
    AFFINITY_FILE,
    CONFIG_FILE,
    Cell,
    cell_path,
    grid_cells,
    pending_cells,
    read_cell,
    read_config,
    state_path,
)
from mtlkit.experiments.config import AUTO_GROUPS, CompareConfig, check_task_groups
from mtlkit.experiments.data import load_splits, with_label_fraction, with_tasks
from mtlkit.experiments.grid_tracking import CellTracking
from mtlkit.experiments.run import Outcome, Settings, run_one
from mtlkit.experiments.study import StudySpec, finished_trials, run_study
from mtlkit.experiments.tuning_plan import StudyRecord, study_path
from mtlkit.files import atomic_write_json
from mtlkit.processes import own_folder
from mtlkit.training.state import load_torch, save_torch

#: The splits (train, validation, test) of every data variant, by (correlation, label
#: fraction); None where the grid has no such axis.
GridData = dict[tuple[float | None, float | None], tuple]


def load_grid_data(config: CompareConfig) -> GridData:
    """Load and split every data variant of ``config``, once: missing files or labels, or a
    task without labels in a split fail here, clearly."""
    data: GridData = {}
    for correlation in config.correlations or [None]:
        splits = load_splits(config, correlation)
        data[(correlation, None)] = splits
        for fraction in config.label_fraction_values() or []:
            data[(correlation, fraction)] = with_label_fraction(config, splits, fraction)
    return data


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


def run_grid(
    config: CompareConfig,
    run_dir: Path,
    data: GridData,
    backend: Backend,
    progress: bool = True,
    on_start: Callable[[int, int, int], None] | None = None,
    tracking: CellTracking | None = None,
    cells: list[Cell] | None = None,
) -> list[RunRecord]:
    """Run the cells of ``config`` that ``run_dir`` does not hold yet, and continue those that
    did not converge within a smaller epoch budget, on ``backend``; returns the record of
    every cell, in grid order (those run earlier read from ``run_dir``).

    ``data`` is the grid's loaded and checked data (:func:`load_grid_data`, :func:`check_data`)
    and ``run_dir`` is prepared (:func:`prepare_run_dir`). This process writes each cell's
    record into ``run_dir`` atomically as it comes back. ``on_start(todo, done, continued)``
    is called once the pending cells are known (``continued`` of the ``todo`` cells resume
    from their saved state). With ``tracking`` each cell is logged as a child of the grid's
    tracked run (see :mod:`mtlkit.tracking`). A grid that tunes (``config.tune``) runs its
    studies first (:func:`tune_grid`). ``cells``: only these cells of the grid (and their
    studies).
    """
    run_dir = Path(run_dir)
    cells = grid_cells(config, run_dir) if cells is None else cells
    if config.tune is not None:
        studies = list({c.study_id: c for c in cells}.values())
        tune_grid(config, run_dir, data, backend, progress, studies)
    todo = pending_cells(run_dir, cells, config.train.epochs)  # a corrupted cell runs again
    done = len(cells) - len(todo)
    if on_start:
        on_start(len(todo), done, sum(cell_path(run_dir, c).is_file() for c in todo))
    records: dict[str, RunRecord] = {}

    def write(job: CellJob, outcome: Outcome) -> None:
        state = state_path(run_dir, job.cell)
        if outcome.state is None:
            state.unlink(missing_ok=True)
        else:
            save_torch(state, outcome.state)
        saved = outcome.record.to_dict()
        atomic_write_json(cell_path(run_dir, job.cell), saved, indent=None)
        records[job.cell.id] = RunRecord.from_dict(saved)  # as the cell file holds it

    if todo:
        jobs = [
            CellJob(c, cell_settings(config, run_dir, c), _saved_state(run_dir, c)) for c in todo
        ]
        bar = tqdm(
            total=len(cells), initial=done, desc="grid cells", unit="cell", disable=not progress
        )
        try:
            shared = Shared(config, data, run_dir, tracking)
            backend.run(Work(train_cell, shared, jobs, write, bar.update, _gpu(config)))
        finally:
            bar.close()
    return [records.get(c.id) or read_cell(cell_path(run_dir, c)) for c in cells]


def tune_grid(
    config: CompareConfig,
    run_dir: Path,
    data: GridData,
    backend: Backend,
    progress: bool = True,
    studies: list[Cell] | None = None,
) -> int:
    """Tune every model x strategy (x data variant) of ``config``, the single-task baseline
    included, with the same budget (or only the ``studies`` of these cells), on ``backend``
    (each study's trials one after another); studies that ``run_dir`` holds finished are
    skipped, an interrupted one continues. Returns the number of studies run."""
    if studies is None:
        studies = list({c.study_id: c for c in grid_cells(config, run_dir)}.values())
    todo = [c for c in studies if not study_path(run_dir, c.study_id).is_file()]
    if not todo:
        return 0
    bar = tqdm(
        total=len(studies) * config.tune.trials,
        initial=finished_trials(run_dir, [c.study_id for c in studies]),
        desc="tuning trials",
        unit="trial",
        disable=not progress,
    )

    def write(cell: Cell, record: StudyRecord) -> None:
        atomic_write_json(study_path(run_dir, cell.study_id), record.to_dict())

    try:
        shared = Shared(config, data, run_dir, None)
        backend.run(Work(tune_study, shared, todo, write, bar.update, _gpu(config)))
    finally:
        bar.close()
    return len(todo)


@dataclass(frozen=True)
class Shared:
    """What every task of a grid shares, sent to each worker once: the validated settings,
    the loaded data, the run folder (tuning studies keep their trials there) and how cells
    log themselves."""

    config: CompareConfig
    data: GridData
    run_dir: Path
    tracking: CellTracking | None


@dataclass(frozen=True)
class CellJob:
    """One cell to train: the cell, its settings (tuned ones included) and the training
    state it continues from (None: it starts afresh)."""

    cell: Cell
    settings: Settings
    state: dict | None


def cell_settings(config: CompareConfig, run_dir: Path, cell: Cell) -> Settings:
    """The settings ``cell`` trains with: the grid's, with its study's tuned values over them
    when the grid tunes."""
    train_params = {**config.train_params(), "progress": False}  # the grid has its own bar
    if config.tune is None:
        return Settings(train_params=train_params)
    path = study_path(run_dir, cell.study_id)
    best = StudyRecord.from_dict(json.loads(path.read_text())).best
    return Settings(best["model"], best["strategy"], {**train_params, **best["train"]})


def _saved_state(run_dir: Path, cell: Cell) -> dict | None:
    path = state_path(run_dir, cell)
    return load_torch(path) if path.is_file() else None


def _gpu(config: CompareConfig) -> bool:
    return config.train.device.startswith("cuda")


def check_data(config: CompareConfig, data: GridData) -> None:
    """A metric or monitor that no task of the loaded ``data`` reports, or task groups that
    do not partition its tasks, fail here, clearly (missing files or labels, and a task
    without labels in a split, failed loading it)."""
    for correlation in config.correlations or [None]:
        train = data[(correlation, None)][0]
        tasks = protocol.tasks(train)  # of a stream: one pass over it
        check_reported(config.metric, tasks, "metric")
        check_reported(config.train.monitor, tasks, "monitor")
        names = [t.name for t in tasks]
        if config.task_groups is not None and len(names) < 2:
            raise ConfigError(f"task groups need two tasks or more; the data has {names}.")
        if config.given_groups is not None:
            check_task_groups(config.given_groups, names)


def measure_task_groups(
    config: CompareConfig, data: GridData, run_dir: Path, progress: bool = True
) -> AffinityResult | None:
    """For ``task_groups: auto``: measure TAG's task affinity on the training split (of the
    grid's one correlation, with every label: never validation or test rows) over the grid's
    seeds and training settings, and save it in ``run_dir`` (its :data:`~.cells.AFFINITY_FILE`
    holds the groups the grid then trains); returns it. None when the grid has no ``auto``
    groups or ``run_dir`` holds them already (a resumed grid keeps its groups)."""
    if config.task_groups != AUTO_GROUPS or (Path(run_dir) / AFFINITY_FILE).is_file():
        return None
    train = data[((config.correlations or [None])[0], None)][0]
    result = measure_affinity(
        train,
        seeds=config.seeds,
        lr=config.train.lr,
        batch_size=config.train.batch_size,
        weight_decay=config.train.weight_decay,
        device=config.train.device,
        progress=progress,
    )
    result.save(run_dir)
    return result


def cell_splits(data: GridData, cell: Cell) -> tuple:
    """The (train, validation, test) splits ``cell`` trains on: its data variant's, with
    only its group's tasks for a grouped cell."""
    splits = data[(cell.correlation, cell.label_fraction)]
    if cell.tasks is None:
        return splits
    return tuple(with_tasks(table, list(cell.tasks)) for table in splits)


def train_cell(shared: Shared, job: CellJob, tick: Tick) -> tuple[Outcome, int]:
    """Train one cell (or continue it from its saved state) and log it with the grid's
    tracking (its model folder included); the record goes back to the driver."""
    cell = job.cell
    train, val, test = cell_splits(shared.data, cell)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model" if shared.tracking else None
        outcome = run_one(cell, job.settings, train, val, test, model_dir, job.state)
        if shared.tracking:
            shared.tracking.log_cell(cell, shared.config, outcome.record, model_dir)
    tick(1)
    return outcome, 1


def tune_study(shared: Shared, cell: Cell, tick: Tick) -> tuple[StudyRecord, int]:
    """Run (or finish) the tuning study of ``cell``'s model x strategy on the training and
    validation splits of its data variant only (the test split is not passed in); returns
    its record and the trials run."""
    config = shared.config
    train, val, _ = cell_splits(shared.data, cell)
    spec = StudySpec(cell, config.tune, config.train_params())
    return run_study(spec, train, val, shared.run_dir, lambda: tick(1))
