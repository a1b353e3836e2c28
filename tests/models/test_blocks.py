import pytest
import torch
from torch import nn

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models import create
from mtlkit.models.blocks import MLP, BatchedMLP, Gate, InputEncoder, mix_experts


def _loop_reference(batched: BatchedMLP, x: torch.Tensor) -> torch.Tensor:
    """The same experts as separate nn.Linear stacks, evaluated one by one."""
    outs = []
    for e in range(batched.n):
        h = x if x.dim() == 2 else x[e]
        for w, b in zip(batched.weights, batched.biases):
            lin = nn.Linear(w.shape[1], w.shape[2])
            with torch.no_grad():
                lin.weight.copy_(w[e].T)
                lin.bias.copy_(b[e, 0])
            h = torch.relu(lin(h))
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("hidden", [(16,), (32, 8)])
def test_batched_experts_match_a_per_expert_loop(hidden):
    torch.manual_seed(0)
    batched = BatchedMLP(8, 12, hidden)
    x = torch.randn(50, 12)
    torch.testing.assert_close(batched(x), _loop_reference(batched, x))


def test_batched_experts_accept_one_input_per_member():
    torch.manual_seed(0)
    batched = BatchedMLP(3, 5, (4,))
    x = torch.randn(3, 7, 5)
    torch.testing.assert_close(batched(x), _loop_reference(batched, x))


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_batched_experts_with_norm_keep_shapes(norm):
    out = BatchedMLP(4, 6, (5, 3), norm=norm, dropout=0.1)(torch.randn(9, 6))
    assert out.shape == (4, 9, 3)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_batched_members_normalise_with_scales_of_their_own(norm):
    """Each member's normalisation has its own scale and shift, as separate MLPs would."""
    torch.manual_seed(0)
    batched = BatchedMLP(3, 5, (4,), norm=norm)
    with torch.no_grad():
        for p in batched.parameters():
            p.add_(torch.randn_like(p))
    x = torch.randn(3, 7, 5)
    out = batched(x)
    for e in range(3):
        (w, e_w), (b, e_b), (scale, e_s), (shift, e_h) = batched.member_slices(e)
        norm_layer = nn.BatchNorm1d(4) if norm == "batch" else nn.LayerNorm(4)
        with torch.no_grad():
            norm_layer.weight.copy_(scale[e_s].flatten())
            norm_layer.bias.copy_(shift[e_h].flatten())
        expected = torch.relu(norm_layer(torch.addmm(b[e_b], x[e], w[e_w])))
        torch.testing.assert_close(out[e], expected)


def test_layer_norm_weights_saved_with_one_scale_for_all_members_still_load():
    """Up to 6c82c21 a BatchedMLP's layer norm had one scale and shift for every member."""
    torch.manual_seed(0)
    schema = Schema((3, 4), 2, (TaskSpec("a", "binary"), TaskSpec("b", "binary")))
    model = create("mmoe", schema, norm="layer")
    state = model.state_dict()
    old = {k: v for k, v in state.items() if not k.startswith("experts.norms.0.")}
    old["experts.norms.0.norm.weight"] = torch.linspace(0.5, 2.0, 16)
    old["experts.norms.0.norm.bias"] = torch.linspace(-1.0, 1.0, 16)
    model.load_state_dict(model.upgrade_state_dict(old))
    scale = model.experts.norms[0].weight
    assert scale.shape == (8, 1, 16)
    torch.testing.assert_close(scale, torch.linspace(0.5, 2.0, 16).expand(8, 1, 16))


def test_input_encoder_uses_one_fused_table_with_offsets():
    schema = Schema((3, 5), 2, (TaskSpec("t", "binary"),))
    enc = InputEncoder(schema, embedding_dim=4)
    assert enc.embedding.num_embeddings == 8
    assert enc.output_dim == 2 * 4 + 2
    x_cat = torch.tensor([[0, 0], [2, 4]])
    out = enc(x_cat, torch.zeros(2, 2))
    # Column 1's id 0 is row 3 of the fused table, not row 0.
    torch.testing.assert_close(out[0, 4:8], enc.embedding.weight[3])
    torch.testing.assert_close(out[1, 0:4], enc.embedding.weight[2])


def test_input_encoder_lookup_has_the_embedding_values_and_gradients():
    torch.manual_seed(0)
    enc = InputEncoder(Schema((3, 5, 2), 1, (TaskSpec("t", "binary"),)), embedding_dim=3)
    x_cat = torch.randint(0, 2, (40, 3))
    out = enc(x_cat, torch.zeros(40, 1))
    grad = torch.randn_like(out)
    out.backward(grad)
    reference = torch.nn.functional.embedding(x_cat + enc.offsets, enc.embedding.weight)
    torch.testing.assert_close(out[:, :9], reference.flatten(1))
    (expected,) = torch.autograd.grad(reference.flatten(1), enc.embedding.weight, grad[:, :9])
    torch.testing.assert_close(enc.embedding.weight.grad, expected)
    assert enc(x_cat[:0], torch.zeros(0, 1)).shape == (0, 10)


def test_gate_is_a_distribution_and_mixing_weights_experts():
    gate = Gate(6, 4)(torch.randn(10, 6))
    assert torch.all(gate >= 0)
    torch.testing.assert_close(gate.sum(-1), torch.ones(10))
    experts = torch.randn(4, 10, 3)
    one_hot = torch.zeros(10, 4)
    one_hot[:, 2] = 1
    torch.testing.assert_close(mix_experts(experts, one_hot), experts[2])


def test_mixing_is_the_gate_weighted_sum_of_expert_outputs():
    torch.manual_seed(0)
    gate = Gate(6, 4, top_k=2)
    x, experts = torch.randn(10, 6), torch.randn(4, 10, 3)
    weights = gate(x)
    assert ((weights > 0).sum(-1) == 2).all()
    expected = torch.einsum("ebh,be->bh", experts, weights)
    torch.testing.assert_close(mix_experts(experts, weights), expected)


def test_mlp_output_dim():
    assert MLP(10, (7, 3)).output_dim == 3
    assert MLP(10, ()).output_dim == 10
