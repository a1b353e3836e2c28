"""The interface every mtlkit model implements."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.errors import ConfigError, DataError
from mtlkit.models.blocks import ACTIVATIONS, NORMS, InputEncoder, Tower
from mtlkit.params import Choice, Float, Int, Range, Sizes, Str

#: Where one task's part of a parameter lies (``parameter[index]``, see
#: :meth:`MTLModel.task_slices`).
TaskIndex = int | slice | tuple[int | slice, ...]

#: Hyperparameters every model takes (declared once; the registry adds them to each model).
COMMON_PARAMS = (
    Int(
        "embedding_dim",
        4,
        "size of each categorical column's embedding",
        low=1,
        search=Range(2, 16, log=True),
    ),
    Str("activation", "relu", "activation of every hidden layer", choices=tuple(ACTIVATIONS)),
    Float(
        "dropout",
        0.0,
        "dropout after every hidden layer",
        low=0.0,
        high=0.9,
        search=Range(0.0, 0.5),
    ),
    Str(
        "norm",
        None,
        "normalisation of every hidden layer",
        choices=tuple(n for n in NORMS if n),
        optional=True,
    ),
)


#: Declarations several models share (same meaning, default and search space).
TOWER_HIDDEN = Sizes(
    "tower_hidden",
    (8,),
    "hidden widths of each task's tower",
    allow_empty=True,
    search=Choice(((8,), (16,), (32,))),
)
EXPERT_HIDDEN = Sizes(
    "expert_hidden",
    (16,),
    "layer widths of each expert",
    search=Choice(((16,), (32,), (64,), (64, 32))),
)
N_TASK_EXPERTS = Int(
    "n_task_experts", 2, "experts each task owns (per level)", low=1, search=Range(1, 4)
)
N_SHARED_EXPERTS = Int(
    "n_shared_experts", 2, "experts shared by all tasks (per level)", low=1, search=Range(1, 4)
)
FUNNEL_TOWER_HIDDEN = Sizes(
    "tower_hidden",
    (32, 16),
    "hidden widths of each funnel step's tower",
    search=Choice(((16,), (32, 16), (64, 32))),
)


class MTLModel(nn.Module):
    """Base class: ``forward(x_cat, x_num)`` returns ``{task name: logits}`` in task order.

    Build models with :func:`mtlkit.models.create`, which validates the hyperparameters
    against their declarations and fills in the defaults; constructors take them all.

    Binary and regression tasks give logits of shape ``(B,)``, multiclass ``(B, K)``.
    Subclasses build from :mod:`mtlkit.models.blocks`, list their task-specific modules in
    :meth:`task_modules` (everything else counts as shared) and, when they have gates, store
    the last forward's gate weights in ``self.last_gates`` (task -> ``(B, n_experts)``).
    A model with an extra training objective (AITM's calibrator, a load-balancing term)
    returns it from :meth:`auxiliary_loss` (or, when it needs the labels, from
    :meth:`label_loss`), which the trainer adds to the task losses.
    """

    #: Sequential-task models (ESMM, AITM) name the role of each task in order; None = any.
    task_roles: tuple[str, ...] | None = None
    #: Binary tasks whose forward output is already a probability rather than a logit.
    probability_outputs: frozenset[str] = frozenset()

    def __init__(
        self,
        schema: Schema,
        *,
        embedding_dim: int,
        activation: str,
        dropout: float,
        norm: str | None,
    ) -> None:
        super().__init__()
        self.schema = schema
        self.task_names: list[str] = schema.task_names
        self.block_kwargs = {"activation": activation, "dropout": dropout, "norm": norm}
        self.encoder = InputEncoder(schema, embedding_dim)
        self.last_gates: dict[str, torch.Tensor] = {}

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def make_towers(self, in_dim: int, hidden: Sequence[int]) -> nn.ModuleDict:
        """One :class:`Tower` per task (``hidden`` widths, then the task's output layer)."""
        return nn.ModuleDict(
            {
                t.name: Tower(in_dim, hidden, t.output_dim, **self.block_kwargs)
                for t in self.schema.tasks
            }
        )

    def task_modules(self, task: str) -> list[nn.Module]:
        """Modules that serve only ``task`` (its tower, its gate...)."""
        raise NotImplementedError

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return [p for m in self.task_modules(task) for p in m.parameters()]

    def task_slices(self, task: str) -> list[tuple[nn.Parameter, TaskIndex]]:
        """Parameters that hold several tasks' weights side by side, each with the index of
        ``task``'s part: ``parameter[index]`` serves only ``task`` (e.g. one tensor of every
        task's tower weights, for one batched product); none by default. Such a parameter is
        neither one task's (:meth:`task_parameters`) nor shared: a task's loss reaches only
        its own part, so a step that trains one task gives the other parts a zero gradient."""
        return []

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that serve more than one task (the target of gradient balancing)."""
        own = {id(p) for t in self.task_names for p in self.task_parameters(t)}
        own |= {id(p) for t in self.task_names for p, _ in self.task_slices(t)}
        return [p for p in self.parameters() if id(p) not in own]

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights saved by an earlier mtlkit, in this model's current layout: every module
        with an ``upgrade_state(state, prefix)`` method rewrites its own entries where their
        names or shapes changed; the others are returned as they are."""
        state = dict(state)
        for prefix, module in self.named_modules():
            upgrade = getattr(module, "upgrade_state", None)
            if upgrade is not None:
                upgrade(state, f"{prefix}." if prefix else "")
        return state

    def auxiliary_loss(self) -> torch.Tensor | None:
        """An extra loss term from the last forward pass (e.g. a calibrator), or None.

        The trainer adds it, unweighted, to what every strategy backpropagates.
        """
        return None

    def label_loss(self, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """An extra loss term of the last forward pass that needs the labels ``(B, T)``, or
        None (e.g. ESCM2's counterfactual CVR risk).

        ``mask`` marks the labels the current step trains (labelled, and of a task the step
        trains), so a masked label must not reach it. The trainer adds it, unweighted, with
        :meth:`auxiliary_loss`.
        """
        return None

    def conditional_outputs(self) -> dict[str, torch.Tensor]:
        """Per-row conditional probabilities of the last forward pass, named
        ``"<step>_given_<previous step>"`` (funnel models: ESMM's pCVR, AITM's per-step
        probabilities); empty for other models. ``predict_proba`` returns them next to the
        tasks."""
        return {}

    def gate_weights(self) -> dict[str, torch.Tensor]:
        """Gate weights of the last forward pass per task; empty for models without gates."""
        return dict(self.last_gates)

    def check_labels(self, y: torch.Tensor, mask: torch.Tensor) -> None:
        """Refuse training labels ``(N, T)`` the model cannot learn from (default: accept).

        Sequential models check the funnel order: a row positive for a step must be positive
        for the step before it.
        """
        if self.task_roles is None:
            return
        names = self.task_names
        for k in range(1, len(names)):
            both = mask[:, k] & mask[:, k - 1]
            bad = int((both & (y[:, k] == 1) & (y[:, k - 1] == 0)).sum())
            if bad:
                raise DataError(
                    f"{bad} training row(s) are positive for {names[k]!r} but not for "
                    f"{names[k - 1]!r}; {type(self).__name__} needs the tasks in funnel order, "
                    f"each step implying the one before (got {names}). Reorder the labels "
                    "(earliest step first) or fix those rows."
                )


def check_sequential_tasks(
    model: str, schema: Schema, order: str, n_tasks: int | None = None
) -> None:
    """Refuse a schema that is not a sequence of binary funnel tasks.

    ``order`` tells the user in which order the labels must be given (e.g. "click, then
    conversion"); ``n_tasks`` is the exact number needed, or None for "two or more".
    """
    names = schema.task_names
    wrong_count = len(names) != n_tasks if n_tasks is not None else len(names) < 2
    if wrong_count:
        need = f"exactly {n_tasks}" if n_tasks is not None else "two or more"
        raise ConfigError(
            f"model {model!r} needs {need} binary tasks given in funnel order ({order}); "
            f"got {len(names)} task(s) {names}."
        )
    not_binary = [f"{t.name} ({t.kind})" for t in schema.tasks if t.kind != "binary"]
    if not_binary:
        raise ConfigError(
            f"model {model!r} needs binary tasks in funnel order ({order}), but "
            f"{', '.join(not_binary)} are not binary; pass 0/1 labels for every task."
        )
