"""Progressive layered extraction (PLE): stacked CGC levels with shared gates in between."""

from __future__ import annotations

from mtlkit.data.schema import Schema
from mtlkit.models.cgc import CGC
from mtlkit.models.registry import register
from mtlkit.validation import check_positive_int


@register(
    "ple",
    "progressive layered extraction: stacked CGC levels with shared gates (Tang et al. 2020)",
)
class PLE(CGC):
    """Progressive Layered Extraction (Tang et al., "Progressive Layered Extraction (PLE): A
    Novel Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020).

    ``n_levels`` CGC extraction levels are stacked. At level ``l``, task ``t``'s experts and
    gate read task ``t``'s output of level ``l - 1``, and the shared experts read the shared
    output, which a further gate over *all* experts of level ``l - 1`` builds. The last level
    has no shared gate; each tower reads its task's last-level mixture. The other
    hyperparameters are CGC's (``n_task_experts``, ``n_shared_experts`` per task and level,
    ``expert_hidden`` for the experts of every level, ``tower_hidden``).
    :meth:`level_gates` gives the gate weights of every level.
    """

    def __init__(self, schema: Schema, *, n_levels: int = 2, **cgc) -> None:
        # Set before CGC builds the levels (a plain int may be set before Module.__init__).
        self.n_levels = check_positive_int("n_levels", n_levels)
        super().__init__(schema, **cgc)
