"""Reading the optional per-epoch training diagnostics of a :class:`History`.

Strategies that measure them record ``record["diagnostics"] = {"grad_cosine": float,
"grad_norm_ratio": float, "expert_utilization": {task: [mean gate weight per expert]}}``.
This is the one place that knows those keys; plots skip a run that lacks them.
"""

from __future__ import annotations

from mtlkit.training.trainer import History


def diagnostic(history: History, key: str) -> list | None:
    """``record["diagnostics"][key]`` for every epoch, or None if any epoch lacks it."""
    values = [(record.get("diagnostics") or {}).get(key) for record in history.epochs]
    if not values or any(v is None for v in values):
        return None
    return values


def task_weights(history: History) -> dict[str, list[float]] | None:
    """``record["task_weights"]`` as ``{task: [weight per epoch]}``, or None when a record
    lacks them (strategies without task weights) or they never change (e.g. plain joint)."""
    records = [record.get("task_weights") for record in history.epochs]
    if not records or any(not isinstance(r, dict) or not r for r in records):
        return None
    series = {task: [float(r.get(task, float("nan"))) for r in records] for task in records[0]}
    if all(len(set(values)) == 1 for values in series.values()):
        return None
    return series
