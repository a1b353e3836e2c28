"""Statistics over seeds: t-based confidence intervals, the MTL gain over single-task paired
by seed (paired t-test), ranks, and a recommendation sentence per task and data variant.

A model whose runs did not all converge (they hit the epoch cap while the validation metric
was still improving) gets no rank, and no verdict is drawn where such runs compete: their
numbers say more about the epoch budget than about the model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from mtlkit.evaluation.intervals import mean_ci
from mtlkit.experiments.config import BASELINE

SIGNIFICANCE = 0.05
#: Columns that identify one data variant (a synthetic task correlation, the share of the
#: scarce task's training labels), when present.
TAG_COLUMNS = ("correlation", "label_fraction")


def paired_gain(
    values: pd.Series, baseline: pd.Series, higher_is_better: bool = True
) -> tuple[float, float, float, float]:
    """Relative improvement over the baseline, paired by index (seed).

    Returns (mean relative gain, its CI low, CI high, paired t-test p-value). A positive gain
    is an improvement whatever the metric's direction.
    """
    both = pd.concat([values.rename("v"), baseline.rename("b")], axis=1).dropna()
    if both.empty:
        return (math.nan,) * 4
    sign = 1.0 if higher_is_better else -1.0
    relative = sign * (both["v"] - both["b"]) / both["b"].abs()
    mean, _, low, high = mean_ci(relative)
    diff = (both["v"] - both["b"]).to_numpy()
    p = math.nan
    if len(both) >= 2 and np.allclose(diff, diff[0]):
        p = math.nan if np.isclose(diff[0], 0) else 0.0  # a constant, non-zero difference
    elif len(both) >= 2:
        p = float(stats.ttest_rel(both["v"], both["b"]).pvalue)
    return mean, low, high, p


def tag_columns(results: pd.DataFrame) -> list[str]:
    return [c for c in TAG_COLUMNS if c in results.columns]


def summarize_grid(
    results: pd.DataFrame,
    metric: str = "roc_auc",
    split: str = "test",
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """One row per (data variant x) model x strategy x task: seeds, converged seeds, mean,
    std, 95% CI, the gain over single-task with its CI and p-value, ``significant``, the rank
    within the task (only for models whose every run converged), mean training time and
    parameter count, and two stability measures: ``std`` across seeds and
    ``val_fluctuation``, the mean over seeds of the epoch-to-epoch noise of the validation
    metric (:meth:`~mtlkit.evaluation.record.History.fluctuation`)."""
    tags = tag_columns(results)
    sel = results[(results["metric"] == metric) & (results["split"] == split)]
    keys = [*tags, "model", "strategy", "task"]
    out = []
    for group_key, group in sel.groupby([*tags, "task"], sort=False):
        group_key = group_key if isinstance(group_key, tuple) else (group_key,)
        base = group[group["model"] == BASELINE].set_index("seed")["value"]
        for (model, strategy), runs in group.groupby(["model", "strategy"], sort=False):
            per_seed = runs.set_index("seed")["value"]
            mean, std, low, high = mean_ci(per_seed)
            row = dict(zip([*tags, "task"], group_key))
            converged = runs["converged"] if "converged" in runs else pd.Series(True, runs.index)
            row.update(
                model=model,
                strategy=strategy,
                n_seeds=int(per_seed.notna().sum()),
                n_converged=int(converged.astype(bool).sum()),
                mean=mean,
                std=std,
                ci_low=low,
                ci_high=high,
                train_time_s=float(runs["train_time_s"].mean()),
                n_params=int(runs["n_params"].iloc[0]),
                val_fluctuation=float(runs.get("val_fluctuation", pd.Series(math.nan)).mean()),
            )
            if model == BASELINE or base.empty:
                row.update(gain=0.0 if model == BASELINE else math.nan)
                row.update(gain_ci_low=math.nan, gain_ci_high=math.nan, p_value=math.nan)
            else:
                gain, g_low, g_high, p = paired_gain(per_seed, base, higher_is_better)
                row.update(gain=gain, gain_ci_low=g_low, gain_ci_high=g_high, p_value=p)
            row["significant"] = bool(row["p_value"] < SIGNIFICANCE)
            out.append(row)
    summary = pd.DataFrame(out)
    if summary.empty:
        return summary
    ranked = summary["mean"].where(summary["n_converged"] >= summary["n_seeds"])
    summary["rank"] = (
        ranked.groupby([summary[c] for c in [*tags, "task"]])
        .rank(ascending=not higher_is_better, method="min")
        .astype("Int64")
    )
    return summary[[*keys, *[c for c in summary.columns if c not in keys]]].reset_index(drop=True)


def all_converged(row: pd.Series) -> bool:
    """Whether every run of a summary row converged."""
    return row.get("n_converged", row["n_seeds"]) >= row["n_seeds"]


def variant_text(key: dict, scarce_task: str | None = None, heading: bool = False) -> str:
    """A data variant in words: "at task correlation +0.90 with 2% of income's training
    labels" ("on this data" for none), or as a ``heading``: "Task correlation +0.90, 2% of
    income's training labels" ("Models" for none)."""
    parts = []
    if key.get("correlation") is not None:
        parts.append(("at", f"task correlation {key['correlation']:+.2f}"))
    if key.get("label_fraction") is not None:
        share = f"{percent(key['label_fraction'])} of {scarce_task}'s training labels"
        parts.append(("with", share))
    if heading:
        text = ", ".join(phrase for _, phrase in parts) or "models"
        return text[0].upper() + text[1:]
    return " ".join(f"{word} {phrase}" for word, phrase in parts) or "on this data"


