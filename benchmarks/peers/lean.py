"""The lean reference: plain PyTorch models and loop, written for this benchmark only.

Each architecture is the same as mtlkit's model of that name (same layers, same parameter
count, checked by the benchmark), written the way a performance-minded engineer would write
it by hand: one fused embedding table, every group of same-shaped networks (experts, towers,
gates) as stacked weights in batched matmuls, batches sliced by an index from in-memory
tensors, Adam with ``foreach=True``, and no per-step host synchronisation. Binary tasks only
(the census tasks). Initialisation follows ``nn.Linear`` / ``nn.Embedding``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def _uniform(*shape: int, fan_in: int) -> nn.Parameter:
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class Stack(nn.Module):
    """``n`` same-shaped MLPs (ReLU after every layer, or not after the last with
    ``last_linear``) held as ``(n, in, out)`` weights.

    ``forward`` takes ``(B, in)`` (shared input: the first layer is one wide matmul) or
    ``(n, B, in)`` and returns ``(n, B, out)``.
    """

    def __init__(self, n: int, in_dim: int, widths: list[int], last_linear: bool = False):
        super().__init__()
        self.n, self.last_linear = n, last_linear
        self.w = nn.ParameterList()
        self.b = nn.ParameterList()
        for h in widths:
            self.w.append(_uniform(n, in_dim, h, fan_in=in_dim))
            self.b.append(_uniform(n, 1, h, fan_in=in_dim))
            in_dim = h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.w) - 1
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            if x.dim() == 2:  # shared input: (B, in) @ (in, n*h), then (n, B, h) views
                n, d, h = w.shape
                flat = torch.addmm(
                    b.transpose(0, 1).reshape(1, n * h), x, w.transpose(0, 1).reshape(d, n * h)
                )
                x = flat.view(-1, n, h).transpose(0, 1)
            else:
                x = torch.baddbmm(b, x, w)
            if i < last or not self.last_linear:
                x = F.relu(x)
        return x


class Encoder(nn.Module):
    """One embedding table for all categorical columns (``copies`` independent tables for
    single-task models, stacked in the same tensor), numeric columns appended."""

    def __init__(self, cards: list[int], dim: int, copies: int = 1):
        super().__init__()
        total = sum(cards)
        offsets = torch.tensor([0, *cards[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets + total * torch.arange(copies).view(copies, 1, 1))
        self.table = nn.Embedding(total * copies, dim)
        self.copies = copies

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> torch.Tensor:
        ids = x_cat + (self.offsets[0] if self.copies == 1 else self.offsets)
        if ids.is_cuda:
            emb = self.table(ids)
        else:  # index_select: its backward (index_add_) is ~4x faster than Embedding's on a CPU
            emb = self.table.weight.index_select(0, ids.flatten()).view(*ids.shape, -1)
        if self.copies == 1:
            return torch.cat([emb.flatten(1), x_num], 1)
        # (copies, B, n_cat * dim)
        return torch.cat([emb.flatten(2), x_num.expand(self.copies, -1, -1)], 2)


def _towers(n_tasks: int, in_dim: int, hidden: list[int]) -> Stack:
    return Stack(n_tasks, in_dim, [*hidden, 1], last_linear=True)


class LeanMMoE(nn.Module):
    def __init__(self, cards, n_num, n_tasks, emb, n_experts, expert_hidden, tower_hidden):
        super().__init__()
        self.enc = Encoder(cards, emb)
        d = len(cards) * emb + n_num
        self.n_tasks, self.n_experts = n_tasks, n_experts
        self.experts = Stack(n_experts, d, expert_hidden)
        self.gates = nn.Linear(d, n_tasks * n_experts)  # every task's gate in one matmul
        self.towers = _towers(n_tasks, expert_hidden[-1], tower_hidden)

    def forward(self, x_cat, x_num):
        x = self.enc(x_cat, x_num)
        experts = self.experts(x)  # (E, B, h)
        # Gate logits straight in (T, E, B) layout; the mixture as a broadcast product summed
        # over experts (an einsum would run B tiny matmuls, several times slower on a CPU).
        logits = torch.addmm(self.gates.bias.unsqueeze(1), self.gates.weight, x.T)
        gates = logits.view(self.n_tasks, self.n_experts, -1).softmax(1)
        mixed = (gates.unsqueeze(-1) * experts).sum(1)  # (T, B, h)
        return self.towers(mixed).squeeze(-1)  # (T, B) logits


class LeanSharedBottom(nn.Module):
    def __init__(self, cards, n_num, n_tasks, emb, bottom_hidden, tower_hidden):
        super().__init__()
        self.enc = Encoder(cards, emb)
        d = len(cards) * emb + n_num
        self.bottom = Stack(1, d, bottom_hidden)
        self.towers = _towers(n_tasks, bottom_hidden[-1], tower_hidden)

    def forward(self, x_cat, x_num):
        shared = self.bottom(self.enc(x_cat, x_num))[0]
        return self.towers(shared).squeeze(-1)


class LeanSingleTask(nn.Module):
    def __init__(self, cards, n_num, n_tasks, emb, hidden):
        super().__init__()
        self.enc = Encoder(cards, emb, copies=n_tasks)
        self.nets = Stack(n_tasks, len(cards) * emb + n_num, [*hidden, 1], last_linear=True)

    def forward(self, x_cat, x_num):
        return self.nets(self.enc(x_cat, x_num)).squeeze(-1)


class LeanPLE(nn.Module):
    """CGC levels: per level all experts (task groups, then the shared group) in one Stack;
    task gates over own + shared experts; a gate over all experts builds the next level's
    shared input (every level but the last)."""

    def __init__(
        self,
        cards,
        n_num,
        n_tasks,
        emb,
        n_levels,
        n_task_experts,
        n_shared,
        expert_hidden,
        tower_hidden,
    ):
        super().__init__()
        self.enc = Encoder(cards, emb)
        self.n_tasks, self.nt, self.ns = n_tasks, n_task_experts, n_shared
        n_all = n_tasks * n_task_experts + n_shared
        d = len(cards) * emb + n_num
        self.experts = nn.ModuleList()
        self.task_gates = nn.ModuleList()
        self.shared_gates = nn.ModuleList()
        for level in range(n_levels):
            self.experts.append(Stack(n_all, d, expert_hidden))
            self.task_gates.append(Stack(n_tasks, d, [n_task_experts + n_shared], last_linear=True))
            if level < n_levels - 1:
                self.shared_gates.append(nn.Linear(d, n_all))
            d = expert_hidden[-1]
        self.towers = _towers(n_tasks, d, tower_hidden)
        # Expert e reads input group e // nt (its task) or the shared input (index T).
        group = torch.cat(
            [
                torch.arange(n_tasks).repeat_interleave(n_task_experts),
                torch.full((n_shared,), n_tasks),
            ]
        )
        own = torch.arange(n_tasks * n_task_experts).view(n_tasks, n_task_experts)
        shared = torch.arange(n_tasks * n_task_experts, n_all).expand(n_tasks, n_shared)
        self.register_buffer("group", group)
        self.register_buffer("task_experts", torch.cat([own, shared], 1))  # (T, nt + ns)

    def forward(self, x_cat, x_num):
        h = self.enc(x_cat, x_num)  # (B, d), then (T + 1, B, d)
        levels = len(self.experts)
        for level in range(levels):
            first = h.dim() == 2
            experts = self.experts[level](
                h if first else h.index_select(0, self.group)
            )  # (n_all, B, e)
            task_in = h if first else h[: self.n_tasks]
            gates = self.task_gates[level](task_in).softmax(-1)  # (T, B, nt + ns)
            picked = experts[self.task_experts]  # (T, nt + ns, B, e)
            outs = (gates.transpose(1, 2).unsqueeze(-1) * picked).sum(1)  # (T, B, e)
            if level < levels - 1:
                shared_in = h if first else h[-1]
                g = self.shared_gates[level](shared_in).softmax(-1)  # (B, n_all)
                outs = torch.cat([outs, (g.T.unsqueeze(-1) * experts).sum(0, keepdim=True)])
            h = outs
        return self.towers(h).squeeze(-1)


def build(model: str, cards: list[int], n_num: int, n_tasks: int, preset: dict) -> nn.Module:
    emb = preset["embedding_dim"]
    hp = preset["models"][model]
    if model == "mmoe":
        return LeanMMoE(
            cards, n_num, n_tasks, emb, hp["n_experts"], hp["expert_hidden"], hp["tower_hidden"]
        )
    if model == "shared_bottom":
        return LeanSharedBottom(cards, n_num, n_tasks, emb, hp["bottom_hidden"], hp["tower_hidden"])
    if model == "single_task":
        return LeanSingleTask(cards, n_num, n_tasks, emb, hp["hidden"])
    if model == "ple":
        return LeanPLE(
            cards,
            n_num,
            n_tasks,
            emb,
            hp["n_levels"],
            hp["n_task_experts"],
            hp["n_shared_experts"],
            hp["expert_hidden"],
            hp["tower_hidden"],
        )
    raise ValueError(model)


def train(
    model: nn.Module,
    data: dict,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    adam: str = "fused",
    on_epoch: Callable[[int], None] | None = None,
) -> list[float]:
    """The loop; returns the wall seconds of each epoch (nothing else happens in them).
    ``adam`` is "foreach" or "fused" (one kernel for all parameters); ``on_epoch(epoch)`` is
    called after each epoch, outside its timing (e.g. to score the model as it learns)."""
    x_cat, x_num, y = data["x_cat"], data["x_num"], data["y"]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, **{adam: True})
    generator = torch.Generator().manual_seed(seed)
    n = len(y)
    times = []
    model.train()
    for _ in range(epochs):
        start = time.perf_counter()
        perm = torch.randperm(n, generator=generator).to(y.device)
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]  # index_select: ~4x faster than x[idx] on a CPU
            logits = model(x_cat.index_select(0, idx), x_num.index_select(0, idx))  # (T, B)
            target = y.index_select(0, idx).T
            loss = (
                F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1).sum()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if y.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if on_epoch is not None:
            on_epoch(len(times))
            model.train()
    return times


def folded_linear(
    enc: Encoder, x_cat: torch.Tensor, x_num: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """``enc(x_cat, x_num) @ weight + bias`` without building the encoded input: each
    column's embedding rows are multiplied by that column's block of ``weight`` once
    (``E_i @ W_i``, a small table), then every row sums its columns' table rows
    (``embedding_bag``). Exact up to float rounding; cheaper than the dense product when the
    tables have fewer rows than the batch has lookups. Prediction only here (a prototype)."""
    cards = torch.diff(enc.offsets[0, 0], append=torch.tensor([enc.table.num_embeddings])).tolist()
    d = enc.table.embedding_dim
    blocks = weight[: len(cards) * d].view(len(cards), d, -1)
    rows = enc.table.weight.split(cards)
    table = torch.cat([r @ blocks[i] for i, r in enumerate(rows)])
    summed = F.embedding_bag(x_cat + enc.offsets[0], table, mode="sum")
    return torch.addmm(bias, x_num, weight[len(cards) * d :]) + summed


@torch.inference_mode()
def predict_folded(model: LeanMMoE, x_cat, x_num, batch_size: int = 16384) -> torch.Tensor:
    """``predict`` of an MMoE with the experts' first layer and the gates folded into the
    embedding tables (:func:`folded_linear`)."""
    model.eval()
    e, h = model.n_experts, model.experts.w[0].shape[2]
    w1, b1 = model.experts.w[0], model.experts.b[0]
    weight = torch.cat([w1.transpose(0, 1).reshape(w1.shape[1], e * h), model.gates.weight.T], 1)
    bias = torch.cat([b1.reshape(e * h), model.gates.bias])
    parts = []
    for s in range(0, len(x_cat), batch_size):
        pre = folded_linear(
            model.enc, x_cat[s : s + batch_size], x_num[s : s + batch_size], weight, bias
        )
        experts = F.relu(pre[:, : e * h]).view(-1, e, h).transpose(0, 1)
        for w, b in zip(model.experts.w[1:], model.experts.b[1:]):
            experts = F.relu(torch.baddbmm(b, experts, w))
        gates = pre[:, e * h :].T.reshape(model.n_tasks, e, -1).softmax(1)
        mixed = (gates.unsqueeze(-1) * experts).sum(1)
        parts.append(model.towers(mixed).squeeze(-1).sigmoid().T)
    return torch.cat(parts)


@torch.inference_mode()
def predict(
    model: nn.Module, x_cat: torch.Tensor, x_num: torch.Tensor, batch_size: int = 16384
) -> torch.Tensor:
    """Probabilities ``(N, T)``."""
    model.eval()
    parts = [
        model(x_cat[s : s + batch_size], x_num[s : s + batch_size]).sigmoid().T
        for s in range(0, len(x_cat), batch_size)
    ]
    return torch.cat(parts)
