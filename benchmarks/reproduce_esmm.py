"""ESMM's claim checked where the truth is known: pCVR over the entire impression space.

Run (120 fits, about an hour on the 2-core development machine at load 10-13):

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/reproduce_esmm.py \\
        > runs/reproduce_esmm.log 2>&1 &

ESMM (Ma et al., SIGIR 2018) estimates pCVR = P(conversion | click, x) by training
pCTR and pCTCVR = pCTR x pCVR on every impression; its BASE is a CVR model trained on the
clicked rows only, which the paper says suffers from sample-selection bias (it is trained on
clicked rows but used on every impression) and data sparsity (few clicks). On funnels from
:func:`mtlkit.data.synthetic.make_funnel` the true P(conversion | click, x) of *every*
impression is known (``probabilities=True``), so both pCVR estimates are scored on the test
impressions, clicked or not: ROC-AUC against conversions drawn from the true probability
(the counterfactual "would it convert if clicked"), the same on the unclicked impressions
only, and calibration (expected calibration error against the true probability, 10
equal-mass bins of the prediction; mean prediction vs mean truth).

Grid: click rate 15%, 5%, 2% x conversion rate among clicks 30%, 10%, on 40,000 impressions
(70/15/15), 5 seeds (each its own funnel, split and weights), two feature encodings: the
generator's numeric features (ESMM's two towers then share nothing but the input), and the
same features cut into 10 quantile bins each as categorical ids, whose embeddings ESMM's
towers share (the paper's setting: sparse id features, embeddings learned from clicks).
ESMM: ``esmm`` with towers [32, 16]; BASE: ``single_task`` with hidden [32, 16] trained on
the clicked rows' conversion label only, both early-stopped on their validation loss (BASE
on the clicked validation rows; ``--epochs`` sets the cap, default 200). Writes ``runs/reproductions/esmm/`` and
``docs/figures/esmm_vs_base.png``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from reproduce_common import FIGURES, RUNS, ci_row, markdown
from scipy import stats as stats_test
from sklearn.metrics import roc_auc_score

from mtlkit import MultiTaskEstimator, load_tables
from mtlkit.data.synthetic import make_funnel
from mtlkit.reporting.figures import save_figure

CLICK_RATES = (0.15, 0.05, 0.02)
CONVERSION_RATES = (0.3, 0.1)
ENCODINGS = ("numeric", "binned")
TOWERS = [32, 16]
TRAIN = {"batch_size": 256, "epochs": 200, "patience": 5, "diagnostic_batches": 0}
TRUTH = ["p_click", "p_cvr"]


def funnel(n_rows: int, click_rate: float, cvr: float, encoding: str, seed: int):
    """(train, validation, test) frames of one funnel, with the true probabilities."""
    frame = make_funnel(
        n_rows, click_rate=click_rate, conversion_rate=cvr, seed=seed, probabilities=True
    )
    if encoding == "binned":
        for col in frame.columns.drop(["click", "conversion", *TRUTH]):
            frame[col] = "b" + pd.qcut(frame[col], 10, labels=False).astype(str)
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = [int(0.7 * len(frame)), int(0.85 * len(frame))]
    return [frame.iloc[part].reset_index(drop=True) for part in np.split(order, cut)]


def fit_esmm(train: pd.DataFrame, val: pd.DataFrame, seed: int, epochs: int) -> MultiTaskEstimator:
    settings = {**TRAIN, "epochs": epochs}
    est = MultiTaskEstimator("esmm", tower_hidden=TOWERS, seed=seed, progress=False, **settings)
    return est.fit(
        *(load_tables(f, ["click", "conversion"], drop_columns=TRUTH) for f in (train, val))
    )


def fit_base(train: pd.DataFrame, val: pd.DataFrame, seed: int, epochs: int) -> MultiTaskEstimator:
    """BASE: a conversion model trained (and early-stopped) on the clicked rows only."""

    def clicked_only(frame: pd.DataFrame):
        data = (
            frame[frame["click"] == 1].drop(columns="click").rename(columns={"conversion": "cvr"})
        )
        return load_tables(data, ["cvr"], drop_columns=TRUTH)

    settings = {**TRAIN, "epochs": epochs}
    est = MultiTaskEstimator("single_task", hidden=TOWERS, seed=seed, progress=False, **settings)
    return est.fit(clicked_only(train), clicked_only(val))


def esmm_pcvr(est: MultiTaskEstimator, test: pd.DataFrame) -> np.ndarray:
    """ESMM's pCVR for every impression (its conditional output, conversion given click)."""
    return est.predict_proba(features(test))["conversion_given_click"]


