"""The interface every mtlkit model implements."""

from __future__ import annotations

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.blocks import ACTIVATIONS, NORMS, InputEncoder
from mtlkit.validation import check_choice, check_fraction, check_positive_int


class MTLModel(nn.Module):
    """Base class: ``forward(x_cat, x_num)`` returns ``{task name: logits}`` in task order.

    Binary and regression tasks give logits of shape ``(B,)``, multiclass ``(B, K)``.
    Subclasses build from :mod:`mtlkit.models.blocks`, list their task-specific modules in
    :meth:`task_modules` (everything else counts as shared) and, when they have gates, store
    the last forward's gate weights in ``self.last_gates`` (task -> ``(B, n_experts)``).
    """

    #: Sequential-task models (ESMM, AITM) name the role of each task in order; None = any.
    task_roles: tuple[str, ...] | None = None
    #: Binary tasks whose forward output is already a probability rather than a logit.
    probability_outputs: frozenset[str] = frozenset()

    def __init__(
        self,
        schema: Schema,
        *,
        embedding_dim: int = 4,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("embedding_dim", embedding_dim)
        check_choice("activation", activation, ACTIVATIONS)
        check_fraction("dropout", dropout)
        check_choice("norm", norm, NORMS)
        self.schema = schema
        self.task_names: list[str] = schema.task_names
        self.block_kwargs = {"activation": activation, "dropout": dropout, "norm": norm}
        self.encoder = InputEncoder(schema, embedding_dim)
        self.last_gates: dict[str, torch.Tensor] = {}

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def task_modules(self, task: str) -> list[nn.Module]:
        """Modules that serve only ``task`` (its tower, its gate...)."""
        raise NotImplementedError

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return [p for m in self.task_modules(task) for p in m.parameters()]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that serve more than one task (the target of gradient balancing)."""
        own = {id(p) for t in self.task_names for p in self.task_parameters(t)}
        return [p for p in self.parameters() if id(p) not in own]

    def auxiliary_loss(self) -> torch.Tensor | None:
        """An extra loss term from the last forward pass (e.g. a calibrator), or None.

        The trainer adds it, unweighted, to what every strategy backpropagates.
        """
        return None

    def gate_weights(self) -> dict[str, torch.Tensor]:
        """Gate weights of the last forward pass per task; empty for models without gates."""
        return dict(self.last_gates)