def percent(fraction: float) -> str:
    return f"{100 * fraction:.3g}%"


def recommendations(
    summary: pd.DataFrame, metric: str = "roc_auc", scarce_task: str | None = None
) -> list[str]:
    """One sentence per (data variant x) task, derived from :func:`summarize_grid`'s numbers;
    with label fractions (``scarce_task``) first one sentence per correlation on where MTL
    pays for the scarce task."""
    tags = [c for c in TAG_COLUMNS if c in summary.columns]
    sentences, verdicts = [], {}
    for key, group in summary.groupby([*tags, "task"], sort=False):
        key = dict(zip([*tags, "task"], key if isinstance(key, tuple) else (key,)))
        verdict = _verdict(group)
        verdicts[tuple(key.items())] = verdict
        sentences.append(_sentence(verdict, key, metric, scarce_task, len(group)))
    if scarce_task is not None and "label_fraction" in tags:
        sentences = _scarcity_sentences(verdicts, scarce_task) + sentences
    return sentences


def _verdict(group: pd.DataFrame) -> tuple[str, pd.Series | None, pd.DataFrame | float]:
    """(kind, best MTL row, baseline mean or the unconverged rows) of one task and variant."""
    unconverged = group[~group.apply(all_converged, axis=1)]
    if not unconverged.empty:
        return "unconverged", None, unconverged
    mtl = group[group["model"] != BASELINE].sort_values("rank")
    base = group[group["model"] == BASELINE]
    if mtl.empty or base.empty:
        return "alone", group.sort_values("rank").iloc[0], math.nan
    best, base_mean = mtl.iloc[0], float(base["mean"].iloc[0])
    if best["n_seeds"] < 2:
        return "one_seed", best, base_mean
    if best["significant"]:
        return ("better" if best["gain"] > 0 else "worse"), best, base_mean
    return "tie", best, base_mean


