"""The run record: what one training run leaves behind, as plain data (no torch).

:class:`History` is the per-epoch log the trainer writes (one :class:`EpochRecord`, with its
:class:`Diagnostics`, per epoch); :class:`RunRecord` is one finished
run of a comparison (its settings, history, metrics and test predictions). Training writes
them, the experiment grid stores them as JSON, and the report reads them back without
loading PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

#: Columns of the tidy results table other than the tags (data-variant columns such as
#: ``correlation``).
RESULT_COLUMNS = (
    "run_id",
    "model",
    "architecture",
    "strategy",
    "seed",
    "train_time_s",
    "epochs",
    "best_epoch",
    "converged",
    "n_params",
    "task",
    "task_kind",
    "split",
    "metric",
    "value",
    "val_fluctuation",
)


Metrics = dict[str, dict[str, float]]


@dataclass
class Diagnostics:
    """Task-conflict diagnostics of one epoch, measured on its probed batches
    (``TrainConfig.diagnostic_batches``; see :mod:`mtlkit.training.diagnostics`)."""

    #: Mean cosine of the task gradients on the shared parameters, over task pairs.
    grad_cosine: float = math.nan
    #: That cosine per task pair, ``{"a|b": c}``.
    grad_cosine_pairs: dict[str, float] = field(default_factory=dict)
    #: Mean gradient norm per task.
    grad_norm: dict[str, float] = field(default_factory=dict)
    #: Largest / smallest mean task gradient norm.
    grad_norm_ratio: float = math.nan
    #: Mean weight per expert of each gate, ``{gate: [w, ...]}`` (gated models only).
    expert_utilization: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> Diagnostics:
        return cls(
            grad_cosine=_nan_if_none(data["grad_cosine"]),
            grad_cosine_pairs=_floats(data["grad_cosine_pairs"]),
            grad_norm=_floats(data["grad_norm"]),
            grad_norm_ratio=_nan_if_none(data["grad_norm_ratio"]),
            expert_utilization={
                gate: [_nan_if_none(w) for w in weights]
                for gate, weights in data["expert_utilization"].items()
            },
        )


@dataclass
class EpochRecord:
    """What the trainer records after one epoch (written by :meth:`History.to_dict`)."""

    #: 1-based.
    epoch: int
    #: Wall-clock seconds of the epoch (training and validation).
    time_s: float
    #: Learning rate used in the epoch.
    lr: float
    #: Optimizer steps in the epoch.
    steps: int
    #: ``{task: {"loss": .., "accuracy": ..}}``: means over the labelled rows the epoch
    #: trained (no accuracy for regression).
    train: Metrics
    #: ``{task: {"loss": .., "roc_auc": .., ...}}``: the validation metrics per task.
    val: Metrics
    #: The strategy's task weights after the epoch (for aggregators: the mean weight given
    #: to each task's gradient over the epoch); None when the strategy has none.
    task_weights: dict[str, float] | None = None
    #: None when the epoch measured no diagnostics.
    diagnostics: Diagnostics | None = None

    @classmethod
    def from_dict(cls, data: dict) -> EpochRecord:
        weights, diagnostics = data["task_weights"], data["diagnostics"]
        return cls(
            epoch=int(data["epoch"]),
            time_s=_nan_if_none(data["time_s"]),
            lr=_nan_if_none(data["lr"]),
            steps=int(data["steps"]),
            train=_metrics(data["train"]),
            val=_metrics(data["val"]),
            task_weights=None if weights is None else _floats(weights),
            diagnostics=None if diagnostics is None else Diagnostics.from_dict(diagnostics),
        )


@dataclass
class History:
    """What happened in training, one :class:`EpochRecord` per epoch; JSON-ready via
    :meth:`to_dict`.

    Values that could not be measured are NaN in memory and ``null`` in :meth:`to_dict`
    (:meth:`from_dict` reads them back as NaN). ``best_epoch`` is the restored epoch;
    ``stopped_early`` says if patience ran out; ``converged`` is the verdict of
    :func:`is_converged` on this history; ``batch_size`` the rows per optimizer step the
    run used (``TrainConfig.batch_size`` or the size it chose).
    """

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    converged: bool = False
    batch_size: int | None = None

    def series(self, split: str, task: str, metric: str) -> list[float]:
        """One metric of one task over epochs, e.g. ``series("val", "income", "loss")``."""
        return [_nan_if_none(getattr(e, split)[task].get(metric)) for e in self.epochs]

    def fluctuation(self, task: str, metric: str) -> float:
        """How much the validation ``metric`` of ``task`` jumps from epoch to epoch, beyond
        its trend: ``median |y[t+1] - 2 y[t] + y[t-1]| / (0.6745 sqrt 6)``, which estimates
        the standard deviation of independent epoch-to-epoch noise around a locally linear
        curve (a smooth learning curve gives about 0). NaN with fewer than three epochs."""
        values = np.asarray(self.series("val", task, metric), dtype=float)
        second = np.diff(values[np.isfinite(values)], 2)
        if len(second) == 0:
            return math.nan
        return float(np.median(np.abs(second)) / (0.6745 * math.sqrt(6)))

    def diagnostic(self, name: str) -> list:
        """One :class:`Diagnostics` field over epochs, e.g. ``diagnostic("grad_cosine")``
        (NaN in the epochs that measured none)."""
        return [
            math.nan if e.diagnostics is None else getattr(e.diagnostics, name) for e in self.epochs
        ]

    def recorded_diagnostic(self, name: str) -> list | None:
        """One :class:`Diagnostics` field over epochs as recorded, or None when an epoch
        lacks it (the run measured no diagnostics, or the value could not be measured, e.g.
        the cosine of a single task)."""
        values = [
            None if e.diagnostics is None else getattr(e.diagnostics, name) for e in self.epochs
        ]
        missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in values]
        return None if not values or any(missing) else values

    def task_weight_series(self) -> dict[str, list[float]] | None:
        """``{task: [weight per epoch]}``, or None when the strategy records no task weights
        or they never change (e.g. plain joint training)."""
        records = [e.task_weights for e in self.epochs]
        if not records or any(not r for r in records):
            return None
        series = {t: [_nan_if_none(r.get(t)) for r in records] for t in records[0]}
        return None if all(len(set(v)) == 1 for v in series.values()) else series

    def to_dict(self) -> dict:
        """Strict-JSON data (NaN and infinities become None)."""
        return json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(
            epochs=[EpochRecord.from_dict(e) for e in data["epochs"]],
            best_epoch=int(data["best_epoch"]),
            stopped_early=bool(data["stopped_early"]),
            # Histories saved before convergence was recorded: early-stopped runs converged.
            converged=bool(data.get("converged", data["stopped_early"])),
            batch_size=data.get("batch_size"),
        )


#: Epochs without improvement that make a run converged when early stopping is off
#: (``patience=0``).
CONVERGENCE_WINDOW = 5


def is_converged(history: History, patience: int) -> bool:
    """Whether training ended because the monitored validation metric stopped improving.

    A run that early-stopped converged. A run that hit the epoch cap did not: with
    ``patience > 0`` it improved within its last ``patience`` epochs (else it would have
    stopped), so more epochs may still help. With ``patience=0`` (early stopping off) a run
    counts as converged when its best epoch lies at least :data:`CONVERGENCE_WINDOW` epochs
    before its last.
    """
    if history.stopped_early:
        return True
    window = patience or CONVERGENCE_WINDOW
    return len(history.epochs) - history.best_epoch >= window


@dataclass
class RunRecord:
    """One finished training run: who it was, how it went, how well it did.

    ``metrics`` maps split -> task -> metric -> value; ``predictions`` holds, per task, the
    labels and scores of the labelled test rows (for ROC/PR curves); ``tags`` identify the
    data variant (e.g. ``{"correlation": 0.9}``) and are copied into every result row.
    ``label`` is the name the run shows (the results' ``model`` column, e.g.
    ``mmoe:n_experts=4``); ``architecture`` is the model's registry name (``mmoe``).
    """

    run_id: str
    label: str
    architecture: str
    strategy: str
    seed: int
    task_kinds: dict[str, str]
    train_time_s: float
    n_params: int
    history: History
    metrics: dict[str, dict[str, dict[str, float]]]
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    tags: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """The tidy result rows: one per split x task x metric."""
        base = {
            **self.tags,
            "run_id": self.run_id,
            "model": self.label,
            "architecture": self.architecture,
            "strategy": self.strategy,
            "seed": self.seed,
            "train_time_s": self.train_time_s,
            "epochs": len(self.history.epochs),
            "best_epoch": self.history.best_epoch,
            "converged": self.history.converged,
            "n_params": self.n_params,
        }
        return [
            {
                **base,
                "task": task,
                "task_kind": self.task_kinds.get(task),
                "split": split,
                "metric": name,
                "value": value,
                "val_fluctuation": self.history.fluctuation(task, name),
            }
            for split, per_task in self.metrics.items()
            for task, values in per_task.items()
            for name, value in values.items()
        ]

    def to_dict(self) -> dict:
        """Strict-JSON data."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("history", "predictions")}
        out["history"] = self.history.to_dict()
        out["predictions"] = {
            task: {"y_true": np.asarray(y).tolist(), "y_score": np.asarray(s).tolist()}
            for task, (y, s) in self.predictions.items()
        }
        return json_safe(out)

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        values = renamed_fields(data)
        values["history"] = History.from_dict(data["history"])
        values["predictions"] = {
            task: (np.asarray(p["y_true"]), np.asarray(p["y_score"], dtype=float))
            for task, p in data.get("predictions", {}).items()
        }
        values["metrics"] = {split: _metrics(per) for split, per in data["metrics"].items()}
        return cls(**values)


def renamed_fields(data: dict) -> dict:
    """A copy of a run or study record's JSON data with its fields' current names: files
    written before the rename hold the label as ``model``."""
    values = dict(data)
    if "label" not in values and "model" in values:
        values["label"] = values.pop("model")
    return values


def json_safe(value):
    """``value`` with NaN and infinities replaced by None (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _nan_if_none(value):
    return math.nan if value is None else value


def _floats(values: dict) -> dict:
    """``{name: value}`` with None (a NaN saved as JSON) read back as NaN."""
    return {k: _nan_if_none(v) for k, v in values.items()}


def _metrics(per_task: dict) -> Metrics:
    return {task: _floats(values) for task, values in per_task.items()}
