"""The defining property of each expert architecture of 2021-2024: DSelect-k, STEM, AdaTT,
HoME and PEPNet (shapes, gradients and learning are covered for every model by the zoo
tests)."""

import pytest
import torch
import torch.nn.functional as F

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.errors import ConfigError
from mtlkit.models import create
from mtlkit.models.dselect_k import DSelectGate, selector_penalty, smooth_step

SCHEMA = Schema((5, 3), 4, tuple(TaskSpec(f"t{i}", "binary") for i in range(3)))


def _inputs(n: int = 32, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (n, 2), generator=g), torch.randn(n, 4, generator=g)


def _perturb(params) -> None:
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p))


def _changes(model, params, task: str) -> bool:
    """Whether ``task``'s output moves when ``params`` are perturbed (evaluation mode)."""
    model.eval()
    before = model(*_inputs())[task]
    _perturb(params)
    return not torch.allclose(before, model(*_inputs())[task])


# ---- DSelect-k -------------------------------------------------------------------------


def test_smooth_step_is_exactly_binary_outside_its_transition_region():
    t = torch.tensor([-2.0, -0.5, -0.1, 0.0, 0.3, 0.5, 3.0], requires_grad=True)
    s = smooth_step(t, gamma=1.0)
    assert s[0] == 0 and s[1] == 0 and s[5] == 1 and s[6] == 1 and s[3] == 0.5
    assert 0 < s[2] < 0.5 < s[4] < 1
    (grad,) = torch.autograd.grad(s.sum(), t)
    assert grad[0] == 0 and grad[6] == 0 and grad[3] > 0  # saturated bits stop moving


def test_dselect_k_gates_select_exactly_k_experts_once_the_bits_saturate():
    torch.manual_seed(0)
    model = create("dselect_k", SCHEMA, n_experts=8, k=2)
    with torch.no_grad():
        for gate in model.gates.values():
            gate.z.weight.zero_()
            # Selector 0 -> code 101 (expert 5), selector 1 -> code 010 (expert 2).
            gate.z.bias.copy_(torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0]))
    model(*_inputs())
    for gate in model.gate_weights().values():
        assert torch.equal((gate > 0).sum(1), torch.full((32,), 2))
        assert torch.all(gate[:, 5] > 0) and torch.all(gate[:, 2] > 0)
        torch.testing.assert_close(gate.sum(1), torch.ones(32))
    assert model.auxiliary_loss().item() == pytest.approx(0.0, abs=1e-4)  # binary selectors


def test_dselect_k_training_drives_dense_gates_towards_k_sparse_ones():
    """From the paper's initialisation (every expert weighted) the entropy-regularised
    training moves most rows' gates onto exactly k experts."""
    torch.manual_seed(0)
    x = torch.randn(128, 6)
    y = (x[:, 0] > 0).float()
    experts = torch.nn.Linear(6, 8)
    gate = DSelectGate(6, 8, k=2, gamma=1.0)
    assert torch.all((gate(x)[0] > 0).sum(1) == 8)
    opt = torch.optim.Adam([*gate.parameters(), *experts.parameters()], lr=0.05)
    for _ in range(150):
        weights, selectors = gate(x)
        logit = (weights * experts(x)).sum(1)
        loss = F.binary_cross_entropy_with_logits(logit, y) + 0.1 * selector_penalty(selectors)
        opt.zero_grad()
        loss.backward()
        opt.step()
    nonzero = (gate(x)[0] > 0).sum(1).float()
    assert nonzero.mean() < 3 and (nonzero <= 2).float().mean() > 0.6, nonzero


def test_dselect_k_penalises_codes_without_an_expert():
    gate = DSelectGate(4, 5, k=1, gamma=1.0)  # 3 bits, codes 5-7 have no expert
    with torch.no_grad():
        gate.z.weight.zero_()
        gate.z.bias.copy_(torch.tensor([1.0, 1.0, 1.0]))  # code 111: no expert
    _, selectors = gate(torch.randn(3, 4))
    assert selectors.sum() == 0 and selector_penalty(selectors) > 1e5
    with torch.no_grad():
        gate.z.bias.copy_(torch.tensor([1.0, -1.0, -1.0]))  # code 100: expert 4
    _, selectors = gate(torch.randn(3, 4))
    assert selector_penalty(selectors).item() == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ConfigError, match="k must"):
        create("dselect_k", SCHEMA, n_experts=4, k=5)


# ---- STEM ------------------------------------------------------------------------------


