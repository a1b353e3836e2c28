"""The defining property of each weighting / aggregation method, on small fixed problems
(``probe``: task losses linear in one shared vector, see conftest). Agreement with LibMTL's
numbers is in test_reference.py; every strategy also trains every model family in
test_strategies.py."""

import math

import pytest
import torch
import torch.nn.functional as F

from mtlkit.training.strategies import STRATEGIES, available_strategies, make_strategy

#: The files of LibMTL/weighting (LibMTL 1.1.5, commit 4336804847ea), lower-cased: mtlkit
#: offers each under that name (an alias where mtlkit's own name differs).
LIBMTL_WEIGHTING = [
    "Aligned_MTL", "CAGrad", "DB_MTL", "DWA", "EW", "ExcessMTL", "FAMO", "FairGrad", "GLS",
    "GradDrop", "GradNorm", "GradVac", "IMTL", "MGDA", "MoCo", "MoDo", "Nash_MTL", "PCGrad",
    "RLW", "SDMGrad", "STCH", "UPGrad", "UW",
]  # fmt: skip


def _step(losses, grads) -> dict:
    return {"losses": losses, "grads": grads}


CONFLICT = _step([1.0, 0.5, 2.0], [[1.0, 0.0, 0.0], [-0.6, 0.8, 0.0], [0.2, -0.5, 0.6]])


def test_every_libmtl_weighting_method_is_available_by_name():
    missing = [m for m in LIBMTL_WEIGHTING if m.lower() not in available_strategies()]
    assert not missing
    for alias, method in (("ew", "joint"), ("uw", "uncertainty"), ("rgw", "random")):
        assert STRATEGIES.entry(alias).target is STRATEGIES.entry(method).target


# ---- torchjd's aggregators -------------------------------------------------------------


def test_config_update_has_the_same_positive_cosine_with_every_task_gradient(probe):
    model = probe(3, dim=3)
    update = model.update(make_strategy("config", model), CONFLICT)
    cosines = F.cosine_similarity(update.unsqueeze(0), torch.tensor(CONFLICT["grads"]))
    assert torch.all(cosines > 0)
    torch.testing.assert_close(cosines, cosines[:1].expand(3), atol=1e-5, rtol=0)


def test_dualproj_update_conflicts_with_no_task(probe):
    model = probe(3, dim=3)
    update = model.update(make_strategy("dualproj", model), CONFLICT)
    grads = torch.tensor(CONFLICT["grads"])
    assert torch.all(grads @ update >= -1e-3)  # up to the QP solver's tolerance
    assert (grads.mean(0) @ grads.T).min() < 0  # the mean itself would conflict


