"""single_task computes every task's network in batched tensors; it must stay exactly one
independent network per task: the same weights and outputs as a network per task, no
gradient from one task's loss to another task's part, and model folders saved when it held
a module per task (mtlkit 6c82c21) load and predict as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mtlkit import MultiTaskEstimator
from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models import create
from mtlkit.models.blocks import InputEncoder, Tower
from mtlkit.training.losses import masked_task_losses

FIXTURES = Path(__file__).parent / "fixtures"
TASKS = (
    TaskSpec("t0", "binary"),
    TaskSpec("t1", "multiclass", 4, (0, 1, 2, 3)),
    TaskSpec("t2", "regression", 1),
)


class PerTaskNetworks(nn.Module):
    """single_task as a loop over one InputEncoder and one Tower per task (mtlkit's layout up
    to 6c82c21), drawn in the same order from the same seed."""

    def __init__(self, schema: Schema, hidden, embedding_dim: int, **block) -> None:
        super().__init__()
        self.task_names = schema.task_names
        InputEncoder(schema, embedding_dim)  # the model base class's encoder, drawn and unused
        self.encoders = nn.ModuleDict(
            {t: InputEncoder(schema, embedding_dim) for t in self.task_names}
        )
        in_dim = self.encoders[self.task_names[0]].output_dim
        self.towers = nn.ModuleDict(
            {t.name: Tower(in_dim, hidden, t.output_dim, **block) for t in schema.tasks}
        )

    def forward(self, x_cat, x_num):
        return {t: self.towers[t](self.encoders[t](x_cat, x_num)) for t in self.task_names}


def _pair(cards, norm, seed=0):
    schema = Schema(cards, 3, TASKS)
    block = {"activation": "relu", "dropout": 0.0, "norm": norm}
    torch.manual_seed(seed)
    model = create("single_task", schema, hidden=(6, 5), embedding_dim=4, norm=norm)
    torch.manual_seed(seed)
    reference = PerTaskNetworks(schema, (6, 5), 4, **block)
    return schema, model, reference


def _inputs(schema: Schema, n: int = 40):
    x_cat = torch.stack([torch.randint(0, c, (n,)) for c in schema.cat_cardinalities], 1)
    return x_cat.reshape(n, len(schema.cat_cardinalities)), torch.randn(n, schema.n_numeric)


@pytest.mark.parametrize("cards", [(5, 3), ()])
@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_initial_weights_are_those_of_a_network_per_task(cards, norm):
    """Same seed, same weights as separate per-task modules (seeded, drawn task by task)."""
    _, model, reference = _pair(cards, norm)
    upgraded = model.upgrade_state_dict(reference.state_dict())
    assert set(upgraded) == set(model.state_dict())
    for name, value in model.state_dict().items():
        torch.testing.assert_close(upgraded[name], value, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_outputs_and_gradients_equal_a_loop_over_per_task_networks(norm):
    schema, model, reference = _pair((5, 3), norm)
    with torch.no_grad():  # every weight different, norms' scales included
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model.load_state_dict(model.upgrade_state_dict(reference.state_dict()))
    x_cat, x_num = _inputs(schema)
    y = torch.stack([torch.randint(0, 2, (40,)), torch.randint(0, 4, (40,)), torch.randn(40)], 1)
    mask = torch.ones(40, 3, dtype=torch.bool)
    for train in (True, False):
        model.train(train)
        reference.train(train)
        got, want = model(x_cat, x_num), reference(x_cat, x_num)
        for t in schema.task_names:
            assert got[t].shape == want[t].shape
            torch.testing.assert_close(got[t], want[t])
    # one training step's gradients, mapped back to the per-task layout, are the loop's
    model.zero_grad()
    reference.zero_grad()
    model.train()
    reference.train()
    masked_task_losses(schema.tasks, model(x_cat, x_num), y, mask).sum().backward()
    masked_task_losses(schema.tasks, reference(x_cat, x_num), y, mask).sum().backward()
    grads = model.upgrade_state_dict({k: p.grad for k, p in reference.named_parameters()})
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], msg=name)


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_one_task_s_loss_never_reaches_another_task_s_part(norm):
    schema, model, _ = _pair((5, 3), norm)
    x_cat, x_num = _inputs(schema)
    y = torch.stack([torch.randint(0, 2, (40,)), torch.randint(0, 4, (40,)), torch.randn(40)], 1)
    losses = masked_task_losses(
        schema.tasks, model(x_cat, x_num), y, torch.ones(40, 3, dtype=torch.bool)
    )
    params = list(model.parameters())
    for a, task_a in enumerate(schema.task_names):
        grads = dict(
            zip(map(id, params), torch.autograd.grad(losses[a], params, retain_graph=True))
        )
        for task_b in schema.task_names:
            for p, index in model.task_slices(task_b):
                part = grads[id(p)][index]
                if task_b == task_a:
                    assert part.abs().sum() > 0, (task_a, p.shape)
                else:
                    assert part.abs().sum() == 0, (task_a, task_b, p.shape)
    # the parts cover every weight but the output padding (never trained)
    covered = {id(p): torch.zeros_like(p, dtype=torch.bool) for p in params}
    for t in schema.task_names:
        for p, index in model.task_slices(t):
            assert not covered[id(p)][index].any(), "two tasks own the same weight"
            covered[id(p)][index] = True
    for name, p in model.named_parameters():
        if not name.startswith("out_"):
            assert covered[id(p)].all(), name
    assert model.shared_parameters() == []


def test_a_model_folder_saved_by_6c82c21_loads_and_predicts_as_before(tmp_path):
    """single_task_v0 was saved by mtlkit 6c82c21 (fixtures/make_single_task_v0.py): an
    InputEncoder and a Tower with batch norms per task, a binary, a 3-class and a
    regression task."""
    folder = shutil.copytree(FIXTURES / "single_task_v0", tmp_path / "model")
    est = MultiTaskEstimator.load(folder)
    proba = est.predict_proba(FIXTURES / "single_task_v0_rows.csv")
    expected = json.loads((FIXTURES / "single_task_v0_expected.json").read_text())
    for task, values in expected.items():
        np.testing.assert_allclose(np.asarray(proba[task]), values, rtol=1e-5, atol=1e-6)
    # saved again, it keeps today's layout and the same predictions
    again = MultiTaskEstimator.load(est.save(tmp_path / "again"))
    assert "encoder.embedding.weight" in again.model_.state_dict()
    for task, values in expected.items():
        np.testing.assert_allclose(
            np.asarray(again.predict_proba(FIXTURES / "single_task_v0_rows.csv")[task]),
            values,
            rtol=1e-5,
            atol=1e-6,
        )