def test_stem_task_embeddings_learn_from_their_own_task_only_but_feed_every_gate():
    torch.manual_seed(0)
    model = create("stem", SCHEMA, n_task_experts=2, n_shared_experts=1)
    out = model(*_inputs())
    assert model.gate_weights()["t0"].shape == (32, 3 * 2 + 1)
    own = list(model.task_encoders["t0"].parameters()) + list(model.task_experts["t0"].parameters())
    for task in ("t1", "t2"):
        grads = torch.autograd.grad(out[task].sum(), own, retain_graph=True, allow_unused=True)
        assert all(g is None or g.abs().sum() == 0 for g in grads), task
    grads = torch.autograd.grad(out["t0"].sum(), own, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    # All forward: task 1's embeddings still shape task 0's prediction.
    assert _changes(model, model.task_encoders["t1"].parameters(), "t0")


# ---- AdaTT -----------------------------------------------------------------------------


def test_adatt_fuses_all_experts_by_gate_plus_the_tasks_native_experts():
    torch.manual_seed(0)
    model = create("adatt", SCHEMA, n_levels=1, n_task_experts=2).eval()
    x = model.encoder(*_inputs())
    level = model.levels[0]
    experts = level.experts(x)  # (3 * 2, B, h)
    for k in range(3):
        unit = level.units[k]
        gate = unit.gate(x)
        expected = torch.einsum("be,ebh->bh", gate, experts)
        expected = expected + torch.einsum("m,mbh->bh", unit.native, experts[2 * k : 2 * k + 2])
        torch.testing.assert_close(level(x)[k], expected)
    # Unlike CGC, a task reads the other tasks' own experts directly.
    experts_of_t1 = [w[2:4] for w in level.experts.weights]
    before = model(*_inputs())["t0"]
    with torch.no_grad():
        for w in experts_of_t1:
            w.add_(1.0)
    assert not torch.allclose(before, model(*_inputs())["t0"])


# ---- HoME ------------------------------------------------------------------------------


def test_home_hierarchy_mask_keeps_categories_off_each_others_experts():
    torch.manual_seed(0)
    model = create("home", SCHEMA, task_groups=[0, 0, 1], n_shared_experts=2, n_group_experts=1)
    model(*_inputs())
    assert model.gate_weights()["t2"].shape == (32, 1 + 1 + 2)  # own, category, global
    # Category 0's task-level experts sit after the 2 global ones.
    category0 = [w[2:3] for w in model.experts.experts.weights]
    assert not _changes(model, category0 + list(model.task_experts["t0"].parameters()), "t2")
    assert _changes(model, category0, "t1")
    glob = [w[:2] for w in model.experts.experts.weights]
    assert _changes(model, glob, "t2")
    # At the meta level, as in PLE, a shared gate mixes every expert into the shared
    # representation, so category 0's meta experts reach category 1 through it.
    assert _changes(model, [w[2:3] for w in model.meta_experts.experts.weights], "t2")
    with pytest.raises(ConfigError, match="task_groups"):
        create("home", SCHEMA, task_groups=[0, 1])


def test_home_experts_are_normalised_swish_units_behind_feature_gates():
    torch.manual_seed(0)
    model = create("home", SCHEMA)
    block = model.meta_experts
    x = model.encoder(*_inputs())
    gated = block.features(x)
    factor = gated / x.expand_as(gated)
    assert torch.all((factor > 0) & (factor < 2))  # 2 sigmoid(.)
    w, b = block.experts.weights[0], block.experts.biases[0]
    pre = torch.baddbmm(b, gated, w)
    norm = block.experts.norms[0]  # each expert's own scale and shift, (n, 1, h)
    expected = F.silu(F.layer_norm(pre, pre.shape[-1:]) * norm.weight + norm.bias)
    torch.testing.assert_close(block(x), expected)


def test_home_self_gate_adds_the_tasks_own_experts_as_a_residual():
    torch.manual_seed(0)
    model = create("home", SCHEMA).eval()
    with torch.no_grad():
        model.self_gates["t1"].bias.fill_(-30.0)  # self gate closed: only the mixture
    closed = model(*_inputs())["t1"]
    with torch.no_grad():
        model.self_gates["t1"].bias.fill_(30.0)
    assert not torch.allclose(closed, model(*_inputs())["t1"])


# ---- PEPNet ----------------------------------------------------------------------------


def _capture(module) -> list[torch.Tensor]:
    outputs: list[torch.Tensor] = []
    module.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    return outputs


def test_pepnet_gates_read_the_embeddings_behind_a_stop_gradient():
    torch.manual_seed(0)
    model = create("pepnet", SCHEMA, prior_columns=[0])
    table = model.encoder.embedding.weight
    ep = _capture(model.ep_gate)
    pp = _capture(model.towers["t0"].gates[0])
    model(*_inputs())
    # The embedding gate: no gradient from its output back into the embeddings it reads.
    (grad,) = torch.autograd.grad(ep[0].sum(), table, retain_graph=True, allow_unused=True)
    assert grad is None or grad.abs().sum() == 0
    # A tower gate reads the prior column's embeddings with gradient, nothing else.
    (grad,) = torch.autograd.grad(pp[0].sum(), table)
    assert grad[:5].abs().sum() > 0 and grad[5:].abs().sum() == 0  # column 0 = ids 0-4


def test_pepnet_gates_scale_every_tower_layer_input_in_0_to_2():
    torch.manual_seed(0)
    model = create("pepnet", SCHEMA, tower_hidden=[8, 4]).eval()
    tower = model.towers["t1"]
    values = [_capture(g) for g in tower.gates]
    base = model(*_inputs())["t1"]
    assert len(values) == 3  # two hidden layers and the output layer
    for v in values:
        assert torch.all((v[0] > 0) & (v[0] < 2))
    with torch.no_grad():
        for gate in tower.gates:
            gate.out.weight.zero_()
            gate.out.bias.fill_(20.0)  # gates at 2: every layer input doubled
    assert not torch.allclose(base, model(*_inputs())["t1"])
    with pytest.raises(ConfigError, match="position"):
        create("pepnet", SCHEMA, prior_columns=[2])
