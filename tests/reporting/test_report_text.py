"""The report's sentences about tasks the compared metric does not cover."""

import pandas as pd

from mtlkit.experiments.stats import summarize_grid
from mtlkit.reporting.report import display_table, uncompared_tasks


def _results(metric_by_task: dict[str, tuple[str, list[str]]]) -> pd.DataFrame:
    rows = []
    for task, (kind, metrics) in metric_by_task.items():
        for model in ("single_task", "mmoe"):
            for seed in (0, 1):
                for metric in metrics:
                    rows.append(
                        {
                            "run_id": f"{model}{seed}",
                            "model": model,
                            "strategy": "joint",
                            "seed": seed,
                            "train_time_s": 1.0,
                            "n_params": 10,
                            "task": task,
                            "task_kind": kind,
                            "split": "test",
                            "metric": metric,
                            "value": 0.7 + 0.01 * seed,
                        }
                    )
    return pd.DataFrame(rows)


def test_a_multiclass_task_without_pr_auc_is_not_called_a_regression_task():
    # Before: "Task age reports no pr_auc (a regression task) ... --metric rmse".
    results = _results(
        {
            "click": ("binary", ["loss", "roc_auc", "pr_auc", "accuracy"]),
            "age": ("multiclass", ["loss", "roc_auc", "accuracy", "log_loss"]),
            "price": ("regression", ["loss", "rmse", "mae", "r2"]),
        }
    )
    summary = summarize_grid(results, "pr_auc")
    sentences = uncompared_tasks(results, summary, "pr_auc")
    assert len(sentences) == 2
    age, price = sentences
    assert "Task age (a multiclass task) reports no pr_auc" in age
    assert "--metric roc_auc" in age and "rmse" not in age
    assert "Task price (a regression task)" in price and "--metric rmse" in price


def test_a_model_whose_runs_did_not_all_converge_is_marked_unranked_and_not_judged():
    results = _results({"click": ("binary", ["roc_auc"])})
    results["converged"] = ~((results["model"] == "mmoe") & (results["seed"] == 1))
    table = display_table(summarize_grid(results)).set_index("model")
    assert table.loc["mmoe", "rank"] == "—" and table.loc["single_task", "rank"] == 1
    assert (
        table.loc["mmoe", "converged"] == "1/2 †" and table.loc["single_task", "converged"] == "2/2"
    )
    assert table.loc["mmoe", "mean ± std"].endswith(" †")
    assert table.loc["mmoe", "vs single-task"] == "not converged"
