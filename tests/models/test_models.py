"""Properties every model of the zoo must have."""

import pytest
import torch

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.models import available, create
from mtlkit.training.losses import masked_task_losses


def _schema(n_tasks: int) -> Schema:
    kinds = [TaskSpec(f"t{i}", "binary") for i in range(n_tasks)]
    if n_tasks >= 3:
        kinds[2] = TaskSpec("t2", "multiclass", 4, (0, 1, 2, 3))
        kinds[-1] = TaskSpec(f"t{n_tasks - 1}", "regression", 1)
    return Schema((5, 3), 4, tuple(kinds))


def _inputs(n: int = 16):
    return torch.randint(0, 3, (n, 2)), torch.randn(n, 4)


def _general_models() -> list[str]:
    """Models that accept any number and kind of tasks."""
    return [n for n in available() if getattr(_cls(n), "task_roles", None) is None]


def _cls(name):
    from mtlkit.models import MODELS

    return MODELS.entry(name).target


@pytest.mark.parametrize("name", _general_models())
@pytest.mark.parametrize("n_tasks", [2, 3, 5])
def test_output_shapes(name, n_tasks):
    schema = _schema(n_tasks)
    out = create(name, schema)(*_inputs(16))
    assert list(out) == schema.task_names
    for spec in schema.tasks:
        expected = (16, spec.n_classes) if spec.kind == "multiclass" else (16,)
        assert out[spec.name].shape == expected


def _three_task_losses(name: str):
    """A model on a binary, a 4-class and a regression task, and its (3,) losses on a batch."""
    torch.manual_seed(0)
    schema = _schema(3)
    model = create(name, schema)
    x_cat, x_num = _inputs(64)
    y = torch.stack([torch.randint(0, 2, (64,)), torch.randint(0, 4, (64,)), torch.randn(64)], 1)
    losses = masked_task_losses(
        schema.tasks, model(x_cat, x_num), y.float(), torch.ones(64, 3).bool()
    )
    return schema, model, losses


@pytest.mark.parametrize("name", _general_models())
def test_gradients_reach_every_parameter(name):
    schema, model, losses = _three_task_losses(name)
    losses.sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", _general_models())
def test_gate_weights_are_distributions(name):
    model = create(name, _schema(2))
    model(*_inputs(8))
    for gate in model.gate_weights().values():
        assert torch.all(gate >= 0)
        torch.testing.assert_close(gate.sum(-1), torch.ones(gate.shape[0]))


def test_mmoe_has_gates_and_single_task_shares_nothing():
    schema = _schema(2)
    mmoe = create("mmoe", schema)
    mmoe(*_inputs(4))
    assert set(mmoe.gate_weights()) == {"t0", "t1"}
    assert create("single_task", schema).shared_parameters() == []
    assert len(create("shared_bottom", schema).shared_parameters()) > 0


@pytest.mark.parametrize("name", _general_models())
def test_task_modules_learn_only_from_their_own_task(name):
    """What a model calls task-specific gets no gradient from the other tasks' losses (the
    split between shared and task parameters that gradient-balancing strategies rely on)."""
    schema, model, losses = _three_task_losses(name)
    for k, task in enumerate(schema.task_names):
        own = model.task_parameters(task)
        slices = model.task_slices(task)
        assert own or slices, f"{name} lists no parameters of its own for {task}"
        others = losses.sum() - losses[k]
        inputs = own + [p for p, _ in slices]
        grads = torch.autograd.grad(others, inputs, retain_graph=True, allow_unused=True)
        assert all(g is None or g.abs().sum() == 0 for g in grads[: len(own)]), task
        for g, (_, index) in zip(grads[len(own) :], slices):
            assert g is None or g[index].abs().sum() == 0, task
