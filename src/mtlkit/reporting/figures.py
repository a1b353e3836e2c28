"""Shared figure helpers: the matplotlib backend, panel grids, colours, saving (atomic).

Every plot of :mod:`mtlkit.reporting.plots` is drawn with these.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(
    ("module://", "nbagg")
) else None
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mtlkit.errors import ConfigError  # noqa: E402
from mtlkit.evaluation.run_record import History  # noqa: E402
from mtlkit.files import atomic_write_bytes  # noqa: E402


def panels(n: int, title: str) -> tuple[Figure, list]:
    """A figure with ``n`` panels (up to 3 per row) under ``title``."""
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, list(axes.flat[:n])


def colours() -> list[str]:
    """The colour cycle, long enough for any number of models."""
    return plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (atomically, folders created) and close it; returns the path."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def tasks_of(per_model: Mapping[str, Sequence]) -> list[str]:
    """The task names of histories or prediction dicts, in first-seen order."""
    tasks: list[str] = []
    for runs in per_model.values():
        for run in runs:
            names = run.epochs[0].train if isinstance(run, History) and run.epochs else run
            tasks.extend(t for t in names if t not in tasks)
    if not tasks:
        raise ConfigError("nothing to plot: no run has any task.")
    return tasks
