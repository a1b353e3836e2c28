"""ESMM and AITM: models for sequential (funnel) tasks given in a fixed order."""

import pytest
import torch

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.data.tensors import TensorData
from mtlkit.errors import ConfigError
from mtlkit.models import create
from mtlkit.models.aitm import calibrator_penalty
from mtlkit.training.losses import masked_task_losses
from mtlkit.training.settings import TrainConfig
from mtlkit.training.trainer import Trainer


def _funnel_schema(n_tasks: int) -> Schema:
    steps = ["click", "conversion", "repurchase", "review", "referral"][:n_tasks]
    return Schema((5, 3), 4, tuple(TaskSpec(s, "binary") for s in steps))


def _inputs(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (n, 2), generator=g), torch.randn(n, 4, generator=g)


# ---- ESMM ------------------------------------------------------------------------------


def test_esmm_ctcvr_is_exactly_ctr_times_cvr_and_both_are_probabilities():
    torch.manual_seed(0)
    model = create("esmm", _funnel_schema(2))
    out = model(*_inputs())
    assert list(out) == ["click", "conversion"] and model.task_roles == ("ctr", "ctcvr")
    assert model.probability_outputs == {"click", "conversion"}
    assert torch.equal(out["conversion"], out["click"] * model.last_cvr)
    for p in (out["click"], out["conversion"], model.last_cvr):
        assert p.shape == (64,) and torch.all((p >= 0) & (p <= 1))
    cvr = model.predict_cvr(*_inputs())
    assert model.training  # predict_cvr restores the mode
    torch.testing.assert_close(
        cvr, model.eval()(*_inputs())["conversion"] / model(*_inputs())["click"]
    )


def _cvr_tower_grad(model, loss: torch.Tensor) -> torch.Tensor:
    params = list(model.cvr_tower.parameters())
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return sum(g.abs().sum() for g in grads if g is not None)


def test_esmm_trains_cvr_only_through_ctcvr_over_all_impressions():
    torch.manual_seed(0)
    schema = _funnel_schema(2)
    model = create("esmm", schema)
    out = model(*_inputs())
    # No clicks and no conversions: a CVR model trained on clicked rows would see no data.
    y = torch.zeros(64, 2)
    losses = masked_task_losses(
        schema.tasks, out, y, torch.ones(64, 2).bool(), model.probability_outputs
    )
    assert _cvr_tower_grad(model, losses[0]) == 0  # the CTR loss never reaches pCVR
    assert _cvr_tower_grad(model, losses[1]) > 0  # CTCVR on unclicked rows still does
    # The CVR tower is the only module that belongs to one task alone.
    assert model.task_parameters("conversion") == list(model.cvr_tower.parameters())
    assert model.task_parameters("click") == []


