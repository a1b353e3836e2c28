"""One run = one model x strategy x seed on fixed splits, giving tidy result rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mtlkit.data.schema import MultiTaskTable
from mtlkit.experiments.config import parse_strategy
from mtlkit.training.estimator import MultiTaskEstimator


@dataclass(frozen=True)
class RunSpec:
    """What to train: a model name, a strategy (a name, or ``NAME:key=value...`` with its
    settings, e.g. ``alternating:order=proportional``), a seed and their settings."""

    model: str
    strategy: str = "joint"
    seed: int = 0
    model_params: dict = field(default_factory=dict)
    train_params: dict = field(default_factory=dict)
    #: Name shown in results (e.g. "mmoe-4x" for a configured variant); the model name if unset.
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.model

    @property
    def run_id(self) -> str:
        return f"{self.name}__{self.strategy}__seed{self.seed}"


def run_one(
    spec: RunSpec,
    train: MultiTaskTable,
    val: MultiTaskTable,
    test: MultiTaskTable,
    tags: dict | None = None,
) -> tuple[list[dict], MultiTaskEstimator]:
    """Train ``spec`` and return one row per task x split x metric, plus the fitted estimator.

    ``tags`` (e.g. ``{"correlation": 0.9}``) are copied into every row.
    """
    strategy, strategy_params = parse_strategy(spec.strategy)
    est = MultiTaskEstimator(
        spec.model,
        strategy=strategy,
        strategy_params=strategy_params,
        seed=spec.seed,
        **spec.train_params,
        **spec.model_params,
    ).fit(train, val)
    base = {
        **(tags or {}),
        "run_id": spec.run_id,
        "model": spec.name,
        "architecture": spec.model,
        "strategy": spec.strategy,
        "seed": spec.seed,
        "train_time_s": est.fit_time_,
        "epochs": len(est.history_.epochs),
        "best_epoch": est.history_.best_epoch,
        "n_params": est.n_parameters_,
    }
    rows = []
    for split, table in (("val", val), ("test", test)):
        for task, metrics in est.evaluate(table).items():
            for metric, value in metrics.items():
                rows.append(
                    {**base, "task": task, "split": split, "metric": metric, "value": value}
                )
    return rows, est


def summarize(results: pd.DataFrame, metric: str = "roc_auc", split: str = "test") -> pd.DataFrame:
    """Mean of one metric per model x strategy x task (x any tag columns), tasks as columns."""
    keys = [c for c in results.columns if c not in _ROW_COLUMNS]
    sel = results[(results["metric"] == metric) & (results["split"] == split)]
    return sel.pivot_table(index=keys + ["model", "strategy"], columns="task", values="value")


_ROW_COLUMNS = {
    "run_id",
    "model",
    "architecture",
    "strategy",
    "seed",
    "train_time_s",
    "epochs",
    "best_epoch",
    "n_params",
    "task",
    "split",
    "metric",
    "value",
}
