"""The report of a comparison grid: tables, recommendation, plots, config and environment.

:func:`build_report` rebuilds everything from the cell files of a run folder (no training):
``results`` and ``summary`` tables (CSV + Parquet), PNG plots under ``plots/``, a
self-contained ``report.html`` (images inlined as base64, no network) and ``report.md``.
"""

from __future__ import annotations

import base64
import html
import json
import os
import platform
import re
import shlex
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

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
)
from mtlkit.experiments.config import BASELINE, CompareConfig
from mtlkit.experiments.stats import (
    all_converged,
    correction_note,
    recommendations,
    summarize_grid,
    tag_columns,
    unconverged_runs,
    variant_text,
)
from mtlkit.files import atomic_write_bytes, write_table
from mtlkit.markdown import md_escape
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
    tuning = tuning_section(run_dir, config, run_dir / PLOTS_DIR)
    plots += [Plot("Tuning", caption, path) for caption, path in tuning.figures] if tuning else []
    sentences = recommendations(summary, config.metric, config.scarce_task)
    sentences += uncompared_tasks(results, summary, config.metric)
    sentences += finish_unconverged(results, run_dir, config.train.epochs)
    context = {
        "run_dir": run_dir,
        "config": config,
        "summary": summary,
        "sentences": sentences,
        "plots": plots,
        "finished": len(cells),
        "total": len(grid_cells(config)),
        "command": _read(run_dir / COMMAND_FILE),
        "environment": environment(),
        "tuning": tuning,
    }
    atomic_write_bytes(run_dir / REPORT_MD, render_markdown(**context).encode())
    path = run_dir / REPORT_HTML
    atomic_write_bytes(path, render_html(**context).encode())
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
            label = f"{record.label} + {record.strategy}"
            histories.setdefault(label, []).append(record.history)
            predictions.setdefault(label, []).append(record.predictions)
        part = summary
        for tag, value in key.items():
            part = part[part[tag] == value]
        view = PlotInput(config.metric, histories, predictions, part, results)
        plots += _draw("variant", view, section, folder, suffix)
    everything = PlotInput(config.metric, {}, {}, summary, results)
    return plots + _draw("grid", everything, "Across the grid", folder, "")


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
                "mean ± std": f"{r['mean']:.4f} ± {r['std']:.4f}{mark}",
                "val fluct.": _number(r.get("val_fluctuation")),
                "95% CI": f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]",
                "gain vs single-task [95% CI]": "—"
                if r["model"] == BASELINE
                else f"{r['gain']:+.2%} [{r['gain_ci_low']:+.2%}, {r['gain_ci_high']:+.2%}]",
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


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:.88em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}
th{background:#f4f4f4}td:nth-child(2),td:nth-child(3){text-align:left}
tr:first-child td{font-weight:600}
.rec li{margin:.3em 0}.meta{color:#666}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.8em;overflow-x:auto}
"""


def render_html(
    run_dir, config, summary, sentences, plots, finished, total, command, environment, tuning=None
) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>mtlkit comparison — {e(run_dir.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>mtlkit comparison: {e(run_dir.name)}</h1>",
        f'<p class="meta">{_status(finished, total)} Generated '
        f"{datetime.now():%Y-%m-%d %H:%M}. Metric: test {e(config.metric)}.</p>",
        "<h2>Recommendation</h2>",
        '<ul class="rec">' + "".join(f"<li>{e(s)}</li>" for s in sentences) + "</ul>",
        f'<p class="meta">{e(correction_note(summary))}</p>',
        f"<h2>Summary: test {e(config.metric)} over seeds</h2>",
        f"<p>{e(_legend(config))}</p>",
    ]
    for title, table in table_groups(summary, config.scarce_task):
        parts.append(f"<h3>{e(title)}</h3>")
        parts.append(table.to_html(index=False, border=0, escape=True))
    if tuning is not None:
        parts += ["<h2>Tuning</h2>", f"<p>{e(tuning.intro)}</p>"]
        parts.append(tuning.table.to_html(index=False, border=0, escape=True))
    parts.append("<h2>Plots</h2>")
    section = None
    for plot in plots:
        if plot.section != section:
            section = plot.section
            parts.append(f"<h3>{e(section)}</h3>")
        data = base64.b64encode(plot.path.read_bytes()).decode()
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{e(plot.caption)}">'
            f"<figcaption>{e(plot.caption)} ({e(plot.path.name)})</figcaption></figure>"
        )
    parts += _reproduce_html(config, command, environment)
    parts.append("</body></html>")
    return "\n".join(parts)


def _reproduce_html(config, command, environment) -> list[str]:
    e = html.escape
    env_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in environment.items())
    return [
        "<h2>Reproduce</h2>",
        f"<p>Command:</p><pre>{e(command or '(not recorded)')}</pre>",
        f"<p>Configuration ({CONFIG_FILE}):</p><pre>{e(json.dumps(config.to_dict(), indent=2))}</pre>",
        f"<h2>Environment</h2><table>{env_rows}</table>",
    ]


def render_markdown(
    run_dir, config, summary, sentences, plots, finished, total, command, environment, tuning=None
) -> str:
    """The report as Markdown; every user-given string (model labels, task names, paths,
    the command) is escaped, so it shows as written and cannot inject markup or links."""
    e = md_escape
    config_json = json.dumps(config.to_dict(), indent=2)
    lines = [
        f"# mtlkit comparison: {e(run_dir.name)}",
        "",
        f"{_status(finished, total)} Metric: test {e(config.metric)}.",
        "",
        "## Recommendation",
        "",
        *[f"- {e(s)}" for s in sentences],
        "",
        e(correction_note(summary)),
        "",
        f"## Summary: test {e(config.metric)} over seeds",
        "",
        _legend(config),
        "",
    ]
    for title, table in table_groups(summary, config.scarce_task):
        lines += [f"### {e(title)}", "", _markdown_table(table), ""]
    if tuning is not None:
        lines += ["## Tuning", "", tuning.intro, "", _markdown_table(tuning.table), ""]
    lines += ["## Plots", ""]
    for plot in plots:
        lines.append(f"![{e(plot.section)}: {e(plot.caption)}](plots/{quote(plot.path.name)})")
    lines += [
        "",
        "## Reproduce",
        "",
        *_code_block(command or "(command not recorded)"),
        "",
        *_code_block(config_json, "json"),
        "",
        "## Environment",
        "",
        *[f"- {e(k)}: {e(v)}" for k, v in environment.items()],
        "",
    ]
    return "\n".join(lines)


def _code_block(text: str, language: str = "") -> list[str]:
    """A fenced code block whose fence is longer than any run of backticks in ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, text, fence]


def _markdown_table(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(md_escape(c) for c in table.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in table.columns) + "|"
    body = [
        "| " + " | ".join(md_escape(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body])


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
