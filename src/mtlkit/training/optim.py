"""The optimizer of a fit: Adam, with a large embedding table's rows updated sparsely.

A dense embedding table costs every step a gradient, and an Adam update, of every row, though
a batch looks up a few thousand of them: at 1M rows x 8 that is 18-34 ms per step against
1.2-1.7 ms with a sparse gradient (``benchmarks/bench_categorical.py table``, BENCHMARKS.md).
Lazy Adam also learns differently: on a streamed 10M-row funnel with 801k users it trained 2.8x
faster but lost 0.025 AUC after one epoch, more than hashing the users loses; so it is opt-in
(``TrainConfig.sparse_embeddings``). With it on, from
:data:`SPARSE_MIN_ROWS` table rows the model's ``InputEncoder`` looks rows up with
``F.embedding(..., sparse=True)`` and the table is trained by ``torch.optim.SparseAdam``
("lazy Adam": the moments and the update of the rows a batch looked up only), the other
parameters by Adam, as one optimizer (:class:`SplitAdam`).

Deliberate differences from dense Adam, for such tables only: a row's moments decay only on
steps that look it up, and the table gets no weight decay (SparseAdam has none). Sparse
gradients need a strategy whose backward is one pass of a function of the losses
(``Strategy.sparse_gradients``), no gradient clipping and one process; otherwise the table
stays dense. Its rows are then left out of the conflict diagnostics (per-task gradients of the
other shared parameters), which would need dense per-task gradients of the whole table.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mtlkit.models.base import MTLModel
from mtlkit.models.blocks import InputEncoder
from mtlkit.training import distributed
from mtlkit.training.settings import TrainConfig
from mtlkit.training.strategies import Strategy

#: Table rows (all categorical columns together) from which sparse gradients are used. A
#: training step of a 2-column, 8-wide table and an MLP (one CPU thread) takes, dense /
#: sparse, 0.5x at 10,000 rows, 1.0-1.2x at 100,000, 4.4x at 250,000, 7x at 500,000 and 11-28x
#: at 1,000,000; but in a whole MMoE fit of a 1M-row funnel with a 216,000-row table sparse
#: was not faster (on a loaded machine) and lost 0.005 AUC after one epoch (lazy Adam), so
#: sparse starts where the dense table's update dominates a step (BENCHMARKS.md,
#: "Categorical features at recommender scale").
SPARSE_MIN_ROWS = 1 << 19


class SplitAdam(torch.optim.Optimizer):
    """Adam on the dense parameters and SparseAdam on a table with sparse gradients, as one
    optimizer: one list of parameter groups (a learning-rate schedule sets both), one step,
    one state dict."""

    def __init__(self, dense: torch.optim.Adam, sparse: torch.optim.SparseAdam) -> None:
        self.parts = (dense, sparse)
        params = [p for part in self.parts for g in part.param_groups for p in g["params"]]
        super().__init__(params, {})
        self._link()

    def _link(self) -> None:
        self.param_groups = [g for part in self.parts for g in part.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        for part in self.parts:
            part.step()

    def state_dict(self) -> dict:
        return {"dense": self.parts[0].state_dict(), "sparse": self.parts[1].state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.parts[0].load_state_dict(state_dict["dense"])
        self.parts[1].load_state_dict(state_dict["sparse"])
        self._link()  # loading replaced the parts' group dicts


def sparse_encoders(model: MTLModel, strategy: Strategy, config: TrainConfig) -> list[InputEncoder]:
    """The model's input encoders (one, or one per task) whose tables get sparse gradients:
    those of :data:`SPARSE_MIN_ROWS` rows or more, with ``sparse_embeddings`` on and where
    sparse gradients apply (see the module)."""
    if not config.sparse_embeddings:
        return []
    if not strategy.sparse_gradients or config.grad_clip is not None:
        return []
    if distributed.world_size() > 1:
        return []
    return [
        m
        for m in model.modules()
        if isinstance(m, InputEncoder)
        and m.embedding is not None
        and m.embedding.num_embeddings >= SPARSE_MIN_ROWS
    ]


def make_optimizer(
    model: MTLModel, strategy: Strategy, config: TrainConfig, groups: list[dict], fused: bool
) -> torch.optim.Optimizer:
    """Adam (``fused`` kernel or not) over the parameter ``groups``, or :class:`SplitAdam`
    with the tables of :func:`sparse_encoders` moved to SparseAdam (those encoders then look
    rows up sparsely)."""
    sparse = sparse_encoders(model, strategy, config)
    for m in model.modules():
        if isinstance(m, InputEncoder):
            m.sparse_gradients = any(m is e for e in sparse)
    if not sparse:
        return torch.optim.Adam(groups, lr=config.lr, fused=fused)
    tables = [e.embedding.weight for e in sparse]
    moved = {id(t) for t in tables}
    dense = [{**g, "params": [p for p in g["params"] if id(p) not in moved]} for g in groups]
    return SplitAdam(
        torch.optim.Adam(dense, lr=config.lr, fused=fused),
        torch.optim.SparseAdam(tables, lr=config.lr),
    )


def dense_shared_parameters(model: MTLModel) -> list[nn.Parameter]:
    """The model's shared parameters whose gradients are dense (not a sparse table's)."""
    sparse = {
        id(m.embedding.weight)
        for m in model.modules()
        if isinstance(m, InputEncoder) and m.sparse_gradients
    }
    return [p for p in model.shared_parameters() if id(p) not in sparse]