def test_esmm_gradients_reach_every_parameter():
    torch.manual_seed(0)
    schema = _funnel_schema(2)
    model = create("esmm", schema)
    y = torch.stack([torch.ones(64), torch.randint(0, 2, (64,)).float()], 1)
    losses = masked_task_losses(
        schema.tasks, model(*_inputs()), y, torch.ones(64, 2).bool(), model.probability_outputs
    )
    losses.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "tasks, fragment",
    [
        ((TaskSpec("click", "binary"),), "exactly 2"),
        (tuple(TaskSpec(f"s{i}", "binary") for i in range(3)), "exactly 2"),
        ((TaskSpec("click", "binary"), TaskSpec("value", "regression", 1)), "value"),
    ],
)
def test_esmm_refuses_tasks_that_are_not_a_click_conversion_pair(tasks, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        create("esmm", Schema((5,), 1, tasks))
    assert "click" in str(err.value) and "conversion" in str(err.value)


# ---- AITM ------------------------------------------------------------------------------


@pytest.mark.parametrize("n_tasks", [2, 3, 5])
def test_aitm_shapes_gradients_and_attention_weights(n_tasks):
    torch.manual_seed(0)
    schema = _funnel_schema(n_tasks)
    model = create("aitm", schema)
    out = model(*_inputs())
    assert list(out) == schema.task_names
    assert all(v.shape == (64,) for v in out.values())
    gates = model.gate_weights()
    assert list(gates) == schema.task_names[1:]  # the first step attends to nothing
    for gate in gates.values():
        assert gate.shape == (64, 2) and torch.all(gate >= 0)
        torch.testing.assert_close(gate.sum(-1), torch.ones(64))
    y = torch.randint(0, 2, (64, n_tasks)).float()
    losses = masked_task_losses(schema.tasks, out, y, torch.ones(64, n_tasks).bool())
    (losses.sum() + model.auxiliary_loss()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_aitm_later_tasks_use_information_from_earlier_ones():
    torch.manual_seed(0)
    model = create("aitm", _funnel_schema(3)).eval()
    before = model(*_inputs())
    with torch.no_grad():
        model.towers.weights[0][0].add_(1.0)  # only the first task's tower changes
    after = model(*_inputs())
    for task in ("click", "conversion", "repurchase"):
        assert not torch.allclose(before[task], after[task]), task


def test_calibrator_penalises_only_a_later_step_likelier_than_the_one_before():
    logit = torch.logit
    ordered = [logit(torch.tensor([0.9, 0.5])), logit(torch.tensor([0.2, 0.5]))]
    assert calibrator_penalty(ordered).item() == pytest.approx(0.0)
    first = logit(torch.tensor([0.2, 0.6, 0.5]))
    second = logit(torch.tensor([0.5, 0.1, 0.5])).requires_grad_()
    third = logit(torch.tensor([0.5, 0.3, 0.7]))
    # Row means of max(p2 - p1, 0) = (0.3, 0, 0)/3 and max(p3 - p2, 0) = (0, 0.2, 0.2)/3.
    penalty = calibrator_penalty([first, second, third])
    assert penalty.item() == pytest.approx(0.3 / 3 + 0.4 / 3)
    (grad,) = torch.autograd.grad(penalty, second)
    assert grad[0] > 0  # lowering p2 where p2 > p1 lowers the penalty...
    assert grad[1] < 0  # ...and raising p2 where p3 > p2 does too
    assert grad[2] < 0


def test_aitm_auxiliary_loss_is_the_weighted_calibrator():
    torch.manual_seed(0)
    model = create("aitm", _funnel_schema(3), calibrator_weight=0.6)
    out = model(*_inputs())
    torch.testing.assert_close(model.auxiliary_loss(), 0.6 * calibrator_penalty(list(out.values())))
    silent = create("aitm", _funnel_schema(3), calibrator_weight=0)
    silent(*_inputs())
    assert silent.auxiliary_loss() is None


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_trainer_trains_the_calibrator_term(weight):
    """With every label masked, only the auxiliary loss can move the weights."""
    torch.manual_seed(0)
    schema = _funnel_schema(3)
    model = create("aitm", schema, calibrator_weight=weight)
    x_cat, x_num = _inputs(256)
    unlabelled = TensorData(x_cat, x_num, torch.zeros(256, 3), torch.zeros(256, 3).bool())
    val = TensorData(x_cat, x_num, torch.randint(0, 2, (256, 3)).float(), torch.ones(256, 3).bool())

    def penalty() -> float:
        with torch.no_grad():
            return calibrator_penalty(list(model.eval()(x_cat, x_num).values())).item()

    start = penalty()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-2, patience=0, progress=False)
    Trainer(model, cfg).fit(unlabelled, val)
    if weight:
        assert start > 0.001 and penalty() < 0.1 * start
    else:
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "tasks, params, fragment",
    [
        ((TaskSpec("click", "binary"),), {}, "two or more"),
        ((TaskSpec("click", "binary"), TaskSpec("kind", "multiclass", 3)), {}, "kind"),
        (None, {"calibrator_weight": -1}, "calibrator_weight"),
        (None, {"tower_hidden": []}, "tower_hidden"),
    ],
)
def test_aitm_refuses_bad_tasks_and_settings(tasks, params, fragment):
    schema = _funnel_schema(2) if tasks is None else Schema((5,), 1, tasks)
    with pytest.raises(ConfigError, match=fragment):
        create("aitm", schema, **params)


