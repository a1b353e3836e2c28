"""Single-task baseline: one independent network per task, nothing shared."""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import MTLModel, TaskIndex
from mtlkit.models.blocks import BatchedMLP, InputEncoder
from mtlkit.models.registry import MODELS
from mtlkit.params import Choice, Sizes


@MODELS.register(
    "single_task",
    "one independent MLP per task; the baseline every MTL model is measured against",
    params=[
        Sizes(
            "hidden",
            (64, 32),
            "hidden widths of each task's own MLP",
            search=Choice(((32,), (64,), (64, 32), (128, 64))),
        ),
    ],
)
class SingleTask(MTLModel):
    """One independent network per task (no parameter sharing).

    Each task gets its own embedding table and an MLP of ``hidden`` widths followed by its
    output layer, so results equal training one model per task. The reference point for the
    gain of multi-task learning.

    The tasks' networks are computed together: their embedding tables are the copies of one
    :class:`InputEncoder` (one lookup for every task) and their layers the members of one
    :class:`BatchedMLP` and one batched output layer (of the widest task's outputs; a task
    with fewer reads its first ones, the others never get a gradient). Task ``t``'s weights
    are part ``t`` of each tensor (:meth:`task_slices`): no task's loss reaches another task's
    part, and the initial weights are drawn task by task as separate networks' would be (the
    same weights, for a given seed, as mtlkit's per-task modules up to 6c82c21).
    One difference from separate networks: with a strategy that trains one task per step
    (``alternating``), the other tasks' parts get a zero gradient rather than none, so Adam
    still moves them by their own momentum.

    Hyperparameters: ``hidden`` (widths of each task's MLP), plus the common
    ``embedding_dim``, ``activation``, ``dropout`` and ``norm``.
    """

    def __init__(self, schema: Schema, *, hidden: Sequence[int], **common) -> None:
        super().__init__(schema, **common)
        self.hidden = tuple(hidden)
        n = len(self.task_names)
        self.encoder = InputEncoder(schema, self.encoder.embedding_dim, copies=n)
        self.out_dims = [t.output_dim for t in schema.tasks]
        with torch.random.fork_rng(devices=[]):  # drawn again below, task by task
            self.towers = BatchedMLP(n, self.encoder.output_dim, self.hidden, **self.block_kwargs)
        width, widest = self.towers.output_dim, max(self.out_dims)
        self.out_weight = nn.Parameter(torch.zeros(n, width, widest))
        self.out_bias = nn.Parameter(torch.zeros(n, 1, widest))
        self._draw_towers()

    @torch.no_grad()
    def _draw_towers(self) -> None:
        """Each task's layers drawn in turn as ``nn.Linear`` draws them (a separate network's
        initial weights, in the order a :class:`Tower` per task draws them)."""
        for k, out_dim in enumerate(self.out_dims):
            for w, b in zip(self.towers.weights, self.towers.biases):
                layer = nn.Linear(w.shape[1], w.shape[2])
                w[k], b[k, 0] = layer.weight.T, layer.bias
            layer = nn.Linear(self.towers.output_dim, out_dim)
            self.out_weight[k, :, :out_dim], self.out_bias[k, 0, :out_dim] = (
                layer.weight.T,
                layer.bias,
            )

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.towers(self.encoder(x_cat, x_num))  # (T, B, h)
        logits = torch.baddbmm(self.out_bias, hidden, self.out_weight)  # (T, B, widest)
        return {
            t: logits[k, :, 0] if k_out == 1 else logits[k, :, :k_out]
            for k, (t, k_out) in enumerate(zip(self.task_names, self.out_dims))
        }

    def task_modules(self, task: str) -> list[nn.Module]:
        return []  # every parameter holds all tasks' weights: see task_slices

    def task_slices(self, task: str) -> list[tuple[nn.Parameter, TaskIndex]]:
        k = self.task_names.index(task)
        return [
            *self.encoder.copy_slices(k),
            *self.towers.member_slices(k),
            (self.out_weight, (k, slice(None), slice(self.out_dims[k]))),
            (self.out_bias, (k, slice(None), slice(self.out_dims[k]))),
        ]

    def upgrade_state(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        """Weights saved by mtlkit up to 6c82c21 (an ``InputEncoder`` and a ``Tower`` per
        task, ``encoders.<task>.*`` and ``towers.<task>.*``) stacked into today's tensors."""
        first = self.task_names[0]
        if f"{prefix}towers.{first}.out.weight" not in state:
            return
        old = {t: _pop_prefixed(state, f"{prefix}towers.{t}.") for t in self.task_names}
        encoders = [_pop_prefixed(state, f"{prefix}encoders.{t}.") for t in self.task_names]
        if "offsets" in encoders[0]:
            state[f"{prefix}encoder.offsets"] = encoders[0]["offsets"]
        if "embedding.weight" in encoders[0]:
            tables = [e["embedding.weight"] for e in encoders]
            state[f"{prefix}encoder.embedding.weight"] = torch.cat(tables)
        towers = [_old_tower(old[t]) for t in self.task_names]
        for i, _ in enumerate(self.hidden):
            layers = [tower["linear"][i] for tower in towers]
            state[f"{prefix}towers.weights.{i}"] = torch.stack([w.T for w, _ in layers])
            state[f"{prefix}towers.biases.{i}"] = torch.stack([b[None] for _, b in layers])
            norms = [tower["norm"][i] for tower in towers if tower["norm"]]
            norm = f"{prefix}towers.norms.{i}."
            if self.block_kwargs["norm"] == "layer":
                for name in ("weight", "bias"):
                    state[norm + name] = torch.stack([m[name][None] for m in norms])
            elif norms:
                for name, value in norms[0].items():
                    stacked = [m[name] for m in norms]
                    state[norm + "norm." + name] = (
                        stacked[0] if value.dim() == 0 else torch.cat(stacked)
                    )
        out_weight = torch.zeros_like(self.out_weight)
        out_bias = torch.zeros_like(self.out_bias)
        for k, t in enumerate(self.task_names):
            w, b = old[t]["out.weight"], old[t]["out.bias"]
            out_weight[k, :, : len(b)], out_bias[k, 0, : len(b)] = w.T, b
        state[f"{prefix}out_weight"], state[f"{prefix}out_bias"] = out_weight, out_bias


def _pop_prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix`` (removed from it), named without it."""
    names = [k for k in state if k.startswith(prefix)]
    return {k[len(prefix) :]: state.pop(k) for k in names}


def _old_tower(state: dict[str, torch.Tensor]) -> dict[str, list]:
    """A saved per-task ``Tower``'s hidden layers, in order: ``linear`` as (weight, bias)
    pairs and ``norm`` as the entries of the normalisation after each (none without)."""
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in state.items():
        match = re.fullmatch(r"mlp\.(\d+)\.(\w+)", name)
        if match:
            layers.setdefault(int(match[1]), {})[match[2]] = value
    linear = [(m["weight"], m["bias"]) for _, m in sorted(layers.items()) if m["weight"].dim() == 2]
    norm = [m for _, m in sorted(layers.items()) if m["weight"].dim() == 1]
    return {"linear": linear, "norm": norm}
