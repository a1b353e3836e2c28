"""PEPNet: embedding and parameter personalisation by gate neural units."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.models.blocks import MLP
from mtlkit.models.registry import MODELS
from mtlkit.params import Choice, Int, Ints, Sizes

#: The gate neural unit's scale: outputs lie in (0, 2) and start near 1 (no change).
GATE_SCALE = 2.0


class GateNU(nn.Module):
    """Gate neural unit: ``2 sigmoid(W2 relu(W1 z + b1) + b2)``, an element-wise scaling in
    (0, 2) of ``out_dim`` values computed from the prior information ``z``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.hidden = MLP(in_dim, (hidden,))
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return GATE_SCALE * torch.sigmoid(self.out(self.hidden(z)))


class PersonalisedTower(nn.Module):
    """PPNet for one task: a tower whose every layer's input is scaled by its own
    :class:`GateNU` of the prior information, then the task's output layer."""

    def __init__(
        self,
        in_dim: int,
        prior_dim: int,
        hidden: Sequence[int],
        gate_hidden: int,
        out_dim: int,
        **block_kwargs,
    ) -> None:
        super().__init__()
        widths = [in_dim, *hidden]
        self.layers = nn.ModuleList(MLP(w, (h,), **block_kwargs) for w, h in zip(widths, hidden))
        self.out = nn.Linear(widths[-1], out_dim)
        self.gates = nn.ModuleList(GateNU(prior_dim + in_dim, gate_hidden, w) for w in widths)

    def forward(self, h: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        for layer, gate in zip([*self.layers, self.out], self.gates):
            h = layer(h * gate(prior))
        return h.squeeze(-1) if h.shape[-1] == 1 else h


@MODELS.register(
    "pepnet",
    "gate neural units personalise the shared embedding and every tower layer from prior "
    "features (Chang et al. 2023)",
    params=[
        Ints(
            "prior_columns",
            None,
            "positions of the categorical columns whose embeddings are the personal prior "
            "(None: every categorical column)",
            low=0,
        ),
        Ints(
            "domain_columns",
            None,
            "positions of the categorical columns that describe the domain (None: none)",
            low=0,
        ),
        Int("gate_hidden", 32, "hidden width of each gate neural unit", low=1),
        Sizes(
            "tower_hidden",
            (32, 16),
            "hidden widths of each task's tower",
            search=Choice(((16,), (32, 16), (64, 32))),
        ),
    ],
)
class PEPNet(MTLModel):
    """PEPNet (Chang et al., "PEPNet: Parameter and Embedding Personalized Network for
    Infusing with Personalized Prior Information", KDD 2023).

    - EPNet (embedding personalisation): the shared encoding ``E`` is scaled element-wise by
      a gate neural unit (``2 sigmoid(MLP(.))``) of the domain columns' embeddings and of
      ``E`` behind a stop-gradient: ``O_ep = E * GateNU(E_domain, sg(E))``.
    - PPNet (parameter personalisation): each task has a tower (``tower_hidden`` widths);
      the input of every one of its layers is scaled by its own gate neural unit of the
      personal prior (the embeddings of ``prior_columns``) and of ``sg(O_ep)``.

    The stop-gradients keep the gates from reshaping the embeddings they read: a gate
    learns how much of each value to pass, the embeddings learn from the towers. The
    paper's user, item and author ids are the prior; in a table, name the columns that
    identify the entity you personalise for (positions in the categorical columns'
    order of the fitted preprocessor).
    """

    def __init__(
        self,
        schema: Schema,
        *,
        prior_columns: Sequence[int] | None,
        domain_columns: Sequence[int] | None,
        gate_hidden: int,
        tower_hidden: Sequence[int],
        **common,
    ) -> None:
        super().__init__(schema, **common)
        n_cat, dim = self.encoder.n_cat, self.encoder.embedding_dim
        prior = list(range(n_cat)) if prior_columns is None else list(prior_columns)
        domain = [] if domain_columns is None else list(domain_columns)
        bad = [c for c in [*prior, *domain] if c >= n_cat]
        if bad:
            raise ConfigError(
                f"pepnet: column position(s) {bad} do not exist; the data has {n_cat} "
                f"categorical column(s), positions 0 to {n_cat - 1}."
            )
        self.register_buffer("prior_index", _embedding_index(prior, dim))
        self.register_buffer("domain_index", _embedding_index(domain, dim))
        e_dim = self.encoder.output_dim
        self.ep_gate = GateNU(len(domain) * dim + e_dim, gate_hidden, e_dim)
        self.towers = nn.ModuleDict(
            {
                t.name: PersonalisedTower(
                    e_dim,
                    len(prior) * dim,
                    tower_hidden,
                    gate_hidden,
                    t.output_dim,
                    **self.block_kwargs,
                )
                for t in schema.tasks
            }
        )

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        e = self.encoder(x_cat, x_num)
        o_ep = e * self.ep_gate(torch.cat([e[:, self.domain_index], e.detach()], dim=1))
        prior = torch.cat([e[:, self.prior_index], o_ep.detach()], dim=1)
        return {t: tower(o_ep, prior) for t, tower in self.towers.items()}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[task]]


def _embedding_index(columns: Sequence[int], dim: int) -> torch.Tensor:
    """Positions in the encoder's output of the embeddings of categorical ``columns``."""
    return torch.tensor([c * dim + i for c in columns for i in range(dim)], dtype=torch.long)
