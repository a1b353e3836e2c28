"""The report of a comparison grid: tables, recommendation, plots, config and environment.

:func:`build_report` rebuilds everything from the cell files of a run folder (no training):
``results`` and ``summary`` tables (CSV + Parquet), PNG plots under ``plots/``, and the
report's content, built once as a document (:func:`report_document`, see
:mod:`mtlkit.reporting.document`) and rendered to a self-contained ``report.html`` (images
inlined as base64, no network) and to ``report.md``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from mtlkit.evaluation.metrics import check_reported, metrics_for
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments.cells import (
    COMMAND_FILE,
    CONFIG_FILE,
    PLOTS_DIR,
    REPORT_HTML,
    REPORT_MD,
    RESULTS_TABLE,
    SUMMARY_TABLE,
    grid_cells,
    load_cells,
    read_config,
    results_frame,
    task_groups,
)
from mtlkit.experiments.config import BASELINE, CompareConfig, all_in_one_label
from mtlkit.experiments.stats import (
    all_converged,
    correction_note,
    grouping_sentences,
    recommendations,
    summarize_grid,
    tag_columns,
    unconverged_runs,
    variant_text,
)
from mtlkit.files import atomic_write_bytes, write_table
from mtlkit.reporting.document import (
    Bullets,
    Code,
    Image,
    Paragraph,
    Section,
    Table,
    to_html,
    to_markdown,
)
from mtlkit.reporting.figures import save_figure
from mtlkit.reporting.plots import PlotInput, report_plots
from mtlkit.reporting.tuning import tuning_section

LIBRARIES = ("mtlkit", "torch", "numpy", "pandas", "scikit-learn", "scipy", "matplotlib")


@dataclass
class Plot:
    section: str
    caption: str
    path: Path


@dataclass
class Report:
    html: Path
    summary: pd.DataFrame
    sentences: list[str]


def build_report(
    run_dir: str | Path,
    metric: str | None = None,
    correction: str | None = None,
    *,
    config: CompareConfig | None = None,
    records: list[RunRecord] | None = None,
) -> Report:
    """Write the tables, plots, ``report.html`` and ``report.md`` of ``run_dir``, comparing
    ``metric`` with ``correction`` for multiple comparisons (default: the grid's own). A grid
    that just ran passes its ``config`` and the ``records`` of its cells (in grid order);
    otherwise (``mtlkit report``) both are read from ``run_dir``."""
    run_dir = Path(run_dir)
    given = {"metric": metric, "correction": correction}
    overrides = {k: v for k, v in given.items() if v}
    if config is None:
        saved = read_config(run_dir)
        config = CompareConfig.from_mapping({**saved, **overrides}, validate=False)
    elif overrides:
        config = replace(config, **overrides)
    cells = load_cells(run_dir, config) if records is None else records
    tasks = {t: SimpleNamespace(name=t, kind=k) for c in cells for t, k in c.task_kinds.items()}
    check_reported(config.metric, list(tasks.values()), "metric")
    results = results_frame(cells)
    summary = summarize_grid(
        results, config.metric, "test", config.higher_is_better, config.correction
    )
    write_table(results, run_dir / RESULTS_TABLE)
    write_table(summary, run_dir / SUMMARY_TABLE)
    plots = make_plots(config, cells, results, summary, run_dir / PLOTS_DIR)
    sentences = grouping_sentences(summary, task_groups(config, run_dir), config.scarce_task)
    sentences += recommendations(summary, config.metric, config.scarce_task)
    sentences += uncompared_tasks(results, summary, config.metric)
    sentences += finish_unconverged(results, run_dir, config.train.epochs)
    document = report_document(
        run_dir,
        config,
        summary,
        sentences,
        plots,
        finished=len(cells),
        total=len(grid_cells(config, run_dir)),
        tuning=tuning_section(run_dir, config, run_dir / PLOTS_DIR),
    )
    atomic_write_bytes(run_dir / REPORT_MD, to_markdown(document, run_dir).encode())
    path = run_dir / REPORT_HTML
    atomic_write_bytes(path, to_html(document).encode())
    return Report(path, summary, sentences)


def make_plots(
    config: CompareConfig,
    cells: list[RunRecord],
    results: pd.DataFrame,
    summary: pd.DataFrame,
    folder: Path,
) -> list[Plot]:
    """Every registered report plot as PNG files in ``folder``: the per-variant plots for
    each data variant, then the plots across the grid (see :data:`~.plots.PLOTS`)."""
    plots: list[Plot] = []
    tags = tag_columns(results)
    for variant, records in _by_variant(cells, tags).items():
        key = dict(zip(tags, variant))
        suffix = "".join(
            f"_{name}{key[tag]:{spec}}"
            for tag, name, spec in (
                ("correlation", "corr", "+.2f"),
                ("label_fraction", "frac", "g"),
            )
            if tag in key
        )
        section = variant_text(key, config.scarce_task, heading=True)
        histories: dict[str, list] = {}
        predictions: dict[str, list] = {}
        for record in records:
            label = f"{_run_name(record)} + {record.strategy}"
            histories.setdefault(label, []).append(record.history)
            predictions.setdefault(label, []).append(record.predictions)
        part = summary
        for tag, value in key.items():
            part = part[part[tag] == value]
        view = PlotInput(config.metric, histories, predictions, part, results)
        plots += _draw("variant", view, section, folder, suffix)
    everything = PlotInput(config.metric, {}, {}, summary, results)
    return plots + _draw("grid", everything, "Across the grid", folder, "")


def _run_name(record: RunRecord) -> str:
    """The model label, with its task group for a grouped configuration's run (a history
    holds only its group's tasks)."""
    if all_in_one_label(record.label) is None:
        return record.label
    return f"{record.label}[{'+'.join(record.task_kinds)}]"


def _draw(scope: str, view: PlotInput, section: str, folder: Path, suffix: str) -> list[Plot]:
    out = []
    for entry in report_plots(scope):
        fig = entry.target(view)
        if fig is not None:
            path = save_figure(fig, folder / f"{entry.name}{suffix}.png")
            caption = entry.description.replace("test metric", f"test {view.metric}")
            out.append(Plot(section, caption, path))
    return out


def environment() -> dict[str, str]:
    """Library versions and the machine, for the report's reproducibility section."""
    env = {"python": sys.version.split()[0]}
    for lib in LIBRARIES:
        try:
            env[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            env[lib] = "not installed"
    env["machine"] = f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPU cores"
    return env


#: Marks the numbers of a model whose runs did not all converge.
UNCONVERGED_MARK = "†"


def display_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as people read it: formatted numbers, a significance marker, and the
    converged runs (a model whose runs did not all converge is marked, unranked and
    judged "not converged")."""
    rows = []
    for _, r in summary.iterrows():
        converged = all_converged(r)
        if not converged:
            verdict = "not converged"
        elif r["model"] == BASELINE:
            verdict = "baseline"
        elif not r["significant"]:
            detectable = r.get("detectable_gain")
            shown = "" if pd.isna(detectable) else f" (cannot resolve < {detectable:.2%})"
            verdict = f"n.s.{shown}"
        else:
            verdict = "better" if r["gain"] > 0 else "worse"
        mark = "" if converged else f" {UNCONVERGED_MARK}"
        n_converged = int(r.get("n_converged", r["n_seeds"]))
        rows.append(
            {
                "rank": "—" if pd.isna(r["rank"]) else int(r["rank"]),
                "model": r["model"],
                "strategy": r["strategy"],
                "seeds": int(r["n_seeds"]),
                "converged": f"{n_converged}/{int(r['n_seeds'])}{mark}",
                "mean ± std": f"{r['mean']:.4f} ± {_number(r['std'])}{mark}",
                "val fluct.": _number(r.get("val_fluctuation")),
                "95% CI": _interval(r["ci_low"], r["ci_high"], "{:.4f}"),
                "gain vs single-task [95% CI]": "—"
                if r["model"] == BASELINE
                else f"{r['gain']:+.2%} "
                + _interval(r["gain_ci_low"], r["gain_ci_high"], "{:+.2%}"),
                "p (paired t)": "—" if pd.isna(r["p_value"]) else f"{r['p_value']:.3f}",
                "adjusted p": "—" if pd.isna(r["p_adjusted"]) else f"{r['p_adjusted']:.3f}",
                "vs single-task": verdict,
                "time/run (s)": f"{r['train_time_s']:.1f}",
                "params": f"{int(r['n_params']):,}",
            }
        )
    return pd.DataFrame(rows)


def _number(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.4f}"


def _interval(low, high, form: str) -> str:
    """``[low, high]``, or a dash when there is no interval (one seed)."""
    if pd.isna(low) or pd.isna(high):
        return "—"
    return f"[{form.format(low)}, {form.format(high)}]"


def table_groups(
    summary: pd.DataFrame, scarce_task: str | None = None
) -> list[tuple[str, pd.DataFrame]]:
    """(title, display table) per (data variant x) task, best first, unranked rows last."""
    tags = tag_columns(summary)
    out = []
    for key, group in summary.groupby([*tags, "task"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        variant = variant_text(dict(zip(tags, key)), scarce_task, heading=True)
        title = f"{key[-1]}" + (f" — {variant}" if tags else "")
        out.append((title, display_table(group.sort_values("rank", na_position="last"))))
    return out


def report_document(
    run_dir: Path,
    config: CompareConfig,
    summary: pd.DataFrame,
    sentences: list[str],
    plots: list[Plot],
    finished: int,
    total: int,
    tuning: Section | None = None,
) -> Section:
    """The report's content, rendered to ``report.html`` and to ``report.md``."""
    metric = config.metric
    when = f"Generated {datetime.now():%Y-%m-%d %H:%M}."
    summary_section = Section(f"Summary: test {metric} over seeds", [Paragraph(_legend(config))])
    for title, table in table_groups(summary, config.scarce_task):
        summary_section.blocks.append(Section(title, [Table(table, ranked=True)]))
    plot_section = Section("Plots")
    for plot in plots:
        if not plot_section.blocks or plot_section.blocks[-1].title != plot.section:
            plot_section.blocks.append(Section(plot.section))
        plot_section.blocks[-1].blocks.append(Image(plot.caption, plot.path))
    config_json = json.dumps(config.to_dict(), indent=2)
    return Section(
        f"mtlkit comparison: {run_dir.name}",
        [
            Paragraph(f"{_status(finished, total)} {when} Metric: test {metric}.", note=True),
            Section(
                "Recommendation",
                [Bullets(sentences), Paragraph(correction_note(summary), note=True)],
            ),
            summary_section,
            *([tuning] if tuning is not None else []),
            plot_section,
            Section(
                "Reproduce",
                [
                    Paragraph("Command:"),
                    Code(_read(run_dir / COMMAND_FILE) or "(not recorded)"),
                    Paragraph(f"Configuration ({CONFIG_FILE}):"),
                    Code(config_json, "json"),
                ],
            ),
            Section("Environment", [Bullets([f"{k}: {v}" for k, v in environment().items()])]),
        ],
    )


def _legend(config: CompareConfig) -> str:
    return (
        f"Mean and sample standard deviation over {len(config.seeds)} seed(s), a t-based 95% "
        "confidence interval, and the relative gain over the single-task baseline paired by "
        "seed (positive = better) with a paired t-test: its raw p-value and the p-value "
        "adjusted for the grid's many comparisons (see above); 'better', 'worse' and 'n.s.' "
        "(not significant) follow the adjusted p-value at 0.05, and 'n.s.' gives the smallest "
        "difference the seeds could resolve. 'converged' counts the runs that "
        f"early stopping ended; {UNCONVERGED_MARK} marks a model whose runs did not all "
        "converge (they hit the epoch cap while the validation metric was still improving): "
        "it is not ranked or judged. 'val fluct.' is the typical epoch-to-epoch jump of the "
        "validation metric beyond its trend, averaged over seeds (0 for a smooth learning "
        "curve): with the std over seeds, how stable a model trains. All models share the "
        f"same splits (split seed {config.split_seed})."
    )


def _status(finished: int, total: int) -> str:
    if finished >= total:
        return f"All {total} runs finished."
    return (
        f"Only {finished} of {total} runs finished: rerun the same 'mtlkit compare' command "
        "to complete the grid."
    )


def _by_variant(cells: list[RunRecord], tags: list[str]) -> dict:
    out: dict = {}
    for cell in cells:
        out.setdefault(tuple(cell.tags.get(t) for t in tags), []).append(cell)
    return out


def finish_unconverged(results: pd.DataFrame, run_dir: Path, epochs: int) -> list[str]:
    """The sentence that names the runs that did not converge and the command that
    continues them (with twice the epoch budget) from their saved state."""
    runs = unconverged_runs(results)
    if not runs:
        return []
    shown = ", ".join(runs[:6]) + (f" and {len(runs) - 6} more" if len(runs) > 6 else "")
    total = results["run_id"].nunique()
    return [
        f"{len(runs)} of {total} runs did not converge within {epochs} epochs ({shown}). "
        "Continue them from where they stopped (converged runs are kept): "
        f"mtlkit compare --resume {shlex.quote(str(run_dir))} --epochs {2 * epochs}"
    ]


def uncompared_tasks(results: pd.DataFrame, summary: pd.DataFrame, metric: str) -> list[str]:
    """A sentence for each task the compared metric does not cover (e.g. roc_auc on a
    regression task, pr_auc on a multiclass one), naming the metrics it does report."""
    kinds = results.drop_duplicates("task").set_index("task")["task_kind"]
    covered = set(summary["task"]) if not summary.empty else set()
    sentences = []
    for task, kind in kinds.items():
        if task in covered:
            continue
        offered = [m for m in metrics_for(kind) if m != "loss"]
        sentences.append(
            f"Task {task} (a {kind} task) reports no {metric}, so it is not compared above; "
            f"'mtlkit report RUN_DIR --metric {offered[0]}' compares it without retraining "
            f"(it reports {', '.join(metrics_for(kind))})."
        )
    return sentences


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None