def _sentence(verdict: tuple, key: dict, metric: str, scarce_task: str | None, n_rows: int) -> str:
    """The recommendation sentence of one task and variant (``n_rows`` model x strategy
    rows compared)."""
    kind, best, other = verdict
    task = key["task"]
    where = variant_text(key, scarce_task)
    where = where[0].upper() + where[1:]
    if kind == "unconverged":
        runs = "runs of " + "; ".join(
            f"{_name(r)} ({r['n_seeds'] - r['n_converged']} of {r['n_seeds']} seeds)"
            for _, r in other.iterrows()
        )
        if len(other) == n_rows and (other["n_converged"] == 0).all():
            runs = "every run"
        return (
            f"{where}, no verdict for {task} yet: {runs} hit the epoch cap while the "
            "validation metric was still improving (not converged), so they are not ranked; "
            "finish them with the command below."
        )
    if kind == "alone":
        return f"{where}, {_name(best)} is best for {task} ({metric} {best['mean']:.4f})."
    numbers = (
        f"{metric} {best['mean']:.4f} vs {other:.4f} single-task, "
        f"{best['gain']:+.2%}{_p(best['p_value'])}"
    )
    if kind == "one_seed":
        return (
            f"{where}, {_name(best)} is the best MTL model for {task} ({numbers}), but one "
            "seed cannot tell a real difference from noise; use several seeds."
        )
    if kind == "better":
        return f"{where}, {_name(best)} is best for {task} ({numbers})."
    if kind == "worse":
        return (
            f"{where}, single-task is best for {task}: every MTL model is worse, the best of "
            f"them {_name(best)} ({numbers})."
        )
    return (
        f"{where}, no MTL model beats single-task for {task} within the noise (best: "
        f"{_name(best)}, {numbers})."
    )


def _scarcity_sentences(verdicts: dict, task: str) -> list[str]:
    """Per correlation (if any): at which shares of ``task``'s training labels an MTL model
    significantly beats single-task, and by how much."""
    by_correlation: dict = {}
    for key, verdict in verdicts.items():
        key = dict(key)
        if key["task"] == task:
            by_correlation.setdefault(key.get("correlation"), {})[key["label_fraction"]] = verdict
    sentences = []
    for correlation, per_fraction in by_correlation.items():
        where = variant_text({"correlation": correlation})
        where = "" if where == "on this data" else f" {where}"
        fractions = sorted(per_fraction, reverse=True)
        kinds = {f: per_fraction[f][0] for f in fractions}
        pays = [f for f in fractions if kinds[f] == "better"]
        pending = [f for f in fractions if kinds[f] == "unconverged"]
        rest = [f for f in fractions if f not in pays and f not in pending]
        parts = []
        if pays:
            below = len(pays) > 1 and pays == fractions[-len(pays) :]
            shares = f"{percent(pays[0])} of its training labels and below" if below else None
            gains = ", ".join(
                f"{_name(per_fraction[f][1])} {per_fraction[f][1]['gain']:+.2%} at {percent(f)}"
                for f in pays
            )
            shares = shares or f"{_shares(pays)} of its training labels"
            parts.append(f"MTL pays for {task} at {shares} ({gains})")
        if rest:
            parts.append(
                f"at {_shares(rest)} no MTL model beats single-task"
                if pays
                else f"no MTL model beats single-task for {task} at {_shares(rest)} of its "
                "training labels"
            )
        if pending:
            parts.append(
                f"no verdict yet at {_shares(pending)} (runs not converged)"
                if parts
                else f"no verdict for {task} yet (runs not converged at {_shares(pending)})"
            )
        sentences.append(f"Label scarcity{where}: " + "; ".join(parts) + ".")
    return sentences


def _shares(fractions: list[float]) -> str:
    return ", ".join(percent(f) for f in fractions)


def unconverged_runs(results: pd.DataFrame) -> list[str]:
    """The run ids whose training hit the epoch cap while still improving."""
    if "converged" not in results:
        return []
    runs = results.drop_duplicates("run_id")
    return runs.loc[~runs["converged"].astype(bool), "run_id"].tolist()


def _name(row: pd.Series) -> str:
    return f"{row['model']} + {row['strategy']}"


def _p(p: float) -> str:
    return "" if not np.isfinite(p) else f", p={p:.3f}"
