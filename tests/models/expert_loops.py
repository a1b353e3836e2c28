"""Models written the plain way, one expert and one gate at a time, from a model's own
weights: the references that the batched models are tested against."""

import torch

from mtlkit.data.schema import Schema


def random_inputs(schema: Schema, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x_cat = torch.stack(
        [torch.randint(0, c, (n,), generator=g) for c in schema.cat_cardinalities], 1
    )
    return x_cat, torch.randn(n, schema.n_numeric, generator=g, dtype=torch.float64)


def one_expert(mlp, e: int, h: torch.Tensor) -> torch.Tensor:
    """Expert ``e`` of a BatchedMLP as its own stack of linear layers and ReLUs."""
    for w, b in zip(mlp.weights, mlp.biases):
        h = torch.relu(h @ w[e] + b[e, 0])
    return h


def one_gate(gate, h: torch.Tensor) -> torch.Tensor:
    """One gate's softmax weights; with top-k, the other logits set to -inf first."""
    logits = h @ gate.linear.weight.T + gate.linear.bias
    if gate.top_k is not None:
        kth = logits.topk(gate.top_k, dim=1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits, dim=1)


def weighted_sum(weights: torch.Tensor, experts: list[torch.Tensor]) -> torch.Tensor:
    return sum(weights[:, i : i + 1] * out for i, out in enumerate(experts))


def weighted_loss(outputs: dict) -> torch.Tensor:
    return sum((k + 1) * out.square().mean() for k, out in enumerate(outputs.values()))
