"""Training strategies, selectable by name: ``make_strategy("uncertainty")``.

``available_strategies()`` lists them. Where things live: the interface and registry in
:mod:`.base`, weighted sums (joint, uncertainty, DWA, GradNorm) in :mod:`.weighting`,
alternating training in :mod:`.alternating`, torchjd gradient aggregators in
:mod:`.aggregation`.
"""

from functools import partial

from mtlkit.training.strategies.aggregation import AGGREGATORS, Aggregation
from mtlkit.training.strategies.alternating import Alternating
from mtlkit.training.strategies.base import (
    Step,
    Strategy,
    available_strategies,
    make_strategy,
    register_strategy,
)
from mtlkit.training.strategies.weighting import (
    DynamicWeightAverage,
    GradNorm,
    Joint,
    Uncertainty,
    WeightedSum,
)

register_strategy(
    "joint", Joint, "minimise the sum of task losses, equal or given fixed weights (weights=[...])"
)
register_strategy(
    "alternating",
    Alternating,
    "one task per step on its labelled rows, order='round_robin' or 'proportional'",
)
register_strategy(
    "uncertainty", Uncertainty, "learned homoscedastic-uncertainty weights (Kendall et al. 2018)"
)
register_strategy(
    "dwa", DynamicWeightAverage, "dynamic weight average from loss descent rates (Liu et al. 2019)"
)
register_strategy(
    "gradnorm", GradNorm, "weights that balance task gradient norms (Chen et al. 2018)"
)
for _name, (_, _description) in AGGREGATORS.items():
    register_strategy(_name, partial(Aggregation, _name), _description)

__all__ = [
    "Aggregation",
    "Alternating",
    "DynamicWeightAverage",
    "GradNorm",
    "Joint",
    "Step",
    "Strategy",
    "Uncertainty",
    "WeightedSum",
    "available_strategies",
    "make_strategy",
    "register_strategy",
]
