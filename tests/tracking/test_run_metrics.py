"""What a run record becomes in a tracker: names and values, read from the History."""

from mtlkit.evaluation.run_record import History
from mtlkit.tracking.base import metric_name
from mtlkit.tracking.run_metrics import epoch_metrics, final_metrics


def _history() -> History:
    epochs = []
    for e in (1, 2):
        epochs.append(
            {
                "epoch": e,
                "time_s": 0.5 * e,
                "lr": 1e-3,
                "steps": 3,
                "train": {"a": {"loss": 1.0 / e, "accuracy": 0.5}, "b/c": {"loss": 2.0 / e}},
                "val": {"a": {"loss": 1.1 / e, "roc_auc": None}, "b/c": {"rmse": 0.3}},
                "task_weights": {"a": 0.4, "b/c": 0.6},
                "diagnostics": {
                    "grad_cosine": -0.2 * e,
                    "grad_cosine_pairs": {"a|b/c": -0.2 * e},
                    "grad_norm": {"a": 1.0, "b/c": 3.0},
                    "grad_norm_ratio": 3.0,
                    "expert_utilization": {"a": [0.25, 0.75]},
                }
                if e == 2
                else None,
            }
        )
    # The history JSON of a run record (see tests/evaluation/test_record.py)
    return History.from_dict({"epochs": epochs, "best_epoch": 2, "stopped_early": False})


def test_every_epoch_value_is_logged_at_its_epoch_and_unmeasured_ones_are_left_out():
    logged = dict(epoch_metrics(_history()))
    assert list(logged) == [1, 2]
    assert logged[1]["train/a/loss"] == 1.0 and logged[2]["train/a/loss"] == 0.5
    assert logged[2]["val/b_c/rmse"] == 0.3  # a '/' in a task name cannot nest the name
    assert "val/a/roc_auc" not in logged[2]  # NaN: not measured
    assert logged[2]["task_weight/b_c"] == 0.6
    assert logged[2]["diagnostics/grad_cosine"] == -0.4
    assert logged[2]["diagnostics/grad_cosine_pair/a_vs_b_c"] == -0.4
    assert logged[2]["diagnostics/expert_use/a/expert1"] == 0.75
    assert not any(name.startswith("diagnostics") for name in logged[1])  # diagnostics off
    assert logged[2]["lr"] == 1e-3 and logged[2]["epoch_time_s"] == 1.0


def test_no_name_is_a_folder_of_another():
    """MLflow's file store keeps each metric as a file at its name, so 'x' and 'x/y' clash."""
    history = _history()
    names = {n for _, values in epoch_metrics(history) for n in values}
    names |= set(final_metrics(history, {"test": {"a": {"roc_auc": 0.9}}}, 1.0, 10))
    assert not [(a, b) for a in names for b in names if b.startswith(a + "/")]


def test_final_metrics_name_the_restored_epochs_validation_apart_from_the_series():
    final = final_metrics(
        _history(), {"val": {"a": {"loss": 0.55}}, "test": {"a": {"loss": 0.6}}}, 2.5, 99
    )
    assert final == {
        "best_epoch": 2.0,
        "epochs": 2.0,
        "converged": 0.0,
        "train_time_s": 2.5,
        "n_params": 99.0,
        "best_val/a/loss": 0.55,
        "test/a/loss": 0.6,
    }
    assert metric_name("x", "a:b|c") == "x/a_b_c"
