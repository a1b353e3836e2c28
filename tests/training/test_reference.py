"""mtlkit's strategies against LibMTL, the reference implementation, on fixed losses and
gradients.

The reference values in ``fixtures/libmtl_reference.json`` were computed once by running
LibMTL's own weighting classes (LibMTL 1.1.5, the commit recorded in the file) with
``fixtures/make_libmtl_reference.py``, in a separate environment; LibMTL is not a dependency.
Every task loss is linear in one shared vector ``theta = 0`` and in a task-specific vector
``phi_k = 0``: ``L_k = c_k + g_k . theta + h_k . phi_k``, so the losses are ``c``, the Jacobian on
the shared part is ``G``, and the update is what ends in ``theta.grad`` and in the ``phi_k.grad``
(the "towers"); both parts are compared.
"""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlkit.training.strategies import make_strategy
from mtlkit.training.strategies.aggregation import _Capture

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "libmtl_reference.json").read_text())
METHODS = REFERENCE["methods"]
TOL = {"atol": 1e-5, "rtol": 1e-5}
#: CAGrad: LibMTL solves its weights with scipy's SLSQP at its default tolerance, torchjd the
#: same problem with an interior-point solver (Clarabel); the updates agree to about 2e-4.
CAGRAD_TOL = {"atol": 1e-3, "rtol": 1e-3}


def _update(probe, strategy, step: dict, seed: int | None = None) -> torch.Tensor:
    if seed is not None:
        _seed(strategy, seed)
    return probe.update(strategy, step)


def _seed(strategy, seed: int) -> None:
    """LibMTL draws from torch's generator after ``torch.manual_seed(seed)``; a strategy draws
    from its own stream, which is set to the same state here."""
    strategy.random_state = [torch.Generator().manual_seed(seed).get_state()]


def _check(update: torch.Tensor, expected: list[float], tol: dict = TOL) -> None:
    torch.testing.assert_close(update, torch.tensor(expected), **tol)


def _check_step(
    model, update: torch.Tensor, step: dict, scale: float = 1.0, tol: dict = TOL
) -> None:
    """The shared update and the towers' gradients, times ``scale``, are LibMTL's."""
    _check(scale * update, step["update"], tol)
    _check(scale * model.towers(), step["towers"], tol)


def test_the_fixture_records_where_the_reference_values_come_from():
    ref = REFERENCE["reference"]
    assert ref["library"].startswith("LibMTL") and len(ref["commit"]) == 40
    assert ref["computed_with"]["torch"].startswith("2.13")


@pytest.mark.parametrize(
    "name, params, scale",
    [
        ("rlw", {}, 1.0),
        ("gls", {}, 1.0),
        ("db_mtl", {"beta": 0.9, "beta_sigma": 0.0}, 1.0),
        ("moco", {}, 1.0),
        ("fairgrad", {"alpha": 2.0}, 1.0),
        ("fairgrad@2", {"alpha": 2.0}, 1.0),
        ("gradvac", {"beta": 0.5}, 1.0),
        # Nash-MTL, CAGrad, Aligned-MTL and PCGrad at their defaults (LibMTL's).
        ("nash_mtl", {}, 1.0),
        ("nash_mtl@2", {}, 1.0),
        ("cagrad", {}, 1.0),
        ("cagrad@2", {}, 1.0),
        ("aligned_mtl", {}, 1.0),
        ("aligned_mtl@2", {}, 1.0),
        ("pcgrad@2", {}, 1.0),
        # LibMTL's ExcessMTL weights sum to the number of tasks, the paper's (and torchjd's)
        # to 1, on the shared and the task-specific parameters alike; warmup_steps=1 gives
        # LibMTL's schedule (uniform first step, its excess as baseline).
        ("excessmtl", {"robust_step_size": 0.5, "warmup_steps": 1}, 3.0),
        ("excessmtl@2", {"robust_step_size": 0.5, "warmup_steps": 1}, 2.0),
    ],
)
def test_stepwise_updates_match_libmtl(probe, name, params, scale):
    steps = METHODS[name]["steps"]
    model = probe(len(steps[0]["losses"]))
    strategy = make_strategy(name.split("@")[0], model, **params)
    tol = CAGRAD_TOL if name.startswith("cagrad") else TOL
    for step in steps:
        update = _update(model, strategy, step, step.get("rng_seed"))
        _check_step(model, update, step, scale, tol)


def test_graddrop_matches_libmtl_on_a_representation_of_ones(probe):
    # LibMTL's GradDrop works on a representation; with a single row of ones (sign +1) its
    # per-task gradients are the rows of G, the case in which the two coincide.
    steps = METHODS["graddrop"]["steps"]
    model = probe(len(steps[0]["losses"]))
    strategy = make_strategy("graddrop", model, leak=0.0)
    for step in steps:
        _check(_update(model, strategy, step, step["rng_seed"]), step["update"])


def test_famo_updates_and_weight_learning_match_libmtl(probe):
    model = probe(3)
    strategy = make_strategy("famo", model)  # the paper's lr=0.025, weight decay 1e-3
    for step in METHODS["famo"]["steps"]:
        _check_step(model, _update(model, strategy, step), step)
        after = torch.tensor(step["losses_after"])
        strategy.after_step(lambda after=after: after)  # moves the next step's weights


