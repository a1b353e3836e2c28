"""Large embedding tables train with sparse gradients (SparseAdam) where that is safe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.data.tensors import TensorData
from mtlkit.models import create
from mtlkit.training import optim
from mtlkit.training.settings import TrainConfig
from mtlkit.training.trainer import Trainer

ROWS = optim.SPARSE_MIN_ROWS
TASKS = (TaskSpec("a", "binary", 2), TaskSpec("b", "binary", 2))


def data(n: int = 400, seed: int = 0) -> TensorData:
    """Rows whose ``user`` ids (the large column) are the first 100 of the table."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 100, n)
    x_cat = torch.tensor(np.stack([users, rng.integers(0, 3, n)], 1))
    x_num = torch.tensor(rng.normal(size=(n, 2)).astype(np.float32))
    y = torch.tensor((rng.random((n, 2)) < 0.5).astype(np.float32))
    return TensorData(x_cat, x_num, y, torch.ones(n, 2, dtype=torch.bool))


def fit(cards=(ROWS, 3), strategy="joint", state=None, model="mmoe", **settings):
    torch.manual_seed(0)
    hyper = {"n_experts": 2, "expert_hidden": [8]} if model == "mmoe" else {}
    model = create(model, Schema(cards, 2, TASKS), **hyper)
    config = {"epochs": 2, "progress": False, "batch_size": 64, "sparse_embeddings": True}
    config.update(settings)
    trainer = Trainer(model, TrainConfig(**config), strategy)
    train = data()
    trainer.fit(train, data(100, 1), state=state)
    return model, trainer


def create_table() -> torch.Tensor:
    """The table's initial weights in :func:`fit`."""
    torch.manual_seed(0)
    model = create("mmoe", Schema((ROWS, 3), 2, TASKS), n_experts=2, expert_hidden=[8])
    return model.encoder.embedding.weight.detach()


def test_a_large_table_gets_sparse_gradients_and_sparse_adam():
    model, trainer = fit(diagnostic_batches=2)  # conflict probes run on the other parameters
    assert model.encoder.sparse_gradients
    assert set(trainer.training_state()["optimizer"]) == {"dense", "sparse"}
    before, after = create_table(), model.encoder.embedding.weight.detach()
    assert not torch.equal(before[:100], after[:100])  # the rows looked up were trained
    assert torch.equal(before[100:ROWS], after[100:ROWS])  # the others untouched
    assert np.isfinite(trainer.history.epochs[-1].diagnostics.grad_cosine)


def test_every_task_network_of_the_single_task_baseline_gets_sparse_tables():
    """single_task's tables are copies in one (one per task): that table is sparse."""
    model, trainer = fit(model="single_task", epochs=1, diagnostic_batches=1)
    assert model.encoder.copies == 2 and model.encoder.sparse_gradients
    assert len(trainer.training_state()["optimizer"]["sparse"]["param_groups"][0]["params"]) == 1


def test_sparse_gradients_are_off_by_default():
    assert TrainConfig().sparse_embeddings is False


@pytest.mark.parametrize(
    ("cards", "strategy", "settings"),
    [
        ((ROWS - 4, 3), "joint", {}),  # a table under the threshold
        ((ROWS, 3), "pcgrad", {}),  # a strategy working on the shared gradients
        ((ROWS, 3), "gradnorm", {}),
        ((ROWS, 3), "joint", {"grad_clip": 1.0}),
        ((ROWS, 3), "joint", {"sparse_embeddings": False}),  # the default: opt-in only
    ],
)
def test_tables_stay_dense_where_sparse_gradients_do_not_apply(cards, strategy, settings):
    model, trainer = fit(cards, strategy, epochs=1, diagnostic_batches=0, **settings)
    assert not model.encoder.sparse_gradients
    assert set(trainer.training_state()["optimizer"]) == {"state", "param_groups"}


def test_one_sparse_step_equals_one_dense_adam_step(monkeypatch):
    """On the first step lazy Adam (SparseAdam) and Adam agree: untouched rows have zero
    moments either way. (A first Adam step moves each weight by about lr * sign(gradient): an
    entry whose gradient is ~0 may go either way with the summation order, hence the 1%.)"""
    settings = {"epochs": 1, "batch_size": 400, "diagnostic_batches": 0}
    sparse, _ = fit(**settings)
    monkeypatch.setattr(optim, "SPARSE_MIN_ROWS", 1 << 40)
    dense, _ = fit(**settings)
    assert not dense.encoder.sparse_gradients
    for (name, a), b in zip(sparse.state_dict().items(), dense.state_dict().values()):
        if name == "encoder.embedding.weight":
            assert ((a - b).abs() > 1e-6).float().mean() < 0.01
            assert not torch.equal(a[:100], create_table()[:100])  # both trained the rows
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)


def test_a_sparse_fit_continues_from_its_training_state():
    whole, _ = fit(epochs=2, diagnostic_batches=0, patience=0)
    _, first = fit(epochs=1, diagnostic_batches=0, patience=0)
    continued, _ = fit(epochs=2, diagnostic_batches=0, patience=0, state=first.training_state())
    for (name, a), b in zip(whole.state_dict().items(), continued.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