# ---- ESCM2 -----------------------------------------------------------------------------


def _escm2_batch(model, n: int = 64):
    """A forward pass and funnel labels: clicks, conversions among them, some labels masked."""
    g = torch.Generator().manual_seed(3)
    out = model(*_inputs(n))
    click = (torch.rand(n, generator=g) < 0.5).float()
    y = torch.stack([click, click * (torch.rand(n, generator=g) < 0.5).float()], 1)
    mask = torch.rand(n, 2, generator=g) < 0.8
    return out, y * mask, mask


def test_escm2_ips_reweights_each_clicked_rows_cvr_error_by_one_over_pctr():
    torch.manual_seed(0)
    model = create("escm2_ips", _funnel_schema(2), counterfactual_weight=0.7, max_ips_weight=15)
    out, y, mask = _escm2_batch(model)
    assert torch.equal(out["conversion"], out["click"] * model.last_cvr)  # ESMM's outputs
    p_ctr, p_cvr = out["click"].detach(), model.last_cvr
    both = mask.all(1)
    clicked = both & (y[:, 0] == 1)
    error = -(y[:, 1] * p_cvr.log() + (1 - y[:, 1]) * (1 - p_cvr).log())
    expected = 0.7 * (error / p_ctr.clamp_min(1 / 15))[clicked].sum() / both.sum()
    loss = model.label_loss(y, mask)
    torch.testing.assert_close(loss, expected)
    # The propensity is a constant: the CTR tower gets no gradient from this term.
    assert _tower_grad(model.ctr_tower, loss) == 0 and _tower_grad(model.cvr_tower, loss) > 0


def _tower_grad(tower, loss: torch.Tensor) -> torch.Tensor:
    grads = torch.autograd.grad(
        loss, list(tower.parameters()), retain_graph=True, allow_unused=True
    )
    return sum(g.abs().sum() for g in grads if g is not None)


def test_escm2_dr_adds_the_imputed_error_and_trains_the_imputation_tower_on_its_own_loss():
    torch.manual_seed(0)
    model = create("escm2", _funnel_schema(2), counterfactual_weight=1.0)
    assert model.counterfactual == "dr"
    out, y, mask = _escm2_batch(model)
    _, p_cvr, e_hat = model._last
    p = out["click"].detach().clamp_min(1 / 15)
    both = mask.all(1).float()
    o = y[:, 0] * both
    error = -(y[:, 1] * p_cvr.log() + (1 - y[:, 1]) * (1 - p_cvr).log())
    e_hat = e_hat.detach()
    dr = both * e_hat + o * (error - e_hat) / p
    expected = (dr + o * (error - e_hat) ** 2 / p).sum() / both.sum()
    loss = model.label_loss(y, mask)
    torch.testing.assert_close(loss, expected)
    assert _tower_grad(model.ctr_tower, loss) == 0
    assert _tower_grad(model.imputation_tower, loss) > 0
    assert model.imputation_tower in model.task_modules("conversion")


def test_escm2_counterfactual_risk_ignores_masked_labels():
    torch.manual_seed(0)
    model = create("escm2", _funnel_schema(2))
    out, y, mask = _escm2_batch(model)
    loss = model.label_loss(y, mask)
    flipped = y.clone()
    flipped[~mask] = 1 - flipped[~mask]
    torch.testing.assert_close(model.label_loss(flipped, mask), loss)
    assert model.label_loss(y, torch.zeros_like(mask)) is None
    assert create("escm2", _funnel_schema(2), counterfactual_weight=0).label_loss(y, mask) is None
