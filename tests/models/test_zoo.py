"""Architecture-specific properties of the general (any-task) models of the zoo."""

import pytest
import torch

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.errors import ConfigError
from mtlkit.models import available, create
from mtlkit.models.blocks import Gate, importance_loss

SCHEMA = Schema((5, 3), 4, tuple(TaskSpec(f"t{i}", "binary") for i in range(3)))


def _inputs(n: int = 32):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 3, (n, 2), generator=g), torch.randn(n, 4, generator=g)


def test_the_zoo_holds_every_architecture_of_the_issue():
    expected = {"single_task", "shared_bottom", "omoe", "mmoe", "cgc", "ple", "esmm", "aitm"}
    assert expected | {"cross_stitch", "sparse_mmoe"} <= set(available())


def test_omoe_shares_one_gate_between_all_tasks():
    model = create("omoe", SCHEMA, n_experts=5)
    model(*_inputs())
    gates = model.gate_weights()
    assert set(gates) == set(SCHEMA.task_names)
    assert gates["t0"].shape == (32, 5)
    assert torch.equal(gates["t0"], gates["t1"]) and torch.equal(gates["t0"], gates["t2"])


def _perturbed_output(model, params, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    before = model(*_inputs())[task]
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p))
    return before, model(*_inputs())[task]


def test_cgc_task_never_reads_another_tasks_own_experts():
    torch.manual_seed(0)
    model = create("cgc", SCHEMA, n_task_experts=2, n_shared_experts=3)
    model(*_inputs())
    assert model.gate_weights()["t0"].shape == (32, 2 + 3)
    before, after = _perturbed_output(model, model.levels[0].task_experts[1].parameters(), "t0")
    torch.testing.assert_close(before, after)
    before, after = _perturbed_output(model, model.levels[0].shared_experts.parameters(), "t0")
    assert not torch.allclose(before, after)


def test_ple_levels_pass_information_between_tasks_through_shared_gates():
    torch.manual_seed(0)
    model = create("ple", SCHEMA, n_levels=3, n_task_experts=2, n_shared_experts=1)
    model(*_inputs())
    levels = model.level_gates()
    assert len(levels) == 3
    # Levels below the top have a shared gate over all 3 * 2 + 1 experts; the top has none.
    assert levels[0]["shared"].shape == (32, 7) and levels[1]["shared"].shape == (32, 7)
    assert set(levels[2]) == set(SCHEMA.task_names)
    assert all(level["t1"].shape == (32, 3) for level in levels)
    torch.testing.assert_close(model.gate_weights()["t1"], levels[2]["t1"])
    # Unlike CGC, task 0 feels task 1's first-level experts (via the shared gate).
    before, after = _perturbed_output(model, model.levels[0].task_experts[1].parameters(), "t0")
    assert not torch.allclose(before, after)


def test_ple_with_one_level_is_cgc():
    torch.manual_seed(0)
    cgc = create("cgc", SCHEMA)
    torch.manual_seed(0)
    ple = create("ple", SCHEMA, n_levels=1)
    ple.load_state_dict(cgc.state_dict())
    torch.testing.assert_close(cgc.eval()(*_inputs()), ple.eval()(*_inputs()))


def test_cross_stitch_units_start_near_identity_and_control_sharing():
    torch.manual_seed(0)
    model = create("cross_stitch", SCHEMA, hidden=(8, 6), stitch_self_weight=0.8)
    alpha = model.stitches[0].alpha
    torch.testing.assert_close(alpha.diagonal(), torch.full((3,), 0.8))
    torch.testing.assert_close(alpha.sum(1), torch.ones(3))
    # Identity stitches cut the columns apart: task 0 no longer reads column 1.
    with torch.no_grad():
        for stitch in model.stitches:
            stitch.alpha.copy_(torch.eye(3))
    col1 = [layer.weights[0][1] for layer in model.layers]
    before, after = _perturbed_output(model, col1, "t0")
    torch.testing.assert_close(before, after)
    with torch.no_grad():
        model.stitches[1].alpha.fill_(1 / 3)
    before, after = _perturbed_output(model, col1, "t0")
    assert not torch.allclose(before, after)


def test_top_k_gate_keeps_exactly_k_experts_and_noise_only_while_training():
    torch.manual_seed(0)
    gate = Gate(6, 8, top_k=3, noise=True)
    x = torch.randn(50, 6)
    gate.eval()
    weights = gate(x)
    assert torch.equal((weights > 0).sum(1), torch.full((50,), 3))
    torch.testing.assert_close(weights.sum(1), torch.ones(50))
    torch.testing.assert_close(gate(x), weights)  # no noise in evaluation
    gate.train()
    assert not torch.allclose(gate(x), gate(x))


def test_importance_loss_is_zero_for_balanced_experts_and_grows_with_imbalance():
    assert importance_loss(torch.full((10, 4), 0.25)).item() == pytest.approx(0.0)
    skewed = torch.tensor([[0.7, 0.1, 0.1, 0.1]]).repeat(10, 1)
    one = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(10, 1)
    assert 0 < importance_loss(skewed) < importance_loss(one)


def test_sparse_mmoe_gates_are_sparse_and_its_balance_loss_is_returned():
    torch.manual_seed(0)
    model = create("sparse_mmoe", SCHEMA, n_experts=6, top_k=2, balance_weight=0.5)
    model.eval()
    model(*_inputs())
    for gate in model.gate_weights().values():
        assert torch.equal((gate > 0).sum(1), torch.full((32,), 2))
    model.train()
    model(*_inputs())
    expected = 0.5 * sum(importance_loss(g) for g in model.gate_weights().values())
    torch.testing.assert_close(model.auxiliary_loss().detach(), expected)
    assert create("mmoe", SCHEMA).auxiliary_loss() is None


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("omoe", {"n_experts": 0}, "n_experts"),
        ("cgc", {"n_shared_experts": 0}, "n_shared_experts"),
        ("cgc", {"n_task_experts": -1}, "n_task_experts"),
        ("ple", {"n_levels": 0}, "n_levels"),
        ("ple", {"expert_hidden": []}, "expert_hidden"),
        ("cross_stitch", {"stitch_self_weight": 1.5}, "stitch_self_weight"),
        ("cross_stitch", {"hidden": []}, "hidden"),
        ("sparse_mmoe", {"n_experts": 4, "top_k": 5}, "top_k"),
        ("sparse_mmoe", {"balance_weight": -1}, "balance_weight"),
        ("cgc", {"n_levels": 2}, "has no setting"),
    ],
)
def test_invalid_hyperparameters_are_rejected_clearly(name, params, fragment):
    with pytest.raises(ConfigError, match=fragment):
        create(name, SCHEMA, **params)