def test_krum_and_trimmed_mean_ignore_an_outlier_task(probe):
    model = probe(4, dim=2)
    step = _step([1.0] * 4, [[1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [-50.0, 40.0]])
    update = model.update(make_strategy("krum", model, n_byzantine=1), step)
    # One of the three agreeing gradients, never the outlier.
    assert any(torch.allclose(update, torch.tensor(g)) for g in step["grads"][:3])
    model = probe(3, dim=2)
    step = _step([1.0] * 3, [[1.0, 2.0], [3.0, -1.0], [100.0, 50.0]])
    update = model.update(make_strategy("trimmed_mean", model, trim_number=1), step)
    torch.testing.assert_close(update, torch.tensor([3.0, 2.0]))  # per-coordinate median


def test_krum_falls_back_to_the_plain_sum_with_too_few_tasks(probe):
    model = probe(2, dim=2)
    step = _step([1.0, 1.0], [[1.0, 2.0], [3.0, -1.0]])
    update = model.update(make_strategy("krum", model), step)  # needs 3 tasks
    torch.testing.assert_close(update, torch.tensor([4.0, 1.0]))


@pytest.mark.parametrize("name", ["random", "rlw"])
def test_random_weights_are_positive_sum_to_one_and_change_every_step(probe, name):
    model = probe(3, dim=3)
    strategy = make_strategy(name, model)
    grads = torch.tensor(CONFLICT["grads"])
    # The update is sum_k w_k g_k whether the losses or the gradients are weighted.
    weights = [torch.linalg.solve(grads.T, model.update(strategy, CONFLICT)) for _ in range(3)]
    for w in weights:
        assert torch.all(w > 0) and w.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(weights[0], weights[1])


def test_graddrop_keeps_one_sign_per_coordinate(probe):
    model = probe(3, dim=6)
    step = _step([1.0] * 3, torch.randn(3, 6, generator=torch.Generator().manual_seed(0)).tolist())
    grads = torch.tensor(step["grads"])
    update = model.update(make_strategy("graddrop", model), step)
    positive, negative = grads.clamp(min=0).sum(0), grads.clamp(max=0).sum(0)
    for j in range(6):
        assert update[j].item() in (
            pytest.approx(positive[j].item()),
            pytest.approx(negative[j].item()),
            0.0,
        )


def _shared_bottom_step(strategy_params: dict, seed: int = 0):
    """One GradDrop step on a small shared_bottom model: the strategy, the model, the bottom's
    output and the gradient that reached it."""
    from mtlkit.data.schema import Schema, TaskSpec
    from mtlkit.models import create

    tasks = tuple(TaskSpec(f"t{k}", "regression", 1) for k in range(3))
    torch.manual_seed(seed)
    model = create("shared_bottom", Schema((), 4, tasks), bottom_hidden=(6,), tower_hidden=(3,))
    strategy = make_strategy("graddrop", model, **strategy_params)
    x_num = torch.randn(8, 4)
    out = model(torch.zeros(8, 0, dtype=torch.long), x_num)
    rep = strategy._capture.output
    seen = []
    rep.register_hook(seen.append)
    losses = torch.stack([(out[t.name] - k).pow(2).mean() for k, t in enumerate(tasks)])
    strategy.seed(seed)  # its draw of the signs
    strategy.backward(losses, torch.ones(3, dtype=torch.bool))
    return strategy, model, rep, losses, seen


def test_graddrop_on_shared_bottom_works_on_the_bottoms_output_per_unit():
    strategy, model, rep, losses, seen = _shared_bottom_step({})
    assert rep.shape == (8, 6)  # the bottom's output, which every tower reads
    assert len(seen) == 4  # 3 task gradients, then the combination
    per_task = torch.stack(seen[:3])  # each task's gradient at the representation
    sent = seen[-1]  # what GradDrop sent back into the bottom
    signed = (per_task * rep.detach().sign()).sum(1)  # (task, unit)
    for unit in range(6):
        positive = torch.allclose(sent[:, unit], per_task[signed[:, unit] > 0, :, unit].sum(0))
        negative = torch.allclose(sent[:, unit], per_task[signed[:, unit] < 0, :, unit].sum(0))
        assert positive or negative  # one sign's tasks pass, whole, in every row of a unit


def test_graddrop_with_full_leak_is_the_plain_sum_and_the_model_still_pickles():
    import copy
    import pickle

    strategy, model, rep, losses, seen = _shared_bottom_step({"leak": 1.0})
    torch.testing.assert_close(seen[-1], torch.stack(seen[:3]).sum(0))
    pickle.loads(pickle.dumps(model))  # the hook keeps no tensor in a copy
    assert copy.deepcopy(model).bottom._forward_hooks


def test_fairgrad_weights_solve_the_alpha_fair_optimality_condition(probe):
    model = probe(3, dim=3)
    strategy = make_strategy("fairgrad", model, alpha=2.0)
    update = model.update(strategy, CONFLICT)
    grads = torch.tensor(CONFLICT["grads"])
    weights = torch.linalg.solve(grads.T, update)
    # G G^T w = w^(-1/alpha): every task's gain g_k . d is its weight to the power -1/alpha.
    torch.testing.assert_close(grads @ update, weights ** (-1 / 2.0), atol=1e-4, rtol=1e-4)


HEADS = [[1.0, -2.0], [0.5, 0.25], [-1.5, 3.0]]
#: CONFLICT's gradients at different scales, with task-specific gradients.
SCALED = _step([1.0, 0.5, 2.0], [[2.0, 0.0, 0.0], [-0.3, 0.4, 0.0], [0.2, -0.5, 0.6]])
SCALED["heads"] = HEADS


@pytest.mark.parametrize("name", ["nash_mtl", "fairgrad", "excessmtl"])
def test_towers_get_their_tasks_gradient_times_its_weight(probe, name):
    # The authors' code and LibMTL backpropagate sum_k w_k L_k into every parameter: each
    # task's own parameters get w_k times its gradient (not the plain gradient).
    model = probe(3, dim=3)
    params = {"nash_mtl": {"max_norm": 100.0}, "excessmtl": {"robust_step_size": 0.5}}
    strategy = make_strategy(name, model, **params.get(name, {}))
    for i in range(3):  # task 0's gradient grows from step to step
        grads = torch.tensor(SCALED["grads"]) * torch.tensor([[1.0 + i], [1.0], [1.0]])
        update = model.update(strategy, {**SCALED, "grads": grads.tolist()})
        ratio = model.towers() / torch.tensor(HEADS)
        assert ratio.std(dim=1).max() < 1e-5  # one factor per task
        # ... the weight that task's gradient has in the shared update
        torch.testing.assert_close(ratio[:, 0] @ grads, update)
    assert (ratio[:, 0] - ratio[0, 0]).abs().max() > 0.01  # unequal weights, not 1


def test_nash_mtl_clips_the_shared_update_only(probe):
    model = probe(3, dim=3)
    strategy = make_strategy("nash_mtl", model, max_norm=0.1)
    update = model.update(strategy, SCALED)
    alpha = model.towers()[:, 0] / torch.tensor(HEADS)[:, 0]  # the solved weights
    unclipped = alpha @ torch.tensor(SCALED["grads"])
    assert unclipped.norm() > 0.1
    torch.testing.assert_close(update, unclipped * 0.1 / unclipped.norm())


def test_cagrad_defaults_are_libmtls_c_and_rescaling(probe):
    from mtlkit.training.strategies import check_strategy

    assert check_strategy("cagrad") == {"c": 0.5, "norm_eps": 1e-4, "rescale": 1}
    model = probe(3, dim=3)
    plain = model.update(make_strategy("cagrad", model, rescale=0), CONFLICT)
    for rescale, factor in ((1, 1 + 0.5**2), (2, 1 + 0.5)):
        update = model.update(make_strategy("cagrad", model, rescale=rescale), CONFLICT)
        torch.testing.assert_close(update * factor, plain)


def test_aligned_mtl_sums_the_aligned_gradients(probe):
    # The aligned gradients all have the norm sqrt(smallest eigenvalue) of G G^T and are
    # summed (not averaged): the update's projection on the aligned basis is T times torchjd's
    # mean.
    model = probe(3, dim=3)
    grads = torch.tensor(CONFLICT["grads"])
    update = model.update(make_strategy("aligned_mtl", model), CONFLICT)
    eigvals, eigvecs = torch.linalg.eigh(grads @ grads.T)
    balance = eigvals[0].sqrt() * eigvecs @ torch.diag(eigvals.rsqrt()) @ eigvecs.T
    torch.testing.assert_close(update, balance.sum(0) @ grads, atol=1e-5, rtol=1e-5)


def test_gradvac_raises_a_pairs_cosine_to_its_running_target(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("gradvac", model, beta=1.0)  # target = last cosine
    aligned = _step([1.0, 1.0], [[1.0, 0.0], [0.8, 0.6]])  # cosine 0.8
    model.update(strategy, aligned)
    conflicting = _step([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])  # cosine 0 < target 0.8
    update = model.update(strategy, conflicting)
    assert not torch.allclose(update, torch.tensor([1.0, 1.0]))  # the plain sum was changed
    # Each corrected gradient now has cosine 0.8 with the other: the sum bisects them.
    assert update[0].item() == pytest.approx(update[1].item())


def test_excessmtl_shifts_weight_to_the_task_whose_excess_risk_grows(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("excessmtl", model, robust_step_size=1.0, warmup_steps=1)
    model.update(strategy, _step([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]]))  # baseline
    update = model.update(strategy, _step([1.0, 1.0], [[1.0, 0.0], [0.0, 3.0]]))
    weights = update / torch.tensor([1.0, 3.0])
    assert weights[1] > weights[0] and weights.sum().item() == pytest.approx(1.0, abs=1e-5)


# ---- methods mtlkit implements ---------------------------------------------------------


def test_imtl_update_has_equal_projections_on_every_unit_task_gradient(probe):
    model = probe(3, dim=3)
    strategy = make_strategy("imtl", model)
    with torch.no_grad():
        for s, value in zip(strategy.log_scales, (0.3, -0.2, 0.5)):
            s.fill_(value)
    update = model.update(strategy, CONFLICT)
    scales = torch.tensor([0.3, -0.2, 0.5]).exp().unsqueeze(1)
    units = F.normalize(scales * torch.tensor(CONFLICT["grads"]), dim=1)
    projections = units @ update
    torch.testing.assert_close(projections, projections[:1].expand(3), atol=1e-5, rtol=0)
    # IMTL-L: d/ds (e^s L - s) = e^s L - 1.
    expected = scales.squeeze(1) * torch.tensor(CONFLICT["losses"]) - 1
    torch.testing.assert_close(torch.stack([s.grad for s in strategy.log_scales]), expected)


def test_gls_effective_weights_favour_the_task_with_the_smaller_loss(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("gls", model)
    update = model.update(strategy, _step([1.0, 4.0], [[1.0, 0.0], [0.0, 1.0]]))
    # d sqrt(L1 L2) / dL_k = sqrt(L1 L2) / (2 L_k): 1 and 1/4.
    torch.testing.assert_close(update, torch.tensor([1.0, 0.25]))
    strategy.end_epoch(torch.zeros(2))
    assert strategy.task_weights() == pytest.approx([1.0, 0.25])


def test_db_mtl_balances_log_loss_gradients_to_the_largest_norm(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("db_mtl", model)
    update = model.update(strategy, _step([2.0, 0.5], [[4.0, 0.0], [0.0, 0.1]]))
    # Log-loss gradients g / L: (2, 0) and (0, 0.2); their averages start from zero, so the
    # first ones are 0.1 g: (0.2, 0) and (0, 0.02), both scaled to the larger norm 0.2.
    torch.testing.assert_close(update, torch.tensor([0.2, 0.2]), atol=1e-5, rtol=1e-5)


def test_famo_raises_the_weight_of_the_task_whose_loss_fell_least(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("famo", model, lr=0.5)
    step = _step([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])
    first = model.update(strategy, step)
    torch.testing.assert_close(first, torch.tensor([0.5, 0.5]))  # z = (1/2, 1/2), c = 1/2
    strategy.after_step(lambda: torch.tensor([0.5, 0.95]))  # task 1 hardly improved
    second = model.update(strategy, step)
    assert second[1] > second[0] and second.sum().item() == pytest.approx(1.0)


def test_stch_pushes_on_the_task_furthest_from_its_nadir_after_warmup(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("stch", model, mu=0.05, warmup_epochs=0)
    step = _step([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])
    model.update(strategy, step)  # the nadir epoch: losses (1, 1)
    strategy.end_epoch(torch.zeros(2))
    torch.testing.assert_close(strategy.nadir, torch.tensor([1.0, 1.0]))
    update = model.update(strategy, _step([0.5, 2.0], step["grads"]))
    assert update[1] > 100 * update[0]  # nearly all on task 1 (2x its nadir)


def test_moco_weights_stay_on_the_simplex_and_track_loss_scaled_unit_gradients(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("moco", model, beta=1.0, beta_sigma=0.0)  # y = current gradient
    update = model.update(strategy, _step([2.0, 1.0], [[3.0, 0.0], [0.0, 0.5]]))
    weights = update / torch.tensor([2.0, 1.0])  # tracked gradients: (2, 0) and (0, 1)
    assert weights.sum().item() == pytest.approx(1.0) and torch.all(weights > 0)
    assert weights[1] > weights[0]  # the min-norm step favours the shorter gradient


def test_sdmgrad_approaches_the_mean_gradient_as_lambda_grows(probe):
    model = probe(3, dim=3)
    grads = torch.tensor(CONFLICT["grads"])
    update = model.update(make_strategy("sdmgrad", model, lambda_=1e6), CONFLICT)
    torch.testing.assert_close(update, grads.mean(0), atol=1e-4, rtol=1e-4)
    # lambda_ = 0 (and a solver run to convergence) is MGDA's min-norm point: (1/14)(1, 2, 3).
    mgda = make_strategy("sdmgrad", model, lambda_=0.0, lr=0.1, n_iter=500)
    update = model.update(mgda, CONFLICT)
    torch.testing.assert_close(update, torch.tensor([1.0, 2.0, 3.0]) / 14, atol=1e-3, rtol=0)


def test_modo_weights_move_towards_the_min_norm_combination(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("modo", model, gamma=0.1, rho=0.0)
    step = _step([1.0, 1.0], [[2.0, 0.0], [0.0, 1.0]])
    updates = [model.update(strategy, step) for _ in range(30)]
    weights = [u / torch.tensor([2.0, 1.0]) for u in updates]
    # Min-norm weights of (2, 0) and (0, 1): (1/5, 4/5).
    assert weights[-1][1] > weights[0][1] > 0.5
    assert all(w.sum().item() == pytest.approx(1.0, abs=1e-5) for w in weights)


def test_metabalance_brings_auxiliary_gradient_magnitudes_to_the_targets(probe):
    model = probe(3, dim=2)
    step = _step([1.0] * 3, [[0.3, 0.4], [6.0, 8.0], [0.0, -0.05]])  # norms 0.5, 10, 0.05
    full = make_strategy("metabalance", model, target="t0", relax_factor=1.0)
    update = model.update(full, step)
    expected = torch.tensor([0.3, 0.4]) + torch.tensor([0.3, 0.4]) + torch.tensor([0.0, -0.5])
    torch.testing.assert_close(update, expected)
    none = make_strategy("metabalance", model, relax_factor=0.0)
    torch.testing.assert_close(model.update(none, step), torch.tensor(step["grads"]).sum(0))


def test_stateful_methods_leave_a_full_batchs_state_alone_on_partial_batches(probe):
    model = probe(2, dim=2)
    full = _step([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])
    for name in ("db_mtl", "moco", "famo", "gradvac", "excessmtl", "modo"):
        a = make_strategy(name, model)
        b = make_strategy(name, model)
        model.update(a, full)
        model.update(b, full)
        model.update(b, _step([3.0, 1.0], [[5.0, 5.0], [0.0, 1.0]]), present=[True, False])
        torch.testing.assert_close(model.update(a, full), model.update(b, full), msg=name)


def test_weights_of_never_trained_tasks_are_nan_in_the_history(probe):
    model = probe(2, dim=2)
    strategy = make_strategy("gls", model)
    model.update(strategy, _step([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]]), present=[True, False])
    strategy.end_epoch(torch.zeros(2))
    first, second = strategy.task_weights()
    assert first == pytest.approx(1.0) and math.isnan(second)


def test_strategies_declaring_linear_weights_backpropagate_that_weighted_sum(probe):
    # The trainer builds a diagnostic probe's step from the per-task gradients with these
    # weights instead of calling backward: only where backward gives exactly that.
    declared = []
    for name in available_strategies():
        model = probe(3, dim=3)
        strategy = make_strategy(name, model)
        weights = strategy.linear_weights()
        if weights is not None:
            declared.append(name)
            update = model.update(strategy, CONFLICT)
            torch.testing.assert_close(update, weights @ torch.tensor(CONFLICT["grads"]))
    assert sorted(declared) == ["dwa", "ew", "joint"]
    model = probe(3, dim=3)
    weighted = make_strategy("joint", model, weights=[2.0, 0.0, 0.5])
    update = model.update(weighted, CONFLICT)
    expected = weighted.linear_weights() @ torch.tensor(CONFLICT["grads"])
    torch.testing.assert_close(update, expected)