def base_pcvr(est: MultiTaskEstimator, test: pd.DataFrame) -> np.ndarray:
    return est.predict_proba(features(test))["cvr"]


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["click", "conversion", *TRUTH])


def scores(p_hat: np.ndarray, test: pd.DataFrame, drawn: np.ndarray) -> dict:
    """AUC against the drawn conversions (all / unclicked / clicked impressions) and
    calibration against the true probability."""
    clicked = test["click"].to_numpy() == 1
    truth = test["p_cvr"].to_numpy()
    out = {
        "auc_all": auc(drawn, p_hat),
        "auc_unclicked": auc(drawn[~clicked], p_hat[~clicked]),
        "auc_clicked_observed": auc(test["conversion"].to_numpy()[clicked], p_hat[clicked]),
        "ece": ece(p_hat, truth),
        "mean_pred": float(p_hat.mean()),
        "mean_true": float(truth.mean()),
    }
    return out


def auc(y: np.ndarray, p_hat: np.ndarray) -> float:
    """ROC-AUC, NaN where ``y`` holds one class only (few clicks on small funnels)."""
    return roc_auc_score(y, p_hat) if len(np.unique(y)) == 2 else math.nan


def ece(p_hat: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error against the true probability: equal-mass bins of the
    prediction, |mean prediction - mean true probability| weighted by the bin's share."""
    order = np.argsort(p_hat)
    return float(
        sum(len(b) * abs(p_hat[b].mean() - truth[b].mean()) for b in np.array_split(order, bins))
        / len(p_hat)
    )


def run(args: argparse.Namespace) -> pd.DataFrame:
    path = args.out / "runs.csv"
    done = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    if "epoch_cap" not in done:  # runs recorded before the option: the default cap
        done["epoch_cap"] = TRAIN["epochs"]
    rows = done.to_dict("records")
    grid = itertools.product(ENCODINGS, CLICK_RATES, CONVERSION_RATES, range(args.seeds))
    for encoding, click_rate, cvr, seed in grid:
        key = {"rows": args.rows, "epoch_cap": args.epochs, "encoding": encoding}
        key.update(click_rate=click_rate, cvr=cvr)
        key["seed"] = seed
        if any(all(r[k] == v for k, v in key.items()) for r in rows):
            continue
        train, val, test = funnel(args.rows, click_rate, cvr, encoding, seed)
        # The counterfactual conversions: every test impression, drawn from the truth.
        drawn = np.random.default_rng(1000 + seed).random(len(test)) < test["p_cvr"].to_numpy()
        oracle = roc_auc_score(drawn, test["p_cvr"])
        for name, fit, predict in (("esmm", fit_esmm, esmm_pcvr), ("base", fit_base, base_pcvr)):
            start = time.perf_counter()
            est = fit(train, val, seed, args.epochs)
            row = {**key, "model": name, "oracle_auc": oracle}
            row.update(scores(predict(est, test), test, drawn))
            history = est.history_
            row.update(
                epochs=len(history.epochs),
                best_epoch=history.best_epoch,
                converged=history.stopped_early,
                train_clicks=int(train["click"].sum()),
                train_conversions=int(train["conversion"].sum()),
                time_s=time.perf_counter() - start,
            )
            rows.append(row)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        args.out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    return pd.DataFrame(rows)


METRICS = {
    "auc_all": ("AUC, all impressions", True),
    "auc_unclicked": ("AUC, unclicked", True),
    "ece": ("ECE vs truth", False),
}


#: Columns of the summary left out of the printed table (the numbers behind the figure).
NUMBERS = ("_mean", "_low", "_high")
HIDDEN = ("encoding", "click_rate", "cvr", "AUC, unclicked: ESMM", "AUC, unclicked: BASE")


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per setting: each model's mean [95% CI] over seeds, and ESMM - BASE paired by seed."""
    out = []
    keys = ["encoding", "click_rate", "cvr"]
    for key, part in runs.groupby(keys, sort=False):
        by = {m: g.set_index("seed") for m, g in part.groupby("model")}
        esmm, base = by["esmm"], by["base"]
        row = {"features": key[0], "click rate": f"{key[1]:.0%}", "CVR": f"{key[2]:.0%}"}
        row.update(dict(zip(keys, key)))
        row["train clicks / conv."] = (
            f"{esmm['train_clicks'].mean():.0f} / {esmm['train_conversions'].mean():.0f}"
        )
        for metric, (label, _) in METRICS.items():
            for name, frame in (("esmm", esmm), ("base", base)):
                stats = ci_row(frame[metric], digits=3)
                row[f"{metric}_{name}_mean"] = stats["mean"]
                row[f"{metric}_{name}_low"] = stats["ci_low"]
                row[f"{metric}_{name}_high"] = stats["ci_high"]
            row[f"{label}: ESMM"] = f"{esmm[metric].mean():.3f}"
            row[f"{label}: BASE"] = f"{base[metric].mean():.3f}"
            diff = esmm[metric] - base[metric]
            p = stats_test.ttest_rel(esmm[metric], base[metric]).pvalue
            row[f"{label}: ESMM - BASE [95% CI]"] = ci_row(diff, digits=3)["text"] + f", p={p:.3f}"
        row["mean pCVR: ESMM / BASE / truth"] = (
            f"{esmm['mean_pred'].mean():.3f} / {base['mean_pred'].mean():.3f} / "
            f"{esmm['mean_true'].mean():.3f}"
        )
        row["converged runs"] = f"{int(part['converged'].sum())}/{len(part)}"
        out.append(row)
    return pd.DataFrame(out)


def figure(summary: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(len(ENCODINGS), 2, figsize=(10, 3.6 * len(ENCODINGS)), squeeze=False)
    for i, encoding in enumerate(ENCODINGS):
        for j, metric in enumerate(("auc_all", "ece")):
            ax = axes[i][j]
            for cvr, marker in zip(CONVERSION_RATES, ("o", "s")):
                part = summary[(summary["encoding"] == encoding) & (summary["cvr"] == cvr)]
                for name, style in (("esmm", "-"), ("base", "--")):
                    mean = part[f"{metric}_{name}_mean"]
                    err = [
                        mean - part[f"{metric}_{name}_low"],
                        part[f"{metric}_{name}_high"] - mean,
                    ]
                    ax.errorbar(
                        [CLICK_RATES.index(c) for c in part["click_rate"]],
                        mean,
                        yerr=err,
                        linestyle=style,
                        marker=marker,
                        capsize=3,
                        label=f"{name.upper()}, CVR {cvr:.0%}",
                    )
            ax.set_xticks(range(len(CLICK_RATES)), [f"{c:.0%}" for c in CLICK_RATES])
            ax.set_xlabel("click rate")
            ax.set_ylabel(METRICS[metric][0])
            ax.set_title(f"{encoding} features: {METRICS[metric][0]}")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("ESMM vs BASE pCVR on funnels with known truth (95% CI over seeds)")
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=TRAIN["epochs"], help="epoch cap")
    parser.add_argument("--out", type=Path, default=RUNS / "esmm")
    args = parser.parse_args()
    runs = run(args)
    runs = runs[(runs["rows"] == args.rows) & (runs["epoch_cap"] == args.epochs)]
    summary = summarize(runs)
    shown = summary[[c for c in summary.columns if c not in HIDDEN and not c.endswith(NUMBERS)]]
    text = markdown(shown)
    print("\n" + text)
    summary.to_csv(args.out / "summary.csv", index=False)
    (args.out / "summary.md").write_text(text + "\n")
    figure(summary, FIGURES / "esmm_vs_base.png")
    print(f"\nFigure: {FIGURES / 'esmm_vs_base.png'}; raw results: {args.out / 'runs.csv'}")


if __name__ == "__main__":
    main()
