"""Training strategies, selectable by name: ``make_strategy("uncertainty", model)``.

``available_strategies()`` lists them. Where things live: the interface and registry in
:mod:`.base`, weighted sums (joint, uncertainty, DWA, GradNorm) in :mod:`.weighting`,
alternating training in :mod:`.alternating`, torchjd gradient aggregators in
:mod:`.aggregation`; every module of this package is found automatically.
"""

from mtlkit.training.strategies.base import (
    STRATEGIES,
    Step,
    Strategy,
    available_strategies,
    check_strategy,
    choose_strategy,
    make_strategy,
    register_strategy,
)

__all__ = [
    "STRATEGIES",
    "Step",
    "Strategy",
    "available_strategies",
    "check_strategy",
    "choose_strategy",
    "make_strategy",
    "register_strategy",
]
