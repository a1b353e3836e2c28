"""Calibration of a model whose miscalibration is known: ESMM's BASE (Ma et al., SIGIR 2018).

A CVR model trained on the clicked impressions only and scored on every impression
overestimates pCVR (sample-selection bias; docs/reproductions.md, section 4). The funnel of
``make_funnel(..., probabilities=True)`` knows P(conversion | click, x) for every impression,
so the validation and test splits hold every impression with a conversion drawn from that
truth ("would it convert if clicked"). BASE is fitted on the clicked training rows,
early-stopped and calibrated on the validation impressions; the test impressions are scored
by expected calibration error (10 equal-mass bins) against the drawn labels and against the
true probability, and by the Brier score, before and after each calibration method.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibration_funnel.py --seeds 0 1 2 3 4

Features are the generator's numbers cut into 10 quantile bins each, as categorical ids (the
setting where BASE's bias is largest in docs/reproductions.md).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from mtlkit import MultiTaskEstimator
from mtlkit.data.loading import load_tables
from mtlkit.data.synthetic import make_funnel
from mtlkit.evaluation.metrics import expected_calibration_error
from mtlkit.training.settings import CALIBRATIONS

TRUTH = ["click", "conversion", "p_click", "p_cvr"]
TRAIN = {"batch_size": 256, "epochs": 200, "patience": 5, "diagnostic_batches": 0}


def splits(n_rows: int, click_rate: float, cvr: float, seed: int) -> list[pd.DataFrame]:
    """Train (clicked rows, observed conversions), validation and test (every impression,
    conversions drawn from the truth) frames; label column ``cvr``, truth ``p_cvr``."""
    frame = make_funnel(
        n_rows, click_rate=click_rate, conversion_rate=cvr, seed=seed, probabilities=True
    )
    for col in frame.columns.drop(TRUTH):
        frame[col] = "b" + pd.qcut(frame[col], 10, labels=False).astype(str)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    train, val, test = (
        frame.iloc[part].reset_index(drop=True)
        for part in np.split(order, [int(0.7 * len(frame)), int(0.85 * len(frame))])
    )
    train = train[train["click"] == 1].assign(cvr=lambda f: f["conversion"])
    val, test = (f.assign(cvr=(rng.random(len(f)) < f["p_cvr"]).astype(int)) for f in (val, test))
    return [train.reset_index(drop=True), val, test]


def measure(
    seed: int,
    n_rows: int = 40_000,
    click_rate: float = 0.05,
    cvr: float = 0.3,
    methods: tuple[str, ...] = CALIBRATIONS,
) -> dict[str, dict[str, float]]:
    """``{method: {ece, ece_truth, brier, mean_p}}`` of BASE on the test impressions."""
    train, val, test = splits(n_rows, click_rate, cvr, seed)
    tables = [load_tables(f, ["cvr"], drop_columns=TRUTH) for f in (train, val)]
    out = {}
    for method in methods:
        est = MultiTaskEstimator(
            "single_task", seed=seed, progress=False, calibration=method, **TRAIN
        ).fit(*tables)
        p = est.predict_proba(test.drop(columns=[*TRUTH, "cvr"]))["cvr"]
        metrics = est.evaluate(load_tables(test, ["cvr"], drop_columns=TRUTH))["cvr"]
        out[method] = {
            "ece": metrics["ece"],
            "ece_truth": expected_calibration_error(test["p_cvr"].to_numpy(), p),
            "brier": metrics["brier"],
            "mean_p": float(p.mean()),
        }
    out["truth"] = {"mean_p": float(test["p_cvr"].mean())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--click-rate", type=float, default=0.05)
    parser.add_argument("--cvr", type=float, default=0.3)
    args = parser.parse_args()
    runs = [measure(s, args.rows, args.click_rate, args.cvr) for s in args.seeds]
    truth = np.mean([r["truth"]["mean_p"] for r in runs])
    print(
        f"BASE on {args.rows} impressions, click rate {args.click_rate}, CVR {args.cvr}, "
        f"seeds {args.seeds}; test impressions, mean (sd) over seeds; true mean pCVR {truth:.3f}"
    )
    print("| calibration | ECE vs drawn labels | ECE vs truth | Brier | mean pCVR |")
    print("| --- | --- | --- | --- | --- |")
    for method in CALIBRATIONS:
        cells = []
        for key in ("ece", "ece_truth", "brier", "mean_p"):
            values = [r[method][key] for r in runs]
            cells.append(f"{np.mean(values):.4f} ({np.std(values):.4f})")
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
