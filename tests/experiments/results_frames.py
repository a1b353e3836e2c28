"""Tidy test-split results (one row per run x task, ROC-AUC) as the grid writes them, for the
statistics tests."""

from __future__ import annotations

import pandas as pd


def seed_results(per_task: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """``{task: {model: [value per seed]}}`` as results rows of strategy ``joint``."""
    rows = [
        {
            "run_id": f"{model}{seed}",
            "model": model,
            "strategy": "joint",
            "seed": seed,
            "train_time_s": 1.0,
            "n_params": 10,
            "task": task,
            "split": "test",
            "metric": "roc_auc",
            "value": v,
        }
        for task, values in per_task.items()
        for model, per_seed in values.items()
        for seed, v in enumerate(per_seed)
    ]
    return pd.DataFrame(rows)
