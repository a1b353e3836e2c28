"""The training settings, declared once.

:class:`TrainConfig` is the one place where a training setting, its default, its allowed
values and its tuning range are written. The same declarations generate
``MultiTaskEstimator``'s keyword arguments, the ``mtlkit train`` / ``mtlkit compare`` flags
and the keys of a comparison's config file. Torch-free.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from mtlkit.data.vocabulary import VOCABULARY_PARAMS
from mtlkit.errors import ConfigError
from mtlkit.evaluation.metrics import METRIC_NAMES
from mtlkit.params import Choice, Param, Range, declared, params_of, setting
from mtlkit.training.schedules import SCHEDULES

#: The model and the training strategy used when none is named (the estimator, ``mtlkit
#: train`` / ``tune``, the compatibility facades, the comparison grid's baseline).
DEFAULT_MODEL = "mmoe"
DEFAULT_STRATEGY = "joint"
LR_SCHEDULES: tuple[str, ...] = tuple(SCHEDULES.names())
#: Post-hoc calibration methods (mtlkit.training.calibration).
CALIBRATIONS = ("none", "temperature", "platt", "isotonic")
_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


@dataclass
class TrainConfig:
    """Settings of one training run (see each field's help, or ``mtlkit train --help``)."""

    epochs: int = setting(
        100,
        "int",
        "maximum epochs; early stopping should end training sooner (a run that reaches this "
        "cap while still improving is marked not converged)",
        low=1,
    )
    batch_size: int | None = setting(
        None,
        "int",
        "rows per optimizer step (none: adapt to the training rows, the largest power of "
        "two from 32 to 512 that gives at least 20 steps per epoch)",
        low=1,
        optional=True,
        search=Choice((32, 64, 128, 256, 512, 1024)),
    )
    lr: float = setting(
        1e-3,
        "float",
        "learning rate of Adam",
        low=0.0,
        open_low=True,
        search=Range(1e-4, 1e-2, log=True),
    )
    weight_decay: float = setting(
        0.0,
        "float",
        "weight decay (L2 penalty) of Adam",
        low=0.0,
        search=Choice((0.0, 1e-6, 1e-5, 1e-4)),
    )
    patience: int = setting(
        5,
        "int",
        "epochs without improvement of the monitored validation metric before stopping "
        "(0: never stop early)",
        low=0,
    )
    monitor: str = setting(
        "loss",
        "str",
        "validation metric, averaged over the tasks that report it, that picks the best "
        "epoch and stops training",
        choices=METRIC_NAMES,
    )
    grad_clip: float | None = setting(
        None,
        "float",
        "clip the gradient norm at this value (none: no clipping)",
        low=0.0,
        open_low=True,
        optional=True,
    )
    lr_schedule: str | None = setting(
        None,
        "str",
        "learning-rate schedule (none: constant)",
        choices=LR_SCHEDULES,
        optional=True,
    )
    seed: int = setting(0, "int", "seed of the model's initial weights and batch order", low=0)
    shuffle: bool = setting(
        True,
        "bool",
        "shuffle the training rows each epoch (off: in their order, e.g. to check that a "
        "stream trains as the same rows in memory do)",
    )
    progress: bool = setting(True, "bool", "show progress bars")
    diagnostic_batches: int = setting(
        4,
        "int",
        "batches per epoch on which task-gradient conflict and gate use are measured (0: off)",
        low=0,
    )
    sparse_embeddings: bool = setting(
        False,
        "bool",
        "train embedding tables of 524,288 rows or more with sparse gradients (lazy Adam): "
        "about 3x faster on a 10M-row funnel, but 0.025 lower AUC after one epoch there "
        "(docs/categorical.md)",
    )
    calibration: str = setting(
        "none",
        "str",
        "recalibrate the probabilities after training, fitted on the validation split: "
        "temperature scaling, Platt's sigmoid or isotonic regression (docs/calibration.md)",
        choices=CALIBRATIONS,
    )
    device: str = setting(
        "cpu", "str", "where to train: cpu, cuda, cuda:N, or auto (the GPU when there is one)"
    )
    # How categorical columns become ids, declared with the preprocessor (data.vocabulary).
    max_categories: int = declared(VOCABULARY_PARAMS[0])
    hash_buckets: int | None = declared(VOCABULARY_PARAMS[1])
    min_frequency: int = declared(VOCABULARY_PARAMS[2])

    def __post_init__(self) -> None:
        for p in PARAMS:
            setattr(self, p.name, p.validate(getattr(self, p.name), "training"))
        if not _DEVICE.match(self.device):
            raise ConfigError(
                f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}."
            )

    @classmethod
    def params(cls) -> tuple[Param, ...]:
        return PARAMS

    def to_dict(self) -> dict:
        return asdict(self)


PARAMS: tuple[Param, ...] = params_of(TrainConfig)

#: The adaptive batch size gives every epoch at least this many optimizer steps ...
MIN_STEPS_PER_EPOCH = 20
#: ... within these bounds (powers of two).
AUTO_BATCH_RANGE = (32, 512)


def auto_batch_size(n_rows: int) -> int:
    """The batch size used when ``batch_size`` is None: the largest power of two that still
    gives :data:`MIN_STEPS_PER_EPOCH` steps per epoch over ``n_rows`` training rows, within
    :data:`AUTO_BATCH_RANGE`.

    Early stopping counts epochs; with a fixed large batch, a small table gets a handful of
    steps per epoch and a run stops (or hits the cap) after a few dozen steps, which decided
    rankings more than the models did (BENCHMARKS.md, "Convergence"). E.g. 3,500 rows -> 128
    (28 steps), 70,000 rows -> 512 (137 steps).
    """
    low, high = AUTO_BATCH_RANGE
    size = 1 << max(int(n_rows // MIN_STEPS_PER_EPOCH).bit_length() - 1, 0)
    return int(min(max(size, low), high))