def test_stch_warmup_nadir_and_smooth_maximum_match_libmtl(probe):
    model = probe(3)
    strategy = make_strategy("stch", model, mu=0.5, warmup_epochs=1)
    for steps in METHODS["stch"]["epochs"]:
        for step in steps:
            _check_step(model, _update(model, strategy, step), step)
        strategy.end_epoch(torch.zeros(3))


def test_imtl_loss_scales_and_impartial_update_match_libmtl(probe):
    model = probe(3)
    strategy = make_strategy("imtl", model)
    for step in METHODS["imtl"]["steps"]:
        for s in strategy.parameters():
            s.grad = None
        _check_step(model, _update(model, strategy, step), step)
        scale_grads = torch.stack([s.grad for s in strategy.parameters()])
        _check(scale_grads, step["scale_grad"])


@pytest.mark.parametrize(
    "name, params, tower_scale",
    [
        ("modo", {"gamma": 0.1, "rho": 0.1}, 1.0),
        # LibMTL's SDMGrad leaves the towers the sum of the three batches' gradients (its
        # MoDo divides that sum by 3); mtlkit's towers get the step batch's gradient, so with
        # the same heads in the three batches LibMTL's towers are 3 times mtlkit's.
        ("sdmgrad", {}, 3.0),  # sdmgrad: its defaults
    ],
)
def test_double_sampling_methods_match_libmtl(probe, name, params, tower_scale):
    model = probe(3)
    strategy = make_strategy(name, model, **params)
    for step in METHODS[name]["steps"]:
        first, second = step["first"], step["second"]
        strategy.samples.append((lambda s=first: model.losses(s), lambda s=second: model.losses(s)))
        _check(_update(model, strategy, step["step"]), step["update"])
        _check(tower_scale * model.towers(), step["towers"])


def _min_norm_weights(gram: np.ndarray) -> np.ndarray:
    """The exact min-norm point of the simplex under ``gram`` by enumeration of the supports:
    on each support the KKT system is linear; keep the feasible solution of least norm."""
    n = len(gram)
    best, best_value = None, np.inf
    for size in range(1, n + 1):
        for support in itertools.combinations(range(n), size):
            s = list(support)
            kkt = np.block([[gram[np.ix_(s, s)], np.ones((size, 1))], [np.ones((1, size)), 0]])
            sol = np.linalg.lstsq(kkt, np.r_[np.zeros(size), 1.0], rcond=None)[0]
            w = np.zeros(n)
            w[s] = sol[:size]
            value = w @ gram @ w
            if w.min() >= -1e-12 and (gram @ w).min() >= value - 1e-9 and value < best_value:
                best, best_value = w, value
    return best


@pytest.mark.parametrize("name", ["mgda", "mgda@2"])
def test_mgda_weights_are_the_exact_min_norm_point_and_the_update_libmtls(probe, name):
    # LibMTL's Frank-Wolfe solver (and torchjd's, which mtlkit used before) can stop 0.1 off
    # the exact weights with 3 tasks; mtlkit solves the QP. The updates agree in direction.
    steps = METHODS[name]["steps"]
    model = probe(len(steps[0]["losses"]))
    strategy = make_strategy("mgda", model)
    for step in steps:
        grads = torch.tensor(step["grads"], dtype=torch.float64)
        exact = torch.tensor(_min_norm_weights((grads @ grads.T).numpy()))
        update = _update(model, strategy, step)
        strategy.end_epoch(torch.zeros(len(exact)))
        weights = torch.tensor(strategy.task_weights(), dtype=torch.float64)
        torch.testing.assert_close(weights, exact, atol=1e-3, rtol=0)
        _check(update, (exact.float() @ grads.float()).tolist(), {"atol": 1e-4, "rtol": 1e-3})
        libmtl = torch.tensor(step["update"])
        assert torch.cosine_similarity(update, libmtl, dim=0) > 0.999
        _check(model.towers(), step["towers"])


@pytest.mark.parametrize("name", ["graddrop_representation", "graddrop_representation@2"])
def test_graddrop_on_a_shared_representation_matches_libmtl(probe, name):
    # The representation of 4 rows is rep0 + theta (theta = 0), so theta.grad is the sum over
    # the rows of the gradient GradDrop sends back into the representation. (The probe has no
    # bottom: the representation is handed to the strategy as shared_bottom's hook would.)
    steps = METHODS[name]["steps"]
    n = len(steps[0]["rep_grads"])
    model = probe(n)
    strategy = make_strategy("graddrop", model)
    strategy._capture = _Capture()
    for step in steps:
        model.zero_grad(set_to_none=True)
        rep = torch.tensor(step["rep"]) + model.theta
        strategy._capture.output = rep
        losses = torch.stack([(torch.tensor(g) * rep).sum() for g in step["rep_grads"]])
        _seed(strategy, step["rng_seed"])
        strategy.backward(losses, torch.ones(n, dtype=torch.bool))
        _check(model.theta.grad, torch.tensor(step["update"]).sum(0).tolist())
