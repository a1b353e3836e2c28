"""PLE/CGC computed as one stack of batched matmuls (``ExtractionLayer``) is the paper's
model: the same outputs, gradients and gate weights as a plain loop over experts and gates
with the same weights, with norms and dropout too, and models saved before still load."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from expert_loops import one_expert, one_gate, random_inputs, weighted_loss, weighted_sum

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models import create
from mtlkit.models.blocks import mix_experts
from mtlkit.training.estimator import MultiTaskEstimator

SCHEMA = Schema((5, 3, 7), 4, tuple(TaskSpec(f"t{i}", "binary") for i in range(3)))
FIXTURES = Path(__file__).parents[1] / "training" / "fixtures"


def loop_ple(model, x_cat, x_num) -> tuple[dict, list[list[torch.Tensor]]]:
    """Tang et al. 2020, one expert and one gate at a time: task t's gate mixes its own
    experts and the shared ones; the shared gate mixes all experts into the next level's
    shared input. Returns the task outputs and every level's gate weights."""
    n_tasks = len(model.task_names)
    inputs = [model.encoder(x_cat, x_num)] * (n_tasks + 1)
    gates_per_level = []
    for level in model.levels:
        own = [
            [one_expert(mlp, e, inputs[t]) for e in range(mlp.n)]
            for t, mlp in enumerate(level.task_experts)
        ]
        shared = [
            one_expert(level.shared_experts, e, inputs[-1]) for e in range(level.shared_experts.n)
        ]
        gates = [one_gate(gate, inputs[t]) for t, gate in enumerate(level.task_gates)]
        outs = [weighted_sum(gates[t], own[t] + shared) for t in range(n_tasks)]
        if level.shared_gate is not None:
            gates.append(one_gate(level.shared_gate, inputs[-1]))
            outs.append(weighted_sum(gates[-1], [e for task in own for e in task] + shared))
        gates_per_level.append(gates)
        inputs = outs
    return {t: model.towers[t](inputs[k]) for k, t in enumerate(model.task_names)}, gates_per_level


CONFIGS = [
    ("cgc", {"n_task_experts": 2, "n_shared_experts": 3}),
    ("ple", {"n_levels": 2, "n_task_experts": 2, "n_shared_experts": 2}),
    ("ple", {"n_levels": 3, "n_task_experts": 1, "n_shared_experts": 2, "expert_hidden": (6, 5)}),
]


@pytest.mark.parametrize(("name", "hparams"), CONFIGS)
def test_extraction_layers_match_a_per_expert_loop(name, hparams):
    torch.manual_seed(0)
    model = create(name, SCHEMA, **hparams).double()
    x_cat, x_num = random_inputs(SCHEMA, 24)
    out = model(x_cat, x_num)
    expected, expected_gates = loop_ple(model, x_cat, x_num)
    for task in model.task_names:
        torch.testing.assert_close(out[task], expected[task], rtol=1e-6, atol=1e-6)
    names, params = zip(*model.named_parameters())
    grads = torch.autograd.grad(weighted_loss(out), params)
    expected_grads = torch.autograd.grad(weighted_loss(expected), params)
    for name, g, e in zip(names, grads, expected_grads):
        assert g.abs().sum() > 0, name
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6, msg=name)
    gate_names = [*model.task_names, "shared"]
    for level, gates in zip(model.level_gates(), expected_gates):
        assert list(level) == gate_names[: len(gates)]
        for got, want in zip(level.values(), gates):
            torch.testing.assert_close(got, want.detach(), rtol=1e-6, atol=1e-6)
    assert model.gate_weights().keys() == set(model.task_names)


def test_the_first_level_folded_while_training_matches_the_loop():
    """Embeddings of 8 and a batch of 512: the one product of the first level (every
    expert's first layer and every gate, 6 x 64 + 3 x 4 + 6 wide) folds the embeddings."""
    schema = Schema((40, 7, 25), 3, tuple(TaskSpec(f"t{i}", "binary") for i in range(3)))
    torch.manual_seed(0)
    model = create(
        "ple", schema, embedding_dim=8, n_task_experts=1, n_shared_experts=3, expert_hidden=(64,)
    ).double()
    x_cat, x_num = random_inputs(schema, 512)
    folds = []
    encoded = model.encoder.encode(x_cat, x_num)
    original = type(encoded).folded_linear

    def recording(self, weight, bias, layer):
        out = original(self, weight, bias, layer)
        folds.append((weight.shape[1], out is not None))
        return out

    type(encoded).folded_linear = recording
    try:
        out = model(x_cat, x_num)
    finally:
        type(encoded).folded_linear = original
    assert folds == [(6 * 64 + 3 * 4 + 6, True)]
    expected, _ = loop_ple(model, x_cat, x_num)
    params = list(model.parameters())
    grads = torch.autograd.grad(weighted_loss(out), params)
    for g, e in zip(grads, torch.autograd.grad(weighted_loss(expected), params)):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6)


def _per_group(level, x):
    """One level as a loop over its groups' own modules (BatchedMLP, Gate)."""
    n_tasks = len(level.task_experts)
    inputs = [x] * (n_tasks + 1) if x.dim() == 2 else list(x)
    shared = level.shared_experts(inputs[-1])
    own = [experts(inputs[t]) for t, experts in enumerate(level.task_experts)]
    outs = [
        mix_experts(torch.cat([own[t], shared]), gate(inputs[t]))
        for t, gate in enumerate(level.task_gates)
    ]
    if level.shared_gate is not None:
        outs.append(mix_experts(torch.cat([*own, shared]), level.shared_gate(inputs[-1])))
    return torch.stack(outs)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norms_apply_to_each_group_of_experts_as_in_a_loop_over_groups(norm):
    torch.manual_seed(0)
    model = create("ple", SCHEMA, n_levels=2, expert_hidden=(6, 5), norm=norm).double()
    with torch.no_grad():  # norms away from their identity initialisation
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    x = model.encoder(*random_inputs(SCHEMA, 24))
    for level in model.levels:  # training mode: batch statistics
        got, want = level(x), _per_group(level, x)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
        params = list(level.parameters())
        for g, e in zip(
            torch.autograd.grad(got.square().sum(), params, retain_graph=True),
            torch.autograd.grad(want.square().sum(), params, retain_graph=True),
        ):
            torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6)
        x = got


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = create("ple", SCHEMA, dropout=0.5).double()
    x_cat, x_num = random_inputs(SCHEMA, 24)
    first, second = model(x_cat, x_num)["t0"], model(x_cat, x_num)["t0"]
    assert not torch.allclose(first, second)
    model.eval()
    expected, _ = loop_ple(model, x_cat, x_num)
    torch.testing.assert_close(model(x_cat, x_num)["t0"], expected["t0"])


def test_a_ple_saved_by_the_per_group_implementation_predicts_the_same(tmp_path):
    """ple_v0 was saved by mtlkit 6c82c21 (one matmul per group of experts and per gate):
    same state_dict keys, and the same probabilities it predicted then."""
    folder = shutil.copytree(FIXTURES / "ple_v0", tmp_path / "model")
    est = MultiTaskEstimator.load(folder)
    proba = est.predict_proba(FIXTURES / "model_v0_rows.csv")
    expected = {  # what 6c82c21 predicted for the first 5 rows
        "y": [0.543195903301239, 0.5461947321891785, 0.5468981862068176, 0.5438490509986877],
        "z": [0.6249211430549622, 0.6249768137931824, 0.6249409914016724, 0.6249532699584961],
    }
    for task, scores in expected.items():
        np.testing.assert_allclose(proba[task][:4], scores, rtol=1e-6)
