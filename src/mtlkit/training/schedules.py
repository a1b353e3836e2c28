"""Learning-rate schedules by name: :data:`SCHEDULES` maps ``TrainConfig.lr_schedule`` to a
constructor of a PyTorch scheduler, with its declared parameters.

An entry's ``info``: ``on_metric`` (its ``step`` takes the monitored validation value, to be
lowered when it stops improving) and ``resumable`` (False when the schedule's shape depends
on the epoch budget, so a run cannot be continued with more epochs). Torch is imported when a
schedule is built, so the names can be read without it.
"""

from __future__ import annotations

from typing import Any

from mtlkit.params import Int
from mtlkit.registry import Registry

SCHEDULES: Registry[Any] = Registry("learning-rate schedule", __name__)


@SCHEDULES.register(
    "cosine",
    "cosine annealing from lr to 0 over the epoch budget (Loshchilov & Hutter, ICLR 2017, "
    "without restarts)",
    on_metric=False,
    resumable=False,
)
def cosine(optimizer: Any, epochs: int) -> Any:
    import torch

    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))


@SCHEDULES.register(
    "plateau",
    "divide lr by 10 when the monitored validation metric stops improving",
    params=[Int("patience", 2, "epochs without improvement before lowering lr", low=0)],
    on_metric=True,
    resumable=True,
)
def plateau(optimizer: Any, epochs: int, patience: int) -> Any:  # noqa: ARG001 (same signature)
    import torch

    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=patience)


def make_scheduler(name: str | None, optimizer: Any, epochs: int) -> Any:
    """The scheduler of schedule ``name`` (None: a constant rate, no scheduler)."""
    if name is None:
        return None
    entry = SCHEDULES.entry(name)
    return entry.target(optimizer, epochs, **entry.resolve({}, SCHEDULES.kind))


def steps_on_metric(name: str | None) -> bool:
    """Whether schedule ``name``'s ``step`` takes the monitored value."""
    return name is not None and SCHEDULES.entry(name).info["on_metric"]


def resumable(name: str | None) -> bool:
    """Whether a run with schedule ``name`` can be continued from its saved state."""
    return name is None or SCHEDULES.entry(name).info["resumable"]
