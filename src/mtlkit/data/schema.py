"""Plain descriptions of tasks, features and the merged multi-task table.

These small dataclasses are the contract between the data layer, the models and the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd

TaskKind = Literal["binary", "multiclass", "regression"]
FeatureKind = Literal["numeric", "categorical"]

#: The task kinds, declared once (the ``TaskKind`` type above), and those that predict classes.
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
CLASSIFICATION_KINDS: tuple[str, ...] = ("binary", "multiclass")
FEATURE_KINDS: tuple[str, ...] = get_args(FeatureKind)


@dataclass(frozen=True)
class TaskSpec:
    """One prediction target.

    ``n_classes`` is 2 for binary, the number of classes for multiclass and 1 for regression.
    ``classes`` holds the original label values in the order of their integer ids
    (empty for regression).
    """

    name: str
    kind: TaskKind
    n_classes: int = 2
    classes: tuple = ()

    @property
    def output_dim(self) -> int:
        """Width of the model output (logits) for this task."""
        return self.n_classes if self.kind == "multiclass" else 1

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "n_classes": self.n_classes,
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes],
        }

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        return cls(d["name"], d["kind"], int(d["n_classes"]), tuple(d.get("classes", ())))


@dataclass(frozen=True)
class LabelSummary:
    """What :func:`~mtlkit.data.splits.check_splits` asks of one label column of a split:
    its number of labelled rows, up to two of its distinct labelled values (as in the data)
    and whether its task is a regression."""

    labelled: int
    values: tuple
    regression: bool


@dataclass
class MultiTaskTable:
    """Rows merged from one or more sources, with per-task labels and "label present" masks.

    ``labels[task]`` is a float array: class ids (binary/multiclass, as floats) or targets
    (regression); where ``masks[task]`` is False the value is NaN and must never reach a loss or
    a metric. ``source`` names the file (or frame) every row came from.
    """

    features: pd.DataFrame
    labels: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    tasks: list[TaskSpec]
    source: np.ndarray
    feature_kinds: dict[str, FeatureKind] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def take(self, index: np.ndarray) -> MultiTaskTable:
        """Rows at the given positions, as a new table."""
        return MultiTaskTable(
            features=self.features.iloc[index].reset_index(drop=True),
            labels={k: v[index] for k, v in self.labels.items()},
            masks={k: v[index] for k, v in self.masks.items()},
            tasks=list(self.tasks),
            source=self.source[index],
            feature_kinds=dict(self.feature_kinds),
        )

    def label_counts(self) -> dict[str, int]:
        """Number of labelled rows per task."""
        return {k: int(m.sum()) for k, m in self.masks.items()}

    @property
    def feature_names(self) -> list[str]:
        """The feature columns, in order."""
        return [str(c) for c in self.features.columns]

    def label_summary(self) -> dict[str, LabelSummary]:
        """Per task, its labelled rows and up to two of its classes."""
        summary = {}
        for task in self.tasks:
            mask = self.masks[task.name]
            regression = task.kind == "regression"
            ids = () if regression else np.unique(self.labels[task.name][mask])[:2]
            values = tuple(task.classes[int(i)] if task.classes else i for i in ids)
            summary[task.name] = LabelSummary(int(mask.sum()), values, regression)
        return summary


@dataclass(frozen=True)
class Schema:
    """What a model needs to know about its input and outputs.

    ``cat_cardinalities[i]`` is the number of ids (unknown bucket included) of categorical
    column ``i``; ``n_numeric`` counts numeric inputs (missing indicators included).
    """

    cat_cardinalities: tuple[int, ...]
    n_numeric: int
    tasks: tuple[TaskSpec, ...]

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def to_dict(self) -> dict:
        return {
            "cat_cardinalities": list(self.cat_cardinalities),
            "n_numeric": self.n_numeric,
            "tasks": [t.to_dict() for t in self.tasks],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        return cls(
            tuple(int(c) for c in d["cat_cardinalities"]),
            int(d["n_numeric"]),
            tuple(TaskSpec.from_dict(t) for t in d["tasks"]),
        )
