"""Shared plumbing of the ``reproduce_*.py`` scripts: grids through mtlkit's own machinery,
convergence checks, confidence intervals and Markdown tables.

Each reproduction builds :class:`~mtlkit.experiments.config.CompareConfig` grids (the settings
``mtlkit compare --config`` reads; every grid's ``config.yaml`` is saved so that it can be
rerun with the CLI), runs their cells with :func:`mtlkit.experiments.grid.run_grid` (resumable:
a finished cell is never trained again) and reads the tidy results back with
:func:`mtlkit.experiments.cells.results_frame`. Raw outputs go under ``runs/`` (git-ignored).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mtlkit.evaluation.intervals import mean_ci
from mtlkit.experiments.backends import make_backend
from mtlkit.experiments.cells import Cell, grid_cells, results_frame
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.grid import check_data, load_grid_data, prepare_run_dir, run_grid
from mtlkit.experiments.stats import paired_gain
from mtlkit.files import atomic_write_text

#: Where the raw results of the reproductions go (git-ignored).
RUNS = Path("runs") / "reproductions"
#: Where the committed figures go.
FIGURES = Path("docs") / "figures"


def model(name: str, label: str | None = None, **params) -> dict:
    """A model entry of a grid config (the mapping form, so results show a short label)."""
    return {"model": name, "params": params, "label": label or name}


def run_cells(
    values: dict, run_dir: Path, keep: Callable[[Cell], bool] | None = None
) -> pd.DataFrame:
    """Run the cells of the grid ``values`` (a config mapping) that ``keep`` selects and
    ``run_dir`` does not hold yet; returns the tidy results of the selected cells.

    The grid's settings are saved as ``run_dir/config.yaml`` (rerun it with
    ``mtlkit compare --config``) and checked against the saved ``config.json`` on a resume.
    """
    config = CompareConfig.from_mapping(values)
    run_dir = Path(run_dir)
    data = load_grid_data(config)
    check_data(config, data)
    prepare_run_dir(config, run_dir)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    cells = [c for c in grid_cells(config) if keep is None or keep(c)]
    if not cells:
        return pd.DataFrame()
    records = run_grid(config, run_dir, data, make_backend("local"), cells=cells)
    return results_frame(records)


def add_convergence(results: pd.DataFrame, epochs: int, patience: int) -> pd.DataFrame:
    """Add ``converged`` where the results lack it (mtlkit records it per run from 10a on):
    the run stopped early, or its best epoch lies ``patience`` epochs or more before the cap
    (it had stopped improving when it ran out of epochs)."""
    out = results.copy()
    if "converged" in out.columns:
        return out
    out["converged"] = (out["epochs"] < epochs) | (out["best_epoch"] <= epochs - patience)
    return out


def convergence_note(results: pd.DataFrame) -> str:
    """One line: how many runs converged (counted once per run)."""
    runs = results.drop_duplicates(["run_id", *_tags(results)])
    bad = runs[~runs["converged"]]
    line = f"{len(runs) - len(bad)}/{len(runs)} runs converged (early-stopped before the cap)"
    if len(bad):
        line += "; not converged: " + ", ".join(sorted(set(bad["run_id"])))
    return line


def _tags(results: pd.DataFrame) -> list[str]:
    keys = ("group", "correlation", "lr", "data_seed", "setting")
    return [c for c in keys if c in results.columns]


def per_run(results: pd.DataFrame, split: str, metric: str, keys: Sequence[str]) -> pd.DataFrame:
    """One value per run: ``metric`` on ``split`` averaged over the tasks that report it."""
    sel = results[(results["split"] == split) & (results["metric"] == metric)]
    return sel.groupby([*keys, "model", "seed"], as_index=False)["value"].mean()


def ci_row(values: Iterable[float], digits: int = 4) -> dict:
    """Mean, std and 95% CI of ``values`` (t-based, :func:`mtlkit.experiments.stats.mean_ci`)."""
    values = list(values)
    mean, std, low, high = mean_ci(values)
    return {
        "n": int(np.isfinite(np.asarray(values, dtype=float)).sum()),
        "mean": mean,
        "std": std,
        "ci_low": low,
        "ci_high": high,
        "text": fmt_ci(mean, low, high, digits),
    }


def paired_row(a: pd.Series, b: pd.Series, higher_is_better: bool) -> dict:
    """``a`` against ``b``, paired by index (seed): relative gain of ``a`` with its 95% CI and
    the paired t-test p-value (:func:`mtlkit.experiments.stats.paired_gain`)."""
    g = paired_gain(a, b, higher_is_better)
    return {"gain": g.gain, "gain_low": g.ci_low, "gain_high": g.ci_high, "p": g.p_value}


def fmt_ci(mean: float, low: float, high: float, digits: int = 4) -> str:
    if not math.isfinite(mean):
        return "—"
    if not math.isfinite(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def fmt_gain(row: dict) -> str:
    if not math.isfinite(row["gain"]):
        return "—"
    p = "" if not math.isfinite(row["p"]) else f", p={row['p']:.3f}"
    return f"{row['gain']:+.2%} [{row['gain_low']:+.2%}, {row['gain_high']:+.2%}]{p}"


def markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub Markdown table (no extra dependency)."""
    cells = [[str(c) for c in frame.columns]] + [
        [_cell(v) for v in row] for row in frame.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "|".join(" --- " for _ in frame.columns) + "|")
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_outputs(out: Path, name: str, frame: pd.DataFrame, text: str | None = None) -> None:
    """Save a raw table as CSV (and its Markdown rendering) in the run folder ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"{name}.csv", index=False)
    atomic_write_text(out / f"{name}.md", (text or markdown(frame)) + "\n")
