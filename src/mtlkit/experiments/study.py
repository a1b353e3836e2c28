"""One tuning study: Optuna trials of one model x strategy on the training and validation
splits (the test split is never passed in), stored in the run folder's SQLite file.

The study is resumable: finished trials (complete or pruned) are kept, a trial left running
by a killed process is marked failed and run again. The sampler of the study's ``n``-th
finished trial is seeded with ``(seed, n)``, so a resumed study draws what an uninterrupted
one draws.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy
from optuna.trial import TrialState

from mtlkit.data.schema import MultiTaskTable
from mtlkit.errors import DataError, MtlkitError
from mtlkit.evaluation.metrics import metric
from mtlkit.experiments.cells import Cell
from mtlkit.experiments.choices import parse_strategy
from mtlkit.experiments.tuning_plan import (
    MIN_TRIALS_FOR_IMPORTANCE,
    STORAGE_FILE,
    TUNING_DIR,
    Dimension,
    StudyRecord,
    TuneConfig,
    search_space,
    suggest,
)
from mtlkit.training.build import build_estimator
from mtlkit.training.settings import TrainConfig
from mtlkit.training.trainer import TrainingDiverged

#: Trials that count against the budget.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class StudySpec:
    """What to tune: the model x strategy x data variant of a grid ``cell`` (with the
    user's settings, which stay fixed; a study serves every seed, so the cell's seed is not
    used), the training settings and the budget."""

    cell: Cell
    tune: TuneConfig
    train_params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cell.study_id

    def space(self) -> list[Dimension]:
        strategy, given = parse_strategy(self.cell.strategy)
        keep = self.tune.keep or ()
        return search_space(self.cell.model, strategy, self.cell.model_params, given, keep)


def storage(run_dir: Path) -> optuna.storages.RDBStorage:
    """The Optuna storage of ``run_dir`` (created with its tables on first use)."""
    path = Path(run_dir) / TUNING_DIR / STORAGE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # A long busy timeout: studies running in parallel processes share the file. Two
    # processes opening a new file at once may both try to create the tables or stamp their
    # schema version; the loser finds them made on its next try.
    url = f"sqlite:///{path.resolve()}"
    options = {"connect_args": {"timeout": 120}}
    if path.is_file():
        _check_storage(path)
    try:
        for _ in range(4):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=options)
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as err:
                if "already exists" not in str(err) and "alembic_version" not in str(err):
                    raise
                time.sleep(0.2)
        return optuna.storages.RDBStorage(url, engine_kwargs=options)
    except sqlalchemy.exc.DatabaseError as err:
        raise _damaged(path, str(err.orig or err)) from None


def _check_storage(path: Path) -> None:
    """A :class:`~mtlkit.errors.DataError` naming ``path`` unless SQLite reads it whole (a
    truncated or overwritten file fails here, not as a traceback in the middle of a trial)."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            db.execute("PRAGMA busy_timeout = 120000")
            result = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as err:
        if "locked" in str(err):
            return  # another process writes it: readable
        result = str(err)
    if result != "ok":
        raise _damaged(path, result)


def _damaged(path: Path, reason: str) -> DataError:
    return DataError(
        f"{path} is damaged ({reason.splitlines()[0][:60]}); delete it to rerun its "
        "unfinished studies from the first trial, or restore a copy."
    )


def run_study(
    spec: StudySpec,
    train: MultiTaskTable,
    val: MultiTaskTable,
    run_dir: Path,
    on_trial: Callable[[], None] | None = None,
) -> tuple[StudyRecord, int]:
    """Run the trials of ``spec`` that ``run_dir``'s storage does not hold yet; returns the
    finished study and the number of trials run now. ``on_trial()`` is called after each
    finished trial."""
    db = storage(run_dir)
    _fail_interrupted(db, spec.name)
    higher = metric(spec.train_params.get("monitor", TrainConfig.monitor)).higher_is_better
    # A trial gets the epochs early stopping would give it before it can be pruned.
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=spec.tune.startup_trials(),
        n_warmup_steps=spec.train_params.get("patience", 0),
    )
    objective = _objective(spec, spec.space(), train, val)
    with _quiet_optuna():
        study = optuna.create_study(
            storage=db,
            study_name=spec.name,
            direction="maximize" if higher else "minimize",
            pruner=pruner if spec.tune.pruning else optuna.pruners.NopPruner(),
            load_if_exists=True,
        )
        before = done = len(study.get_trials(deepcopy=False, states=FINISHED))
        while done < spec.tune.trials:
            study.sampler = optuna.samplers.TPESampler(
                seed=_trial_seed(spec.tune.seed, done),
                n_startup_trials=spec.tune.startup_trials(),
            )
            study.optimize(objective, n_trials=1)
            done = len(study.get_trials(deepcopy=False, states=FINISHED))
            if on_trial is not None:
                on_trial()
    return _record(spec, study), done - before


