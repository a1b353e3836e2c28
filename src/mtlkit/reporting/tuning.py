"""The report's tuning section (a :class:`~mtlkit.reporting.document.Section`): the budget
every model x strategy got, the tuned values, the trials' time, Optuna's parameter
importances and each study's progress over its trials.

Read from the study records of the run folder (:mod:`mtlkit.experiments.tuning_plan`); torch-
and optuna-free.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mtlkit.experiments.cells import grid_cells
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.tuning_plan import MIN_TRIALS_FOR_IMPORTANCE, StudyRecord, load_studies
from mtlkit.reporting.document import Image, Paragraph, Section, Table
from mtlkit.reporting.figures import colours, panels, save_figure


def tuning_section(run_dir: Path, config: CompareConfig, plots_dir: Path) -> Section | None:
    """The report's section on ``run_dir``'s tuning (None when the grid did not tune): its
    text, its studies in grid order, its figures (written into ``plots_dir``)."""
    order = {c.study_id: i for i, c in enumerate(grid_cells(config, run_dir))}
    records = sorted(load_studies(run_dir), key=lambda r: order.get(r.study, len(order)))
    if not records:
        return None
    importance = plot_importances(records)
    blocks = [Paragraph(_intro(records, importance is not None)), Table(tuning_table(records))]
    if importance is not None:
        path = save_figure(importance, plots_dir / "tuning_importances.png")
        caption = "Optuna parameter importances (PED-ANOVA) per model x strategy"
        blocks.append(Image(caption, path))
    path = save_figure(plot_trials(records), plots_dir / "tuning_trials.png")
    blocks.append(Image("validation metric of each tuning trial and the best so far", path))
    return Section("Tuning", blocks)


def tuning_table(records: list[StudyRecord]) -> pd.DataFrame:
    """One row per study: the budget spent, the best validation value and the tuned values."""
    rows = []
    for r in records:
        row = {f"{k}": v for k, v in r.tags.items()}
        row.update(
            {
                "model": r.label,
                "strategy": r.strategy,
                "trials": r.count("COMPLETE") + r.count("PRUNED"),
                "pruned": r.count("PRUNED"),
                f"best val {r.monitor}": f"{r.best_value:.4f}",
                "trials' time (s)": f"{r.time_s:.1f}",
                "tuned values": ", ".join(f"{k}={_shown(v)}" for k, v in r.settings().items()),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def plot_importances(records: list[StudyRecord]) -> Figure | None:
    """Each study's parameter importances as horizontal bars (None when no study has any)."""
    shown = [r for r in records if r.importances]
    if not shown:
        return None
    fig, axes = panels(
        len(shown), "parameter importances (share of the validation metric's variance)"
    )
    for ax, record in zip(axes, shown):
        names = list(record.importances)[::-1]
        ax.barh(names, [record.importances[n] for n in names], color=colours()[0])
        ax.set(title=_title(record), xlim=(0, 1))
        ax.tick_params(axis="y", labelsize="small")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_trials(records: list[StudyRecord]) -> Figure:
    """Per data variant, every study's trial values and its best so far; a pruned trial is
    an x at its last reported value."""
    variants = list(dict.fromkeys(_variant(r) for r in records))
    fig, axes = panels(len(variants), f"tuning trials: validation {records[0].monitor}")
    for ax, variant in zip(axes, variants):
        for record, colour in zip([r for r in records if _variant(r) == variant], colours()):
            done = [t for t in record.trials if t["state"] in ("COMPLETE", "PRUNED")]
            x = np.arange(1, len(done) + 1)
            values = pd.Series([t["value"] for t in done], dtype=float)
            best = values.cummax() if record.direction == "maximize" else values.cummin()
            ax.plot(x, best.ffill(), color=colour, label=_title(record))
            ax.scatter(x, values, color=colour, s=12)
            last = pd.Series([t["last_value"] for t in done], dtype=float)
            pruned = np.array([t["state"] == "PRUNED" for t in done])
            ax.scatter(x[pruned], last[pruned], marker="x", color=colour)
        ax.set(xlabel="trial", ylabel=f"validation {records[0].monitor}", title=variant or "")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def _intro(records: list[StudyRecord], importances: bool) -> str:
    tune, first = records[0].tune, records[0]
    pruning = "median pruning on" if tune["pruning"] else "no pruning"
    total = sum(r.time_s for r in records)
    text = (
        f"Every model x strategy, single-task included, got the same budget: {tune['trials']} "
        f"Optuna trials (TPE sampler, seed {tune['seed']}; {pruning}) on the training and "
        f"validation splits only (the test split is never used for tuning), "
        f"{'maximising' if first.direction == 'maximize' else 'minimising'} the validation "
        f"{first.monitor}. Each run of the summary trained with its model's best values below. "
        f"The trials took {total:.0f} s in all. A pruned trial was stopped early because it "
        "was worse than the median of the earlier trials at the same epoch; it counts in the "
        "budget."
    )
    if tune.get("keep"):
        text += f" Kept at their configured values: {', '.join(tune['keep'])}."
    if not importances:
        text += (
            f" Parameter importances need at least {MIN_TRIALS_FOR_IMPORTANCE} finished (not "
            "pruned) trials per study."
        )
    return text


def _title(record: StudyRecord) -> str:
    variant = _variant(record)
    return f"{record.label} + {record.strategy}" + (f" ({variant})" if variant else "")


def _variant(record: StudyRecord) -> str:
    return ", ".join(
        f"{k} {v:+.2f}" if k == "correlation" else f"{k.replace('_', ' ')} {v:g}"
        for k, v in record.tags.items()
    )


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)
