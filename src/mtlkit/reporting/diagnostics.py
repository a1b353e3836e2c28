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
