"""The task-affinity heatmap and its page: ``affinity.png`` and a self-contained
``affinity.html`` (image inlined, the groups and the matrix with its intervals)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtlkit.affinity.study import AffinityResult
from mtlkit.files import atomic_write_bytes
from mtlkit.reporting.document import Bullets, Image, Paragraph, Section, Table, to_html
from mtlkit.reporting.figures import panels, save_figure


def group_order(result: AffinityResult) -> list[int]:
    """The task indices, group after group (the heatmaps' row and column order)."""
    index = {t: k for k, t in enumerate(result.tasks)}
    return [index[t] for group in result.groups for t in group]


def plot_affinity(result: AffinityResult) -> Figure:
    """Two heatmaps ordered by group, group boundaries drawn: TAG's affinity of the row task
    onto the column task and the cosine of the task gradients on the shared parameters (the
    diagonals left blank: a task onto itself dwarfs the rest, its cosine is 1)."""
    order = group_order(result)
    names = [result.tasks[k] for k in order]
    fig, axes = panels(2, "task affinity (mean over seeds), tasks ordered by group")
    affinity = result.matrix[np.ix_(order, order)].copy()
    np.fill_diagonal(affinity, math.nan)
    cosine = result.cosine[np.ix_(order, order)].copy()
    np.fill_diagonal(cosine, math.nan)
    bounds = np.cumsum([len(g) for g in result.groups])[:-1] - 0.5
    titles = ("TAG affinity: row task onto column task", "gradient cosine (shared parameters)")
    for ax, values, title, shown in zip(axes, (affinity, cosine), titles, ("{:.3f}", "{:.2f}")):
        finite = values[np.isfinite(values)]
        limit = float(np.abs(finite).max()) if finite.size else 1.0
        image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(names)), names, rotation=90)
        ax.set_yticks(range(len(names)), names)
        ax.set_title(title, fontsize="medium")
        for b in bounds:
            ax.axhline(b, color="k", linewidth=1.5)
            ax.axvline(b, color="k", linewidth=1.5)
        if len(names) <= 8:
            for (i, j), v in np.ndenumerate(values):
                if math.isfinite(v):
                    ax.text(j, i, shown.format(v), ha="center", va="center", fontsize="xx-small")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def write_affinity_report(result: AffinityResult, folder: str | Path) -> Path:
    """Write ``affinity.png`` and ``affinity.html`` into ``folder``; returns the page's path."""
    folder = Path(folder)
    png = save_figure(plot_affinity(result), folder / "affinity.png")
    path = folder / "affinity.html"
    atomic_write_bytes(path, to_html(affinity_document(result, png)).encode())
    return path


def affinity_document(result: AffinityResult, png: Path) -> Section:
    """The page's content: the settings, the groups, the heatmaps ``png`` and every pair."""
    settings = result.settings
    table = pd.DataFrame(
        [
            {
                "from (step on)": result.tasks[i],
                "onto (loss of)": result.tasks[j],
                "affinity": result.matrix[i, j],
                "95% low": result.matrix_low[i, j],
                "95% high": result.matrix_high[i, j],
                "gradient cosine": result.cosine[i, j],
            }
            for i in range(len(result.tasks))
            for j in range(len(result.tasks))
            if i != j
        ]
    )
    for column in table.columns[2:]:
        table[column] = table[column].map("{:.4g}".format)
    how = (
        f"{settings.get('n_groups')} groups asked for"
        if settings.get("n_groups")
        else "the fewest groups whose best score reaches 95% of the highest"
    )
    intro = (
        f"Model {settings.get('model')}, {settings.get('epochs')} epochs of joint training per "
        f"seed, seeds {result.seeds}. Affinity of task i onto task j: TAG (Fifty et al., "
        "NeurIPS 2021), the relative decrease of j's loss after a step of the shared parameters "
        "along i's gradient, per unit learning rate, averaged over the probed batches."
    )
    return Section(
        "Task affinity",
        [
            Paragraph(intro),
            Section(f"Groups ({how})", [Bullets([", ".join(g) for g in result.groups])]),
            Image("affinity heatmaps, tasks ordered by group", png),
            Section("Every pair (mean over seeds, 95% t-interval)", [Table(table)]),
        ],
    )
