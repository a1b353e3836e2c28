"""Gradient aggregation on the shared parameters with the aggregators of ``torchjd``.

The task losses' Jacobian with respect to the shared parameters (one row per present task) is
turned into one update direction by an aggregator (see :mod:`.gradients` for how absent tasks
and the auxiliary loss are handled). Task-specific parameters get their task's plain gradient,
except for Nash-MTL, FairGrad and ExcessMTL, whose reference code (the authors' and LibMTL's)
backpropagates the weighted sum of the losses into every parameter: there each task's
parameters get its gradient times its weight. In data-parallel training the Jacobian is summed
over the ranks before it is aggregated (:func:`~mtlkit.training.distributed.global_jac_to_grad`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torchjd.aggregation import (
    IMTLG,
    Aggregator,
    AlignedMTLWeighting,
    CAGradWeighting,
    ConFIG,
    DualProj,
    ExcessMTL,
    FairGrad,
    GradDrop,
    GradVac,
    GramianWeightedAggregator,
    Krum,
    NashMTL,
    PCGrad,
    Random,
    TrimmedMean,
    UPGrad,
)
from torchjd.autojac import backward as jac_backward

from mtlkit.models.base import MTLModel
from mtlkit.models.shared_bottom import SharedBottom
from mtlkit.params import Float, Int, Param, Range, Str
from mtlkit.training.distributed import all_reduce, global_jac_to_grad
from mtlkit.training.strategies.base import STRATEGIES, register_strategy
from mtlkit.training.strategies.gradients import SharedGradientStrategy
from mtlkit.training.strategies.weightings import MinNorm, Scaled


@dataclass(frozen=True)
class AggregatorSpec:
    """A torchjd aggregator offered as a strategy: its factory ``(n_tasks, **params)``, a
    citation, its declared settings, the fewest tasks it can aggregate given its settings
    (with fewer present tasks a step uses the plain sum of the losses), and, for a method
    whose task-specific parameters get weighted gradients, their weights from the aggregator
    and the weights it returned (None: each task's plain gradient)."""

    factory: Callable[..., Aggregator]
    description: str
    params: tuple[Param, ...] = ()
    min_tasks: Callable[..., int] = lambda **params: 2
    towers: Callable[[Aggregator, torch.Tensor], torch.Tensor] | None = None


def _returned(aggregator: Aggregator, weights: torch.Tensor) -> torch.Tensor:
    """Task-specific parameters get the weights of the shared update."""
    return weights


def _nash_solution(aggregator: Aggregator, weights: torch.Tensor) -> torch.Tensor:
    """Nash-MTL's solved weights before the norm clipping, which (in the authors' code and
    LibMTL) applies to the shared parameters' gradient only."""
    return torch.as_tensor(aggregator.weighting.prvs_alpha).to(weights)


#: LibMTL's CAGrad ``rescale`` options: the update divided by 1, 1 + c^2, or 1 + c.
_CAGRAD_RESCALE = {0: lambda c: 1.0, 1: lambda c: 1.0 / (1.0 + c**2), 2: lambda c: 1.0 / (1.0 + c)}


def _cagrad(n: int, c: float, norm_eps: float, rescale: int) -> Aggregator:
    factor = _CAGRAD_RESCALE[rescale](c)
    return GramianWeightedAggregator(Scaled(CAGradWeighting(c=c, norm_eps=norm_eps), factor))


def _aligned_mtl(n: int, scale_mode: str) -> Aggregator:
    # torchjd combines the aligned gradients with the mean's weights 1/T; the authors' code
    # (SamsungLabs/MTL, as LibMTL) sums them: T times as large.
    return GramianWeightedAggregator(Scaled(AlignedMTLWeighting(scale_mode=scale_mode), n))


#: GradDrop's setting, the same on either form (see :class:`GradDropStrategy`).
GRADDROP_LEAK = Float("leak", 0.0, "share of every gradient that always passes", low=0.0, high=1.0)

AGGREGATORS: dict[str, AggregatorSpec] = {
    "pcgrad": AggregatorSpec(
        lambda n: PCGrad(),
        "PCGrad: project away conflicting task gradients (Yu et al., NeurIPS 2020)",
    ),
    "mgda": AggregatorSpec(
        lambda n: GramianWeightedAggregator(MinNorm()),
        "MGDA: min-norm point of the task gradients' convex hull, solved exactly "
        "(Sener & Koltun, NeurIPS 2018)",
    ),
    "cagrad": AggregatorSpec(
        _cagrad,
        "CAGrad: conflict-averse gradient near the mean gradient (Liu et al., NeurIPS 2021)",
        (
            Float(
                "c",
                0.5,
                "radius of the ball around the mean gradient",
                low=0.0,
                search=Range(0.1, 0.9),
            ),
            Float("norm_eps", 1e-4, "numerical floor of the gradient norm", low=0.0, open_low=True),
            Int(
                "rescale",
                1,
                "divide the update by 1 (0), 1 + c^2 (1) or 1 + c (2), as the authors' code",
                choices=(0, 1, 2),
            ),
        ),
    ),
    "imtl_g": AggregatorSpec(
        lambda n: IMTLG(),
        "IMTL-G: update with equal projections on every task gradient (Liu et al., ICLR 2021)",
    ),
    "nash_mtl": AggregatorSpec(
        lambda n, **kw: NashMTL(n_tasks=n, **kw),
        "Nash-MTL: Nash bargaining solution over task gradients (Navon et al., ICML 2022)",
        (
            Float("max_norm", 1.0, "largest norm of the shared update", low=0.0, open_low=True),
            Int("update_weights_every", 1, "steps between two solves of the weights", low=1),
            Int("optim_niter", 20, "iterations of the weight solver", low=1),
        ),
        towers=_nash_solution,
    ),
    "aligned_mtl": AggregatorSpec(
        _aligned_mtl,
        "Aligned-MTL: align the task gradients' principal components (Senushkin et al., CVPR 2023)",
        (Str("scale_mode", "min", "eigenvalue used to scale", choices=("min", "median", "rmse")),),
    ),
    "upgrad": AggregatorSpec(
        lambda n: UPGrad(),
        "UPGrad: project each gradient onto the dual cone of all (Quinton & Rey, 2024)",
    ),
    "config": AggregatorSpec(
        lambda n: ConFIG(),
        "ConFIG: the update with equal positive cosine to every task gradient, of the mean's "
        "length (Liu et al., ICLR 2025)",
    ),
    "dualproj": AggregatorSpec(
        lambda n: DualProj(),
        "DualProj: project the mean gradient onto the dual cone of the task gradients "
        "(Quinton & Rey, 2024)",
    ),
    "krum": AggregatorSpec(
        lambda n, **kw: Krum(**kw),
        "Krum: the task gradient closest to its neighbours, robust to outlier tasks "
        "(Blanchard et al., NeurIPS 2017); needs n_byzantine + 3 tasks",
        (
            Int("n_byzantine", 0, "task gradients that may be outliers", low=0),
            Int("n_selected", 1, "gradients averaged (Multi-Krum)", low=1),
        ),
        lambda n_byzantine, n_selected: max(n_byzantine + 3, n_selected),
    ),
    "trimmed_mean": AggregatorSpec(
        lambda n, **kw: TrimmedMean(**kw),
        "trimmed mean: per coordinate, drop the largest and smallest task gradients "
        "(Yin et al., ICML 2018); needs 2 trim_number + 1 tasks",
        (Int("trim_number", 1, "values dropped at each end of every coordinate", low=0),),
        lambda trim_number: 2 * trim_number + 1,
    ),
    "random": AggregatorSpec(
        lambda n: Random(),
        "RGW: task gradients weighted by softmax of Gaussian draws, anew each step "
        "(Lin et al., TMLR 2022)",
    ),
    # Registered by GradDropStrategy, which uses it where a model has no single representation.
    "graddrop": AggregatorSpec(
        lambda n, leak: GradDrop(leak=torch.full((n,), leak)),
        "GradDrop per coordinate of the shared parameters' gradients (Chen et al., NeurIPS 2020)",
        (GRADDROP_LEAK,),
    ),
    "fairgrad": AggregatorSpec(
        lambda n, **kw: FairGrad(**kw),
        "FairGrad: alpha-fair allocation of the update among tasks (Ban & Ji, ICML 2024)",
        (
            Float(
                "alpha",
                1.0,
                "fairness: 0 is the mean gradient, 1 proportional fairness, large max-min",
                low=0.0,
                search=Range(0.5, 5.0),
            ),
        ),
        towers=_returned,
    ),
    "gradvac": AggregatorSpec(
        lambda n, **kw: GradVac(**kw),
        "GradVac: raise each pair's gradient cosine to its running target (Wang et al., ICLR 2021)",
        (Float("beta", 0.5, "EMA rate of the cosine targets", low=0.0, high=1.0),),
    ),
    "excessmtl": AggregatorSpec(
        lambda n, robust_step_size, warmup_steps: ExcessMTL(robust_step_size, warmup_steps),
        "ExcessMTL: weights follow each task's estimated excess risk (He et al., ICML 2024)",
        (
            Float(
                "robust_step_size",
                0.01,
                "step size of the exponentiated weight update",
                low=0.0,
                open_low=True,
            ),
            Int(
                "warmup_steps",
                1,
                "steps with uniform weights whose mean excess risk is the baseline",
                low=0,
            ),
        ),
        towers=_returned,
    ),
}


class Aggregation(SharedGradientStrategy):
    """Jacobian descent on the shared parameters with a ``torchjd`` aggregator ``method``.

    ``params`` go to the aggregator (e.g. ``c`` for CAGrad, ``update_weights_every`` for
    Nash-MTL). Stateful aggregators keep one state per set of tasks present in a batch, so
    partially labelled batches do not corrupt the state of full ones.
    """

    def __init__(self, model: MTLModel, method: str, **params: object) -> None:
        super().__init__(model)
        self.method = method
        self.params = params
        self._aggregators: dict[tuple[int, ...], Aggregator] = {}
        self._last: Aggregator | None = None  # the aggregator of the latest step

    def min_tasks(self) -> int:
        return AGGREGATORS[self.method].min_tasks(**self.params)

    def weighs_towers(self) -> bool:
        return AGGREGATORS[self.method].towers is not None

    def tower_weights(self, weights: torch.Tensor | None) -> torch.Tensor | None:
        towers = AGGREGATORS[self.method].towers
        return None if towers is None else towers(self._last, weights)

    def shared_backward(self, objectives: torch.Tensor, idx: list[int]) -> torch.Tensor | None:
        jac_backward(objectives, inputs=self._shared, retain_graph=self.weighs_towers())
        self._last = self._aggregator(tuple(idx))
        with self.own_random():  # random, PCGrad, GradVac and GradDrop draw in torchjd
            return global_jac_to_grad(self._shared, self._last)

    def _aggregator(self, key: tuple[int, ...]) -> Aggregator:
        if key not in self._aggregators:
            self._aggregators[key] = AGGREGATORS[self.method].factory(len(key), **self.params)
        return self._aggregators[key]


for _name, _spec in AGGREGATORS.items():
    if _name == "graddrop":
        continue  # GradDropStrategy
    STRATEGIES.add(
        _name, partial(Aggregation, method=_name), _spec.description, params=_spec.params
    )


class _Capture:
    """A forward hook that keeps its module's last output; a copy or a pickle of the model
    leaves the output behind."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.output = output

    def __getstate__(self) -> dict:
        return {"output": None}


@register_strategy(
    "graddrop",
    "GradDrop: per unit of the shared representation (per shared-parameter coordinate where "
    "a model has no single one) keep only the gradients of a sign drawn by their sign purity "
    "(Chen et al., NeurIPS 2020)",
    params=[GRADDROP_LEAK],
)
class GradDropStrategy(Aggregation):
    """Gradient sign dropout (Chen et al., "Just Pick a Sign: Optimizing Deep Multitask Models
    with Gradient Sign Dropout", NeurIPS 2020), where the paper and LibMTL apply it: on the
    gradient of the one representation every task reads (``shared_bottom``: the bottom's
    output). Each task's gradient there is signed by the representation and summed over the
    batch rows (over every rank's rows in data-parallel training), per unit; the sign purity
    ``P = (1 + sum_k s_k / sum_k |s_k|) / 2`` of each unit and a uniform draw ``U`` keep the
    positive task gradients where ``P > U`` and the negative ones elsewhere (``leak`` of every
    gradient always passes); the kept gradients, summed, flow back into the shared
    parameters. Models without one shared representation (MMoE, PLE, cross-stitch...) get
    torchjd's form instead: the same rule per coordinate of the shared parameters' gradients.
    """

    def __init__(self, model: MTLModel, leak: float) -> None:
        super().__init__(model, method="graddrop", leak=leak)
        self.leak = leak
        self._capture: _Capture | None = None
        if isinstance(model, SharedBottom):
            hooks = model.bottom._forward_hooks.values()
            found = [h for h in hooks if isinstance(h, _Capture)]
            self._capture = found[0] if found else _Capture()
            if not found:
                model.bottom.register_forward_hook(self._capture)

    def shared_backward(self, objectives: torch.Tensor, idx: list[int]) -> torch.Tensor | None:
        rep = None if self._capture is None else self._capture.output
        if rep is None or not rep.requires_grad:
            return super().shared_backward(objectives, idx)
        grads = torch.stack(
            [torch.autograd.grad(o, rep, retain_graph=True)[0] for o in objectives.unbind()]
        )  # (t, rows, ...)
        signed = all_reduce((grads * rep.detach().sign()).sum(1))  # (t, ...), over every row
        purity = 0.5 * (1 + signed.sum(0) / (signed.abs().sum(0) + 1e-7))
        with self.own_random():  # the same draw on every rank
            draw = torch.rand_like(purity)
        keep = ((purity > draw) & (signed > 0)) | ((purity < draw) & (signed < 0))
        kept = grads * (self.leak + (1 - self.leak) * keep.unsqueeze(1).to(grads.dtype))
        torch.autograd.backward(rep, grad_tensors=kept.sum(0), inputs=self._shared)
        return None


STRATEGIES.variant(
    "rgw",
    of="random",
    description="random gradient weighting: the same method as 'random' (Lin et al., TMLR 2022)",
)


@register_strategy(
    "imtl",
    "IMTL: learned loss scales (IMTL-L) and an update with equal projections on every task "
    "gradient (IMTL-G) (Liu et al., ICLR 2021)",
)
class IMTL(Aggregation):
    """Impartial multi-task learning, both halves (Liu et al., "Towards Impartial Multi-task
    Learning", ICLR 2021).

    IMTL-L: each task learns a scale ``s_k`` and contributes ``exp(s_k) L_k - s_k``, whose
    minimum over ``s_k`` makes every scaled loss equal to 1 (scale-invariant losses). IMTL-G:
    the shared parameters move along the combination of these scaled losses' gradients that
    has equal projections on every task's unit gradient (torchjd's ``IMTLG``); task-specific
    parameters and the scales get their own gradient. ``imtl_g`` is IMTL-G alone.
    """

    def __init__(self, model: MTLModel) -> None:
        super().__init__(model, method="imtl_g")
        self.log_scales = nn.ParameterList(
            [nn.Parameter(torch.zeros((), device=self.device)) for _ in range(self.n_tasks)]
        )

    def parameters(self) -> list[nn.Parameter]:
        return list(self.log_scales)

    def objectives(self, losses: torch.Tensor, idx: list[int]) -> torch.Tensor:
        # One scalar per task: an absent task's scale gets no gradient at all.
        return torch.stack([self.log_scales[k].exp() * losses[k] - self.log_scales[k] for k in idx])
