"""Statistics over seeds: t-based confidence intervals, the MTL gain over single-task paired
by seed (paired t-test), ranks, and a recommendation sentence per task."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from mtlkit.experiments.config import BASELINE

SIGNIFICANCE = 0.05
#: Columns that identify one data variant (e.g. a synthetic correlation), when present.
TAG_COLUMNS = ("correlation",)


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, CI low, CI high): ``mean +- t_{(1+level)/2, n-1} * std / sqrt(n)``.

    NaN values are ignored; with fewer than two values std and the interval are NaN.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return (math.nan,) * 4
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, len(x) - 1)) * std / math.sqrt(len(x))
    return mean, std, mean - half, mean + half


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
    """One row per (data variant x) model x strategy x task: seeds, mean, std, 95% CI, the gain
    over single-task with its CI and p-value, ``significant``, the rank within the task, mean
    training time and parameter count, and two stability measures: ``std`` across seeds and
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
            row.update(
                model=model,
                strategy=strategy,
                n_seeds=int(per_seed.notna().sum()),
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
    summary["rank"] = (
        summary.groupby([*tags, "task"])["mean"]
        .rank(ascending=not higher_is_better, method="min")
        .astype(int)
    )
    return summary[[*keys, *[c for c in summary.columns if c not in keys]]].reset_index(drop=True)


def recommendations(summary: pd.DataFrame, metric: str = "roc_auc") -> list[str]:
    """One sentence per (data variant x) task, derived from :func:`summarize_grid`'s numbers."""
    tags = [c for c in TAG_COLUMNS if c in summary.columns]
    sentences = []
    for key, group in summary.groupby([*tags, "task"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        task = key[-1]
        where = "on this data" if not tags else f"at task correlation {key[0]:+.2f}"
        mtl = group[group["model"] != BASELINE].sort_values("rank")
        base = group[group["model"] == BASELINE]
        if mtl.empty or base.empty:
            best = group.sort_values("rank").iloc[0]
            sentences.append(
                f"{where.capitalize()}, {_name(best)} is best for {task} "
                f"({metric} {best['mean']:.4f})."
            )
            continue
        best, base_mean = mtl.iloc[0], float(base["mean"].iloc[0])
        numbers = (
            f"{metric} {best['mean']:.4f} vs {base_mean:.4f} single-task, "
            f"{best['gain']:+.2%}{_p(best['p_value'])}"
        )
        if best["n_seeds"] < 2:
            sentences.append(
                f"{where.capitalize()}, {_name(best)} is the best MTL model for {task} "
                f"({numbers}), but one seed cannot tell a real difference from noise; "
                "use several seeds."
            )
        elif best["significant"] and best["gain"] > 0:
            sentences.append(f"{where.capitalize()}, {_name(best)} is best for {task} ({numbers}).")
        elif best["significant"]:
            sentences.append(
                f"{where.capitalize()}, single-task is best for {task}: every MTL model is worse, "
                f"the best of them {_name(best)} ({numbers})."
            )
        else:
            sentences.append(
                f"{where.capitalize()}, no MTL model beats single-task for {task} within the "
                f"noise (best: {_name(best)}, {numbers})."
            )
    return sentences


def _name(row: pd.Series) -> str:
    return f"{row['model']} + {row['strategy']}"


def _p(p: float) -> str:
    return "" if not np.isfinite(p) else f", p={p:.3f}"