def finished_trials(run_dir: Path, names: list[str]) -> int:
    """The finished trials of the studies ``names`` in ``run_dir``'s storage (which this
    creates, tables included, so that parallel workers find it made)."""
    db = storage(run_dir)
    total = 0
    for name in names:
        try:
            study_id = db.get_study_id_from_name(name)
        except KeyError:
            continue
        total += len(db.get_all_trials(study_id, deepcopy=False, states=FINISHED))
    return total


def _objective(
    spec: StudySpec, space: list[Dimension], train: MultiTaskTable, val: MultiTaskTable
) -> Callable[[optuna.Trial], float]:
    """One trial: train with the suggested settings, report the monitored validation metric
    every epoch (the pruner may stop the trial), return its best epoch's value."""
    cell = spec.cell
    strategy, given_strategy = parse_strategy(cell.strategy)
    higher = metric(spec.train_params.get("monitor", TrainConfig.monitor)).higher_is_better

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        trial.set_user_attr("settings", values)
        est = build_estimator(
            cell.model,
            strategy,
            model_params={**cell.model_params, **values["model"]},
            strategy_params={**given_strategy, **values["strategy"]},
            **{**spec.train_params, **values["train"], "seed": spec.tune.seed, "progress": False},
        )
        seen: list[float] = []

        def on_epoch(epoch: int, value: float) -> None:
            if math.isnan(value):
                return
            seen.append(value)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        try:
            est.fit(train, validation=val, on_epoch=on_epoch)
        except TrainingDiverged:  # these settings diverge: a finished, failed trial
            trial.set_user_attr("diverged", True)
            raise optuna.TrialPruned("the loss diverged") from None
        if not seen:
            raise optuna.TrialPruned("no finite validation value")
        return max(seen) if higher else min(seen)

    return objective


def _fail_interrupted(db: optuna.storages.RDBStorage, name: str) -> None:
    """Mark the trials a killed process left running as failed (a study runs in one
    process at a time, so no other process owns them); they do not count as finished."""
    try:
        study_id = db.get_study_id_from_name(name)
    except KeyError:
        return
    for trial in db.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = db.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        db.set_trial_state_values(trial_id, TrialState.FAIL)


def _trial_seed(seed: int, n: int) -> int:
    return int(np.random.SeedSequence([seed, n]).generate_state(1)[0])


@contextmanager
def _quiet_optuna():
    """No log line per trial (the grid shows a progress bar), and no traceback of a trial
    that failed or was interrupted (Ctrl-C, SIGTERM): the error itself reaches mtlkit's
    one-line message."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _record(spec: StudySpec, study: optuna.Study) -> StudyRecord:
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "last_value": _last(t.intermediate_values),
            "params": t.params,
            "epochs": len(t.intermediate_values),
            "time_s": t.duration.total_seconds() if t.duration else None,
            "diverged": bool(t.user_attrs.get("diverged")),
        }
        for t in study.get_trials(deepcopy=False)
    ]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise MtlkitError(
            f"no trial of {spec.name} finished: every one diverged or gave no finite "
            "validation value; check the data, or lower the learning rate's range."
        )
    best = study.best_trial
    return StudyRecord(
        study=spec.name,
        label=spec.cell.name,  # a grouped cell's study: one per group
        architecture=spec.cell.model,
        strategy=spec.cell.strategy,
        monitor=spec.train_params.get("monitor", TrainConfig.monitor),
        direction=study.direction.name.lower(),
        tune=spec.tune.to_dict(),
        best_value=best.value,
        best_trial=best.number,
        best=best.user_attrs["settings"],
        trials=trials,
        importances=_importances(study),
        tags=spec.cell.tags,
    )


def _last(values: dict[int, float]) -> float | None:
    return values[max(values)] if values else None


def _importances(study: optuna.Study) -> dict[str, float] | None:
    """Optuna's parameter importances (PED-ANOVA by default), or None when the finished
    trials are too few or too alike to tell."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE or not complete[0].params:
        return None
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError, ZeroDivisionError):
        return None
