"""A comparison grid in a tracker: one parent run per grid, one child run per cell.

The parent run gets the grid's settings and, at the end, its report (``report.html``,
``report.md``, the tables and ``plots/``). Each cell logs itself from the process that
trained it (``--jobs`` workers included) under the parent. The parent's id is kept in
``RUN_DIR/tracking.json`` with the tracker's :meth:`~mtlkit.tracking.Tracker.location`, so
resuming the grid with the same tracker continues the same parent run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments.cells import (
    PLOTS_DIR,
    REPORT_FILES,
    Cell,
)
from mtlkit.experiments.config import CompareConfig
from mtlkit.files import atomic_write_json
from mtlkit.tracking.base import TrackedRun, Tracker
from mtlkit.tracking.run_metrics import final_metrics, log_training

TRACKING_FILE = "tracking.json"
#: The grid's axes: a cell logs its own value of each instead.
GRID_AXES = ("models", "strategies", "seeds", "correlations", "label_fractions")


@dataclass(frozen=True)
class CellTracking:
    """What a cell needs to log itself under its grid's run; picklable (sent to workers)."""

    tracker: Tracker
    parent: str

    def log_cell(
        self, cell: Cell, config: CompareConfig, record: RunRecord, model_dir: Path | None
    ) -> None:
        """Log one finished cell as a child run of the grid's run."""
        final = final_metrics(record.history, record.metrics, record.train_time_s, record.n_params)
        with self.tracker.start_run(cell.id, parent=self.parent) as run:
            log_training(run, cell_params(config, cell), record.history, final, model_dir)


@dataclass
class GridRun:
    """The grid's parent run (in the main process) and what its cells need."""

    run: TrackedRun
    cells: CellTracking

    def log_report(self, run_dir: Path) -> None:
        """The report's files as artifacts of the parent run."""
        for name in REPORT_FILES:
            path = Path(run_dir) / name
            if path.exists():
                self.run.log_artifacts(path, PLOTS_DIR if path.is_dir() else None)

    def describe(self) -> str:
        return self.cells.tracker.describe(self.run.id)


@contextmanager
def track_grid(
    track: str | None, tracker: Tracker | None, run_dir: Path, config: CompareConfig
) -> Iterator[GridRun | None]:
    """The grid's parent run on ``tracker`` (made by :func:`make_tracker` from ``track``,
    before the run folder exists), started (or resumed: same tracker in ``tracking.json``)
    for the block and finished after it; None when ``tracker`` is None."""
    if tracker is None:
        yield None
        return
    state = {"track": track, "tracker": _location(tracker)}
    path = Path(run_dir) / TRACKING_FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if {k: saved.get(k) for k in state} == state:
        run = tracker.resume_run(saved["run"])
    else:
        run = tracker.start_run(Path(run_dir).resolve().name)
        run.log_params(grid_params(config))
        atomic_write_json(path, {**state, "run": run.id})
    with run:
        yield GridRun(run, CellTracking(tracker, run.id))


def _location(tracker: Tracker) -> dict[str, Any]:
    """The tracker's location, checked to be JSON values (it is saved in tracking.json)."""
    location = tracker.location()
    try:
        json.dumps(location, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"{type(tracker).__name__}.location() must return JSON values ({err}); override "
            "Tracker.location to say where the runs go with strings and numbers."
        ) from None
    return location


def grid_params(config: CompareConfig) -> dict[str, Any]:
    """The grid's settings, models as their labels."""
    params = config.to_dict()
    params["models"] = [m.label for m in config.models]
    return params


def cell_params(config: CompareConfig, cell: Cell) -> dict[str, Any]:
    """One cell's settings: the grid's, with the cell's model, hyperparameters, strategy,
    seed and data variant in place of the grid's axes."""
    params = {k: v for k, v in config.to_dict().items() if k not in GRID_AXES}
    params.update(model=cell.label, architecture=cell.model, strategy=cell.strategy)
    params.update(seed=cell.seed, **cell.tags, **cell.model_params)
    return params
