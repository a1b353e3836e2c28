"""``mtlkit train``: fit one model on your files and save it; ``mtlkit predict`` scores new files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mtlkit.data.loading import load_features, load_tables
from mtlkit.data.splits import split_table
from mtlkit.experiments.config import parse_choice, parse_strategy
from mtlkit.files import atomic_write_bytes
from mtlkit.training.estimator import MultiTaskEstimator


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fit one model on your files and save it (with its preprocessor)",
        description=(
            "Fit one model on CSV/Parquet files (rows stacked, a missing label masked), "
            "split 70/15/15 by seed, early-stop on the validation part, print the test "
            "metrics and save the model folder that 'mtlkit predict' uses."
        ),
        epilog="example: mtlkit train data/ --labels income marital --model mmoe:n_experts=4 "
        "--strategy uncertainty --out my-model",
    )
    p.add_argument("data", nargs="+", help="data files, folders or globs")
    p.add_argument("--labels", nargs="+", required=True, help="the label columns (one task each)")
    p.add_argument(
        "--model",
        default="mmoe",
        help="a model name, optionally with settings, e.g. mmoe:n_experts=4 (default mmoe)",
    )
    p.add_argument(
        "--strategy",
        default="joint",
        help="a training strategy, optionally with settings (default joint)",
    )
    p.add_argument("--epochs", type=int, default=50, help="maximum epochs (default 50)")
    p.add_argument("--batch-size", type=int, default=1024, help="batch size (default 1024)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the model")
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu (default), cuda, cuda:N, or auto (the GPU when torch sees one)",
    )
    p.add_argument("--out", type=Path, required=True, help="the folder to save the model in")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)

    q = sub.add_parser(
        "predict",
        help="score new files with a model saved by 'mtlkit train'",
        description=(
            "Score the rows of new files (label columns not needed) with a saved model and "
            "write one CSV row per input row: the source file, then per task the predicted "
            "probability (binary), one probability per class (multiclass) or the value."
        ),
        epilog="example: mtlkit predict my-model new_rows.csv --out predictions.csv",
    )
    q.add_argument("model_dir", type=Path, help="a folder written by 'mtlkit train'")
    q.add_argument("data", nargs="+", help="data files, folders or globs to score")
    q.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    q.set_defaults(func=run_predict)


def run_train(args: argparse.Namespace) -> int:
    model, model_params = parse_choice(args.model, "model", "mmoe:n_experts=4")
    strategy, strategy_params = parse_strategy(args.strategy)
    est = MultiTaskEstimator(
        model,
        strategy=strategy,
        strategy_params=strategy_params,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        **model_params,
    )  # settings are validated here, before the data is read
    table = load_tables(args.data, labels=args.labels)
    train, val, test = split_table(table, (0.7, 0.15, 0.15), seed=args.seed)
    est.fit(train, val)
    metrics = est.evaluate(test)
    est.save(args.out)
    atomic_write_bytes(args.out / "test_metrics.json", json.dumps(metrics, indent=2).encode())
    print(f"trained {args.model} + {args.strategy} in {est.fit_time_:.1f} s")
    print(pd.DataFrame(metrics).T.round(4).to_string())
    print(f"model saved to {args.out} (test metrics in test_metrics.json)")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    est = MultiTaskEstimator.load(args.model_dir)
    table = load_features(args.data, ignore=est.schema_.task_names)
    scores = est.predict_proba(table)
    columns: dict[str, np.ndarray] = {"source": table.source}
    for spec in est.schema_.tasks:
        values = scores[spec.name]
        if spec.kind == "multiclass":
            for k, cls in enumerate(spec.classes or range(spec.n_classes)):
                columns[f"{spec.name}_p_{cls}"] = values[:, k]
        else:
            columns[spec.name] = values
    frame = pd.DataFrame(columns)
    atomic_write_bytes(args.out, frame.to_csv(index=False).encode())
    print(f"{len(frame):,} rows scored for {est.schema_.task_names}; written to {args.out}")
    return 0
