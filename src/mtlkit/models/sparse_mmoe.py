"""MMoE with noisy top-k (sparse) expert selection."""

from __future__ import annotations

from mtlkit.data.schema import Schema
from mtlkit.models.mmoe import MMoE
from mtlkit.models.registry import register


@register(
    "sparse_mmoe",
    "MMoE with noisy top-k gates: each task mixes only its k best experts (Shazeer et al. 2017)",
)
class SparseMMoE(MMoE):
    """MMoE with noisy top-k gating (Shazeer et al., "Outrageously Large Neural Networks: The
    Sparsely-Gated Mixture-of-Experts Layer", ICLR 2017), one sparse gate per task.

    The same model as ``mmoe`` with sparse defaults: each task's gate keeps its ``top_k``
    (default 2) largest logits per row and gives every other expert weight exactly 0;
    ``gate_noise`` adds Gaussian noise with a learned, input-dependent scale to the logits
    while training so that the choice explores; ``balance_weight`` weighs the importance loss
    that keeps experts from dying out. All other hyperparameters are MMoE's (``n_experts``,
    ``expert_hidden``, ``tower_hidden``, ...). The experts still run batched; on tabular
    widths computing all of them is cheaper than dispatching rows.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        top_k: int | None = 2,
        gate_noise: bool = True,
        balance_weight: float = 0.01,
        **mmoe,
    ) -> None:
        super().__init__(
            schema, top_k=top_k, gate_noise=gate_noise, balance_weight=balance_weight, **mmoe
        )
