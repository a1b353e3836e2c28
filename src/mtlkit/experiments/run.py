"""One run = one grid :class:`~.cells.Cell` (model x strategy x seed) on fixed splits, giving a
:class:`RunRecord`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mtlkit.data.protocol import Table
from mtlkit.evaluation.metrics import all_task_metrics
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments.cells import Cell
from mtlkit.experiments.choices import parse_strategy
from mtlkit.training.build import build_estimator


@dataclass(frozen=True)
class Settings:
    """What a cell trains with beyond its :class:`~.cells.Cell`: the grid's training
    settings and, when the grid tunes, its study's tuned values over them."""

    model_params: dict = field(default_factory=dict)
    strategy_params: dict = field(default_factory=dict)
    train_params: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """A trained cell: its record, and the training state continuing it needs (None: the
    run converged, or left nothing to continue)."""

    record: RunRecord
    state: dict | None


def run_one(
    cell: Cell,
    settings: Settings,
    train: Table,
    val: Table,
    test: Table,
    model_dir: Path | None = None,
    state: dict | None = None,
) -> Outcome:
    """Train ``cell`` with ``settings``; its record holds the validation and test metrics and
    the test predictions. The fitted model is saved in ``model_dir`` when given.

    ``state`` is what a run that did not converge left to continue it (its ``Outcome.state``
    of an earlier call): with a larger epoch budget the run continues from there (its
    training time adds up).
    """
    strategy, strategy_params = parse_strategy(cell.strategy)
    saved = state or {}
    est = build_estimator(
        cell.model,
        strategy,
        model_params={**cell.model_params, **settings.model_params},
        strategy_params={**strategy_params, **settings.strategy_params},
        **{**settings.train_params, "seed": cell.seed},
    ).fit(train, validation=val, state=saved.get("training"))
    train_time = saved.get("train_time_s", 0.0) + est.fit_time_
    training = est.training_state()
    keep = None
    if not est.history_.converged and training is not None:
        keep = {"training": training, "train_time_s": train_time}
    if model_dir is not None:
        est.save(model_dir)
    # The trainer scored validation at every epoch; the restored weights are the best
    # epoch's, so its metrics are what scoring validation again would give (bit for bit).
    history = est.history_
    metrics = {"val": dict(history.epochs[history.best_epoch - 1].val)}
    tasks = list(est.schema_.tasks)
    scored = est.labelled_scores(test)  # labels, masks and scores in one pass
    y, scores, kept = scored.y, scored.scores, scored.kept
    metrics["test"] = all_task_metrics(tasks, y, scored.mask, scores)
    record = RunRecord(
        run_id=cell.id,
        label=cell.label,
        architecture=cell.model,
        strategy=cell.strategy,
        seed=cell.seed,
        task_kinds={t.name: t.kind for t in tasks},
        train_time_s=train_time,
        n_params=est.n_parameters_,
        history=est.history_,
        metrics=metrics,
        predictions={
            t.name: (y[kept[:, k], k], scores[t.name][kept[:, k]]) for k, t in enumerate(tasks)
        },
        tags=cell.tags,
    )
    return Outcome(record, keep)
