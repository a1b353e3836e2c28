"""MMoE computed from one product of its input (every expert's first layer and every gate,
``blocks.experts_and_gates``) is Ma et al.'s model: the same outputs, gradients, gate
weights and balancing loss as a loop over its experts and gates with the same weights."""

import pytest
import torch
from expert_loops import one_expert, one_gate, random_inputs, weighted_loss, weighted_sum

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models import create
from mtlkit.models.blocks import importance_loss

SCHEMA = Schema((5, 3, 7), 4, tuple(TaskSpec(f"t{i}", "binary") for i in range(3)))


def loop_mmoe(model, x_cat, x_num) -> tuple[dict, dict]:
    """Ma et al. 2018, one expert and one gate at a time: each task's gate (or the one
    shared gate) mixes the experts, and the task's tower reads the mixture."""
    x = model.encoder(x_cat, x_num)
    experts = [one_expert(model.experts, e, x) for e in range(model.experts.n)]
    gates = {name: one_gate(gate, x) for name, gate in model.gates.items()}
    per_task = {t: gates["shared" if model.shared_gate else t] for t in model.task_names}
    outputs = {t: model.towers[t](weighted_sum(per_task[t], experts)) for t in model.task_names}
    return outputs, gates


CONFIGS = [
    ("mmoe", {"n_experts": 3, "expert_hidden": (6, 5)}),
    ("omoe", {"n_experts": 4}),
    ("sparse_mmoe", {"n_experts": 5, "top_k": 2, "balance_weight": 0.1}),
]


@pytest.mark.parametrize(("name", "hparams"), CONFIGS)
def test_mmoe_matches_a_per_expert_and_per_gate_loop(name, hparams):
    torch.manual_seed(0)
    # eval(): sparse_mmoe's gate noise is drawn only while training
    model = create(name, SCHEMA, **hparams).double().eval()
    x_cat, x_num = random_inputs(SCHEMA, 24)
    out = model(x_cat, x_num)
    expected, gates = loop_mmoe(model, x_cat, x_num)
    for task in model.task_names:
        torch.testing.assert_close(out[task], expected[task], rtol=1e-6, atol=1e-6)
    for task, weights in model.gate_weights().items():
        want = gates["shared" if model.shared_gate else task]
        torch.testing.assert_close(weights, want.detach(), rtol=1e-6, atol=1e-6)
    got_loss, want_loss = weighted_loss(out), weighted_loss(expected)
    if model.balance_weight:
        got_loss = got_loss + model.auxiliary_loss()
        want_loss = want_loss + model.balance_weight * sum(map(importance_loss, gates.values()))
    names, params = zip(*model.named_parameters())
    grads = torch.autograd.grad(got_loss, params, allow_unused=True)
    expected_grads = torch.autograd.grad(want_loss, params, allow_unused=True)
    for param_name, g, e in zip(names, grads, expected_grads):
        if e is None:  # sparse_mmoe's noise scale: no gradient in eval mode
            assert g is None or not g.any(), param_name
            continue
        assert g.abs().sum() > 0, param_name
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6, msg=param_name)


def test_noisy_gates_draw_their_noise_while_training_only():
    """sparse_mmoe's gates add noise to the logits of the shared product while training
    (two forwards of one batch weigh the experts differently), and none in eval mode."""
    torch.manual_seed(0)
    model = create("sparse_mmoe", SCHEMA, n_experts=4, top_k=4)
    x_cat, x_num = random_inputs(SCHEMA, 16)

    def weights() -> torch.Tensor:
        model(x_cat, x_num.float())
        return model.gate_weights()["t0"]

    model.train()
    assert not torch.allclose(weights(), weights())
    model.eval()
    torch.testing.assert_close(weights(), weights(), rtol=0, atol=0)
