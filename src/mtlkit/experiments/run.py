"""One run = one model x strategy x seed on fixed splits, giving a :class:`RunRecord`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mtlkit.data.protocol import Table
from mtlkit.evaluation.metrics import all_task_metrics
from mtlkit.evaluation.record import RunRecord
from mtlkit.experiments.config import parse_strategy
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.trainer import load_torch, save_torch


@dataclass(frozen=True)
class RunSpec:
    """What to train: a model name, a strategy (a name, or ``NAME:key=value...`` with its
    settings, e.g. ``alternating:order=proportional``), a seed and their settings;
    ``strategy_params`` are further strategy settings (tuned ones)."""

    model: str
    strategy: str = "joint"
    seed: int = 0
    model_params: dict = field(default_factory=dict)
    train_params: dict = field(default_factory=dict)
    #: Name shown in results (e.g. "mmoe-4x" for a configured variant); the model name if unset.
    label: str | None = None
    strategy_params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or self.model

    @property
    def run_id(self) -> str:
        return f"{self.name}__{self.strategy}__seed{self.seed}"


def run_one(
    spec: RunSpec,
    train: Table,
    val: Table,
    test: Table,
    tags: dict | None = None,
    model_dir: Path | None = None,
    state: Path | None = None,
) -> RunRecord:
    """Train ``spec``; its record holds the validation and test metrics and the test
    predictions. ``tags`` (e.g. ``{"correlation": 0.9}``) identify the data variant; the
    fitted model is saved in ``model_dir`` when given.

    ``state`` is a file for the training state: a run that does not converge saves there
    what continuing it needs, and a later call with a larger epoch budget continues from it
    (its training time adds up); a converged run removes it.
    """
    strategy, strategy_params = parse_strategy(spec.strategy)
    saved = load_torch(state) if state is not None and state.is_file() else {}
    est = MultiTaskEstimator(
        spec.model,
        strategy=strategy,
        strategy_params={**strategy_params, **spec.strategy_params},
        **{**spec.train_params, "seed": spec.seed},
        **spec.model_params,
    ).fit(train, validation=val, state=saved.get("training"))
    train_time = saved.get("train_time_s", 0.0) + est.fit_time_
    if state is not None:
        training = est.training_state()
        if est.history_.converged or training is None:
            state.unlink(missing_ok=True)
        else:
            save_torch(state, {"training": training, "train_time_s": train_time})
    if model_dir is not None:
        est.save(model_dir)
    metrics = {"val": est.evaluate(val)}
    tasks = list(est.schema_.tasks)
    scored = est.labelled_scores(test)  # labels, masks and scores in one pass
    y, scores, kept = scored.y, scored.scores, scored.kept
    metrics["test"] = all_task_metrics(tasks, y, scored.mask, scores)
    return RunRecord(
        run_id=spec.run_id,
        model=spec.name,
        architecture=spec.model,
        strategy=spec.strategy,
        seed=spec.seed,
        task_kinds={t.name: t.kind for t in tasks},
        train_time_s=train_time,
        n_params=est.n_parameters_,
        history=est.history_,
        metrics=metrics,
        predictions={
            t.name: (y[kept[:, k], k], scores[t.name][kept[:, k]]) for k, t in enumerate(tasks)
        },
        tags=dict(tags or {}),
    )
