"""TAG's lookahead affinity against the reference implementation's formula, in NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mtlkit.affinity.lookahead import Probed, lookahead_affinity, train_and_probe
from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.data.tensors import Batch, TensorData
from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel


class LinearShared(MTLModel):
    """``h = W x`` shared, task k's output ``a_k . h`` (regression, squared error): every
    quantity of TAG's lookahead has a closed form."""

    def __init__(self, w: np.ndarray, heads: np.ndarray) -> None:
        tasks = tuple(TaskSpec(f"t{k}", "regression", 1) for k in range(len(heads)))
        super().__init__(
            Schema((), w.shape[1], tasks),
            embedding_dim=1,
            activation="relu",
            dropout=0.0,
            norm=None,
        )
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))
        self.heads = nn.ModuleDict({t.name: nn.Linear(w.shape[0], 1, bias=False) for t in tasks})
        with torch.no_grad():
            for t, a in zip(tasks, heads):
                self.heads[t.name].weight.copy_(torch.tensor(a[None, :]))
        self.double()

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.heads[task]]

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        h = x_num @ self.w.T
        return {t: self.heads[t](h).squeeze(-1) for t in self.task_names}


def reference_affinity(w, heads, x, y, lr):
    """The reference implementation's TAG step (google-research/tag, CelebA, first step):
    ``shared' = shared - lr * grad L_i``, ``gain_j = (1 - L_j(shared') / L_j(shared)) / lr``,
    written out in NumPy for a linear shared layer and squared-error losses."""
    n_tasks = len(heads)

    def losses(weights):
        return np.array(
            [np.mean((x @ weights.T @ heads[k] - y[:, k]) ** 2) for k in range(n_tasks)]
        )

    before = losses(w)
    z = np.zeros((n_tasks, n_tasks))
    grads = []
    for i in range(n_tasks):
        residual = x @ w.T @ heads[i] - y[:, i]
        grad = 2.0 / len(x) * np.outer(heads[i], residual @ x)  # d L_i / d W
        grads.append(grad.ravel())
        z[i] = (1.0 - losses(w - lr * grad) / before) / lr
    g = np.array(grads)
    unit = g / np.linalg.norm(g, axis=1, keepdims=True)
    return z, unit @ unit.T


@pytest.fixture
def linear_case():
    rng = np.random.default_rng(0)
    w, heads = rng.normal(size=(4, 5)), rng.normal(size=(3, 4))
    x, y = rng.normal(size=(64, 5)), rng.normal(size=(64, 3))
    batch = Batch(
        torch.zeros((64, 0), dtype=torch.long),
        torch.tensor(x),
        torch.tensor(y),
        torch.ones((64, 3), dtype=torch.bool),
    )
    return w, heads, x, y, batch


def test_lookahead_matches_the_reference_formula(linear_case):
    w, heads, x, y, batch = linear_case
    model = LinearShared(w, heads)
    lr = 0.01
    expected_z, expected_cos = reference_affinity(w, heads, x, y, lr)
    z, cosine = lookahead_affinity(model, batch, lr)
    np.testing.assert_allclose(z, expected_z, rtol=1e-6)
    np.testing.assert_allclose(cosine, expected_cos, rtol=1e-6)
    assert not np.allclose(z, z.T)  # TAG's affinity is not symmetric
    # the model's weights are restored exactly
    np.testing.assert_array_equal(model.w.detach().numpy(), w)


def test_small_step_affinity_is_the_gradient_inner_product(linear_case):
    """First order: ``Z_{i->j} / lr -> g_i . g_j / L_j`` as the step shrinks."""
    w, heads, x, y, batch = linear_case
    z, _ = lookahead_affinity(LinearShared(w, heads), batch, 1e-7)
    model = LinearShared(w, heads)
    out = model(batch.x_cat, batch.x_num)
    losses = [((out[f"t{k}"] - batch.y[:, k]) ** 2).mean() for k in range(3)]
    grads = torch.stack(
        [torch.autograd.grad(loss, model.w, retain_graph=True)[0].ravel() for loss in losses]
    )
    first_order = (grads @ grads.T).numpy() / np.array([v.item() for v in losses])[None, :]
    np.testing.assert_allclose(z, first_order, rtol=1e-4)


def test_unlabelled_task_gives_nan_row_and_column(linear_case):
    w, heads, _, _, batch = linear_case
    batch.mask[:, 2] = False
    z, cosine = lookahead_affinity(LinearShared(w, heads), batch, 0.01)
    assert np.isnan(z[2]).all() and np.isnan(z[:, 2]).all() and np.isnan(cosine[2]).all()
    assert np.isfinite(z[:2, :2]).all()


def test_model_without_shared_parameters_is_refused(linear_case):
    w, heads, _, _, batch = linear_case
    model = LinearShared(w, heads)
    model.w.requires_grad_(False)
    with pytest.raises(ConfigError, match="shares no parameters"):
        lookahead_affinity(model, batch, 0.01)


def test_train_and_probe_probes_evenly_and_trains(linear_case):
    w, heads, x, y, _ = linear_case
    model = LinearShared(w, heads)
    data = TensorData(
        torch.zeros((64, 0), dtype=torch.long),
        torch.tensor(x),
        torch.tensor(y),
        torch.ones((64, 3), dtype=torch.bool),
    )
    epochs = []
    probed = train_and_probe(
        model,
        data,
        epochs=2,
        batch_size=8,
        lr=0.01,
        probes_per_epoch=3,
        seed=0,
        on_epoch=lambda: epochs.append(1),
    )
    assert len(probed.affinity) == len(probed.cosine) == 6 and len(epochs) == 2
    assert not np.allclose(model.w.detach().numpy(), w)  # the shared layer was trained
    mean = Probed.mean([np.array([[1.0, math.nan]]), np.array([[3.0, math.nan]])])
    assert mean[0, 0] == 2.0 and math.isnan(mean[0, 1])
