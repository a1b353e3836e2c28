"""Statistics over seeds: t-based confidence intervals, the MTL gain over single-task paired
by seed (paired t-test), ranks, and a recommendation sentence per task and data variant.

The p-values of a grid's comparisons against single-task are corrected for multiple
comparisons as one family (Holm 1979 by default, or Benjamini & Hochberg 1995), and every
comparison carries the smallest relative difference its seeds could detect (power of the
paired t-test, Cohen 1988): "not significant" then says how large a difference went unseen.

A model whose runs did not all converge (they hit the epoch cap while the validation metric
was still improving) gets no rank, and no verdict is drawn where such runs compete: their
numbers say more about the epoch budget than about the model."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats

from mtlkit.errors import ConfigError
from mtlkit.evaluation.intervals import mean_ci
from mtlkit.experiments.config import BASELINE, CORRECTIONS, all_in_one_label

#: The error rate the correction controls (family-wise for Holm, false discovery for BH).
SIGNIFICANCE = 0.05
#: The power at which the detectable difference is stated.
POWER = 0.8
#: The most seeds a recommendation suggests; a difference needing more is called too small.
MAX_SEEDS = 30
#: How each correction is named in sentences.
CORRECTION_NAMES = {
    "holm": "Holm-adjusted",
    "bh": "Benjamini-Hochberg-adjusted",
    "none": "uncorrected",
}
#: Columns that identify one data variant (a synthetic task correlation, the share of the
#: scarce task's training labels), when present.
TAG_COLUMNS = ("correlation", "label_fraction")


class Gain(NamedTuple):
    """The relative gain of a model over the baseline, paired by seed."""

    gain: float  #: mean relative gain (positive = better)
    ci_low: float
    ci_high: float
    p_value: float  #: paired t-test on the differences (uncorrected)
    spread: float  #: sample std of the relative gains over seeds
    n_pairs: int  #: seeds both have


def paired_gain(values: pd.Series, baseline: pd.Series, higher_is_better: bool = True) -> Gain:
    """Relative improvement over the baseline, paired by index (seed): its mean, 95% CI,
    the paired t-test p-value, the spread of the per-seed gains and their number. A positive
    gain is an improvement whatever the metric's direction.
    """
    both = pd.concat([values.rename("v"), baseline.rename("b")], axis=1).dropna()
    if both.empty:
        return Gain(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    sign = 1.0 if higher_is_better else -1.0
    relative = sign * (both["v"] - both["b"]) / both["b"].abs()
    mean, spread, low, high = mean_ci(relative)
    diff = (both["v"] - both["b"]).to_numpy()
    p = math.nan
    if len(both) >= 2 and np.allclose(diff, diff[0]):
        p = 1.0 if np.isclose(diff[0], 0) else 0.0  # no difference, a constant difference
    elif len(both) >= 2:
        p = float(stats.ttest_rel(both["v"], both["b"]).pvalue)
    return Gain(mean, low, high, p, spread, len(both))


def adjust_p(p_values, correction: str = "holm") -> np.ndarray:
    """``p_values`` adjusted for multiple comparisons as one family: ``"holm"`` (Holm 1979,
    step-down: the i-th smallest of m is multiplied by m - i + 1, then made non-decreasing;
    controls the family-wise error rate), ``"bh"`` (Benjamini & Hochberg 1995, scipy's
    ``false_discovery_control``; controls the false discovery rate) or ``"none"``.

    NaN p-values (failed cells, fewer than two seeds) are no test: they stay NaN and do not
    count in the family. A comparison is significant when its adjusted p-value is below
    :data:`SIGNIFICANCE`.
    """
    if correction not in CORRECTIONS:
        raise ConfigError(
            f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}."
        )
    p = np.asarray(p_values, dtype=float)
    tested = np.isfinite(p)
    if correction == "none" or not tested.any():
        return p.copy()
    x = p[tested]
    if correction == "bh":
        adjusted = stats.false_discovery_control(x, method="bh")
    else:
        order = np.argsort(x, kind="stable")
        steps = (len(x) - np.arange(len(x))) * x[order]
        adjusted = np.empty_like(x)
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    out = np.full_like(p, math.nan)
    out[tested] = adjusted
    return out


def comparison_level(correction: str, family_size: int) -> float:
    """The per-comparison level the detectable difference is stated at: the strictest
    threshold of the correction, ``SIGNIFICANCE / family_size`` (Holm's first step, the
    Benjamini-Hochberg threshold of the smallest p-value), or ``SIGNIFICANCE`` without one."""
    return SIGNIFICANCE if correction == "none" else SIGNIFICANCE / max(family_size, 1)


def paired_t_power(effect: float, n: int, alpha: float) -> float:
    """Power of a two-sided paired t-test with ``n`` pairs at level ``alpha`` against a
    standardised mean difference ``effect`` (mean / std of the differences), from the
    noncentral t distribution (Cohen 1988, ch. 2)."""
    df = n - 1
    critical = stats.t.isf(alpha / 2, df)
    shift = effect * math.sqrt(n)
    # The lower tail P(T < -c | shift) as P(T > c | -shift): scipy's cdf can be NaN far out.
    return float(stats.nct.sf(critical, df, shift) + stats.nct.sf(critical, df, -shift))


def detectable_effect(n: int, alpha: float, power: float = POWER) -> float:
    """The smallest standardised mean difference a two-sided paired t-test with ``n`` pairs
    at level ``alpha`` detects with probability ``power`` (NaN below two pairs)."""
    if n < 2:
        return math.nan
    high = 1.0
    while paired_t_power(high, n, alpha) < power:
        high *= 2
    return float(
        optimize.brentq(lambda d: paired_t_power(d, n, alpha) - power, 0.0, high, xtol=1e-10)
    )


def seeds_to_detect(effect: float, alpha: float, power: float = POWER) -> int | None:
    """The fewest seeds (pairs) at which a paired t-test at level ``alpha`` detects the
    standardised difference ``effect`` with probability ``power``; None above
    :data:`MAX_SEEDS`."""
    if not np.isfinite(effect) or effect == 0:
        return None
    for n in range(2, MAX_SEEDS + 1):
        if paired_t_power(abs(effect), n, alpha) >= power:
            return n
    return None


def tag_columns(results: pd.DataFrame) -> list[str]:
    return [c for c in TAG_COLUMNS if c in results.columns]


def summarize_grid(
    results: pd.DataFrame,
    metric: str = "roc_auc",
    split: str = "test",
    higher_is_better: bool = True,
    correction: str = "holm",
) -> pd.DataFrame:
    """One row per (data variant x) model x strategy x task: seeds, converged seeds, mean,
    std, 95% CI, the gain over single-task with its CI, its raw p-value and the p-value
    adjusted by ``correction`` over every comparison of the grid against single-task
    (:func:`adjust_p`; ``correction`` and ``family_size`` say how), ``significant`` (adjusted
    p below :data:`SIGNIFICANCE`), ``detectable_gain`` (the smallest relative gain its seeds
    detect with 80% power at :func:`comparison_level`, from the spread of its per-seed
    gains), the rank within the task (only for models whose every run converged), mean
    training time and parameter count, and two stability measures: ``std`` across seeds and
    ``val_fluctuation``, the mean over seeds of the epoch-to-epoch noise of the validation
    metric (:meth:`~mtlkit.evaluation.run_record.History.fluctuation`).

    A grouped configuration (task groups, see :func:`~.config.grouped_label`) is also
    compared with its all-in-one model x strategy, paired by seed: ``gain_vs_all_in_one``,
    ``p_vs_all_in_one`` and, adjusted in the same family as the comparisons against
    single-task, ``p_adjusted_vs_all_in_one`` and ``significant_vs_all_in_one``."""
    tags = tag_columns(results)
    sel = results[(results["metric"] == metric) & (results["split"] == split)]
    keys = [*tags, "model", "strategy", "task"]
    out, spreads = [], []
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
                spreads.append((math.nan, 0))
            else:
                g = paired_gain(per_seed, base, higher_is_better)
                row.update(gain=g.gain, gain_ci_low=g.ci_low, gain_ci_high=g.ci_high)
                row["p_value"] = g.p_value
                spreads.append((g.spread, g.n_pairs))
            one = all_in_one_label(model)
            if one is not None:
                same = group[(group["model"] == one) & (group["strategy"] == strategy)]
                g = paired_gain(per_seed, same.set_index("seed")["value"], higher_is_better)
                row.update(gain_vs_all_in_one=g.gain, p_vs_all_in_one=g.p_value)
            out.append(row)
    summary = pd.DataFrame(out)
    if summary.empty:
        return summary
    _correct(summary, spreads, correction)
    ranked = summary["mean"].where(summary["n_converged"] >= summary["n_seeds"])
    summary["rank"] = (
        ranked.groupby([summary[c] for c in [*tags, "task"]])
        .rank(ascending=not higher_is_better, method="min")
        .astype("Int64")
    )
    return summary[[*keys, *[c for c in summary.columns if c not in keys]]].reset_index(drop=True)


def _correct(summary: pd.DataFrame, spreads: list[tuple[float, int]], correction: str) -> None:
    """Add ``p_adjusted``, ``correction``, ``family_size``, ``significant``,
    ``detectable_gain`` and ``seeds_to_detect`` (the seeds at which the observed gain would
    be detected with :data:`POWER`, NA above :data:`MAX_SEEDS`) to ``summary`` (rows in the
    order of ``spreads``: (std of the per-seed gains, seeds paired)); grouped configurations'
    comparisons with all-in-one join the family (``p_adjusted_vs_all_in_one``)."""
    p_values = summary["p_value"].to_numpy(dtype=float)
    grouped = "p_vs_all_in_one" in summary
    if grouped:
        p_values = np.concatenate([p_values, summary["p_vs_all_in_one"].to_numpy(dtype=float)])
    adjusted = adjust_p(p_values, correction)
    p_adjusted = adjusted[: len(summary)]
    family_size = int(np.isfinite(p_values).sum())
    if grouped:
        summary["p_adjusted_vs_all_in_one"] = adjusted[len(summary) :]
        summary["significant_vs_all_in_one"] = adjusted[len(summary) :] < SIGNIFICANCE
    at = summary.columns.get_loc("p_value") + 1
    summary.insert(at, "p_adjusted", p_adjusted)
    summary.insert(at + 1, "correction", correction)
    summary.insert(at + 2, "family_size", family_size)
    summary.insert(at + 3, "significant", p_adjusted < SIGNIFICANCE)
    alpha = comparison_level(correction, family_size)
    detectable, needed = [], []
    for (spread, n), gain in zip(spreads, summary["gain"]):
        measured = spread > 0 and n >= 2  # NaN spread: no comparison
        detectable.append(detectable_effect(n, alpha) * spread if measured else math.nan)
        needed.append(seeds_to_detect(gain / spread, alpha) if measured else None)
    summary.insert(at + 4, "detectable_gain", detectable)
    summary.insert(at + 5, "seeds_to_detect", pd.array(needed, dtype="Int64"))


def correction_note(summary: pd.DataFrame) -> str:
    """How the p-values of ``summary`` were corrected, over how many comparisons, and the
    level of its detectable differences, in one sentence."""
    if summary.empty or "correction" not in summary:
        return ""
    correction, m = summary["correction"].iloc[0], int(summary["family_size"].iloc[0])
    if m == 0 and int(summary["n_seeds"].max()) < 2:
        return (
            "No p-value, interval or spread: each configuration ran one seed, so no "
            "difference can be told from seed noise; give at least 2 seeds (3 or more to "
            "detect small gains)."
        )
    if m == 0:
        return "No comparison against single-task has a p-value in this grid."
    comparisons = f"{m} comparison{'s' if m != 1 else ''} against single-task"
    if "p_vs_all_in_one" in summary:
        comparisons += " and of grouped configurations against all-in-one"
    level = comparison_level(correction, m)
    power = (
        f"'n.s. (cannot resolve < x%)' gives the smallest relative difference these seeds "
        f"detect with {POWER:.0%} power in a paired t-test at p < {level:.2g}"
    )
    if correction == "none":
        return (
            f"p-values are not corrected for the {comparisons} (--correction none): with many "
            f"comparisons, some will fall below {SIGNIFICANCE} by chance; {power}."
        )
    method = {
        "holm": "Holm's step-down method, which keeps the chance of any false 'better' or "
        "'worse' in the grid",
        "bh": "the Benjamini-Hochberg method, which keeps the expected share of false "
        "'better' or 'worse' verdicts",
    }[correction]
    return (
        f"p-values are adjusted over the {comparisons} by {method} below {SIGNIFICANCE:.0%}; "
        f"{power} ({SIGNIFICANCE} / {m}, the correction's strictest threshold)."
    )


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
    p = _p(best)
    numbers = f"{metric} {best['mean']:.4f} vs {other:.4f} single-task, {best['gain']:+.2%}"
    numbers += f", {p}" if p else ""
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
        f"{_name(best)}, {numbers}){_power(best)}."
    )


def _power(row: pd.Series) -> str:
    """What a "no difference" verdict could have seen: the smallest difference the row's
    seeds detect, and how many seeds would detect its observed gain."""
    detectable = row.get("detectable_gain", math.nan)
    if not np.isfinite(detectable):
        return ""
    level = comparison_level(row["correction"], int(row["family_size"]))
    text = (
        f"; with {row['n_seeds']} seeds, differences below {detectable:.2%} cannot be resolved "
        f"({POWER:.0%} power at p < {level:.2g})"
    )
    needed, gain = row.get("seeds_to_detect"), f"{row['gain']:+.2%}"
    if pd.isna(needed):
        return f"{text}; resolving one as small as {gain} would take more than {MAX_SEEDS} seeds"
    if needed <= row["n_seeds"]:
        return text
    seeds = " ".join(str(s) for s in range(int(needed)))
    return f"{text}; if {gain} is the real difference, {needed} seeds resolve it: --seeds {seeds}"


def grouping_sentences(
    summary: pd.DataFrame, groups: list[tuple[str, ...]] | None, scarce_task: str | None = None
) -> list[str]:
    """Per grouped configuration (model x strategy x data variant): which tasks to train
    together, from its comparisons with all-in-one and with single-task per task (the
    adjusted p-values of :func:`summarize_grid`). The grouping is recommended when it is
    significantly better than all-in-one or single-task for some task and significantly
    worse than neither for any."""
    if groups is not None and len(groups) == 1:
        return [
            f"The task groups put every task in one group ({', '.join(groups[0])}): that is "
            "the all-in-one model, so no grouped models were trained."
        ]
    if not groups or summary.empty or "p_vs_all_in_one" not in summary:
        return []
    tags = tag_columns(summary)
    grouped = summary[summary["model"].map(lambda m: all_in_one_label(m) is not None)]
    together = _groups_text(groups)
    sentences = []
    for key, rows in grouped.groupby([*tags, "model", "strategy"], sort=False):
        key = dict(zip([*tags, "model", "strategy"], key))
        one = all_in_one_label(key["model"])
        where = variant_text(key, scarce_task)
        where = where[0].upper() + where[1:]
        name = f"{one} + {key['strategy']}"
        others = summary[(summary["model"] == one) & (summary["strategy"] == key["strategy"])]
        for tag in tags:
            others = others[others[tag] == key[tag]]
        if not (
            rows.apply(all_converged, axis=1).all() and others.apply(all_converged, axis=1).all()
        ):
            sentences.append(
                f"{where}, no verdict on the task groups {together} with {name} yet: some of "
                "their runs (grouped or all-in-one) did not converge."
            )
            continue
        if (rows["n_seeds"] < 2).any():
            sentences.append(
                f"{where}, the task groups {together} with {name} cannot be judged on one seed; "
                "use several seeds."
            )
            continue
        one_better = _tasks_where(rows, "significant_vs_all_in_one", "gain_vs_all_in_one", 1)
        one_worse = _tasks_where(rows, "significant_vs_all_in_one", "gain_vs_all_in_one", -1)
        alone_better = _tasks_where(rows, "significant", "gain", 1)
        alone_worse = _tasks_where(rows, "significant", "gain", -1)
        parts = [
            f"better than all-in-one for {one_better}" if one_better else "",
            f"worse than all-in-one for {one_worse}" if one_worse else "",
            f"better than single-task for {alone_better}" if alone_better else "",
            f"worse than single-task for {alone_worse}" if alone_worse else "",
        ]
        found = "; ".join(p for p in parts if p)
        if (one_better or alone_better) and not (one_worse or alone_worse):
            sentences.append(
                f"{where}, train {together} ({name}): the grouped models are {found}, and "
                "worse than neither all-in-one nor single-task for any task."
            )
        elif found:
            sentences.append(
                f"{where}, the task groups {together} with {name} are mixed: {found}; "
                "weigh those tasks before grouping."
            )
        else:
            best = rows.loc[rows["gain_vs_all_in_one"].abs().idxmax()]
            sentences.append(
                f"{where}, no grouping beats the simpler choices with {name}: the groups "
                f"{together} are within the noise of all-in-one and of single-task for every "
                f"task (largest difference from all-in-one: {best['gain_vs_all_in_one']:+.2%} "
                f"for {best['task']})."
            )
    return sentences


def _tasks_where(rows: pd.DataFrame, significant: str, gain: str, sign: int) -> str:
    hits = rows[rows[significant].astype(bool) & (np.sign(rows[gain]) == sign)]
    return ", ".join(f"{r['task']} ({r[gain]:+.2%})" for _, r in hits.iterrows())


def _groups_text(groups: list[tuple[str, ...]]) -> str:
    """``{income, education}, {marital, sex} and {age, region} together and {veteran} and
    {citizenship} apart``."""
    joint = [_listed(["{" + ", ".join(g) + "}" for g in groups if len(g) > 1])]
    alone = [_listed(["{" + g[0] + "}" for g in groups if len(g) == 1])]
    if joint == [""]:
        return "every task apart"
    return f"{joint[0]} together" + (f" and {alone[0]} apart" if alone[0] else "")


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


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
                f" with {_p(per_fraction[f][1], raw=False)}"
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


def _p(row: pd.Series, raw: bool = True) -> str:
    """The p-value in words: "Holm-adjusted p=0.354 (raw p=0.029)" (``raw``: with the raw
    p-value), or the raw p-value without a correction; "" without a p-value."""
    p, adjusted = row["p_value"], row["p_adjusted"]
    if not np.isfinite(p):
        return ""
    if row["correction"] == "none":
        return f"uncorrected p{_number(p)}"
    shown = f" (raw p{_number(p)})" if raw else ""
    return f"{CORRECTION_NAMES[row['correction']]} p{_number(adjusted)}{shown}"


def _number(p: float) -> str:
    return "<0.001" if p < 0.001 else f"={p:.3f}"
