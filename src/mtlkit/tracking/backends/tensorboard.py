"""TensorBoard: one run folder of event files per training run, scalars per split and task.

Runs go under ``./runs/tensorboard`` (``tensorboard --logdir runs/tensorboard``); a grid's
cells are folders inside the grid's folder. Written with PyTorch's ``SummaryWriter``, which
needs the ``tensorboard`` package (``pip install "mtlkit[tensorboard]"``). TensorBoard keeps
no files, so artifacts are recorded as their paths (text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtlkit.errors import missing_extra
from mtlkit.tracking.base import TRACKERS, TrackedRun, Tracker

DEFAULT_ROOT = Path("runs") / "tensorboard"


@TRACKERS.register(
    "tensorboard",
    "TensorBoard event files under ./runs/tensorboard, one folder per run",
    extra="tensorboard",
)
@dataclass(frozen=True)
class TensorBoardTracker(Tracker):
    """Run folders under ``root``."""

    root: str

    @classmethod
    def create(cls) -> TensorBoardTracker:
        _writer_class()  # the package is there, or a clear error before any training
        return cls(str(DEFAULT_ROOT.resolve()))

    def start_run(self, name: str, parent: str | None = None) -> TensorBoardRun:
        folder = Path(parent) / name if parent else _unused(Path(self.root) / name)
        return TensorBoardRun(folder)

    def resume_run(self, run_id: str) -> TensorBoardRun:
        return TensorBoardRun(Path(run_id))

    def describe(self, run_id: str) -> str:
        return f"TensorBoard run {run_id}; browse: tensorboard --logdir {self.root}"


class TensorBoardRun(TrackedRun):
    def __init__(self, folder: Path) -> None:
        self.id = str(folder)
        self.writer = _writer_class()(log_dir=self.id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in params.items())
        self.writer.add_text("params", f"| setting | value |\n| --- | --- |\n{rows}")

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, global_step=step)

    def log_artifacts(self, path: Path, name: str | None = None) -> None:
        self.writer.add_text(f"artifacts/{name or Path(path).name}", str(Path(path).resolve()))

    def finish(self, failed: bool = False) -> None:
        self.writer.close()


def _writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise missing_extra("tracking with TensorBoard", "tensorboard", err) from None
    return SummaryWriter


def _unused(folder: Path) -> Path:
    """``folder``, or ``folder-2``, ``folder-3``... when a run already wrote there."""
    candidate, k = folder, 1
    while candidate.exists():
        k += 1
        candidate = folder.with_name(f"{folder.name}-{k}")
    return candidate
