"""mtlkit's strategies against LibMTL, the reference implementation, on fixed losses and
gradients.

The reference values in ``fixtures/libmtl_reference.json`` were computed once by running
LibMTL's own weighting classes (LibMTL 1.1.5, the commit recorded in the file) with
``fixtures/make_libmtl_reference.py``, in a separate environment; LibMTL is not a dependency.
Every task loss is linear in one shared vector ``theta = 0``: ``L_k = c_k + g_k . theta``, so
the losses are ``c``, the Jacobian is ``G``, and the update is what ends in ``theta.grad``.
"""

import json
from pathlib import Path

import pytest
import torch

from mtlkit.training.strategies import make_strategy

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "libmtl_reference.json").read_text())
METHODS = REFERENCE["methods"]
TOL = {"atol": 1e-5, "rtol": 1e-5}


def _update(probe, strategy, step: dict, seed: int | None = None) -> torch.Tensor:
    if seed is not None:
        torch.manual_seed(seed)
    return probe.update(strategy, step)


def _check(update: torch.Tensor, expected: list[float]) -> None:
    torch.testing.assert_close(update, torch.tensor(expected), **TOL)


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
        ("gradvac", {"beta": 0.5}, 1.0),
        ("graddrop", {"leak": 0.0}, 1.0),
        # LibMTL's ExcessMTL weights sum to the number of tasks, torchjd's to 1; mtlkit's
        # warmup_steps=1 gives LibMTL's schedule (uniform first step, its excess as baseline).
        ("excessmtl", {"robust_step_size": 0.5, "warmup_steps": 1}, 3.0),
    ],
)
def test_stepwise_updates_match_libmtl(probe, name, params, scale):
    steps = METHODS[name]["steps"]
    model = probe(len(steps[0]["losses"]))
    strategy = make_strategy(name, model, **params)
    for step in steps:
        _check(scale * _update(model, strategy, step, step.get("rng_seed")), step["update"])


def test_famo_updates_and_weight_learning_match_libmtl(probe):
    model = probe(3)
    strategy = make_strategy("famo", model)  # the paper's lr=0.025, weight decay 1e-3
    for step in METHODS["famo"]["steps"]:
        _check(_update(model, strategy, step), step["update"])
        after = torch.tensor(step["losses_after"])
        strategy.after_step(lambda after=after: after)  # moves the next step's weights


def test_stch_warmup_nadir_and_smooth_maximum_match_libmtl(probe):
    model = probe(3)
    strategy = make_strategy("stch", model, mu=0.5, warmup_epochs=1)
    for steps in METHODS["stch"]["epochs"]:
        for step in steps:
            _check(_update(model, strategy, step), step["update"])
        strategy.end_epoch(torch.zeros(3))


def test_imtl_loss_scales_and_impartial_update_match_libmtl(probe):
    model = probe(3)
    strategy = make_strategy("imtl", model)
    for step in METHODS["imtl"]["steps"]:
        for s in strategy.parameters():
            s.grad = None
        _check(_update(model, strategy, step), step["update"])
        scale_grads = torch.stack([s.grad for s in strategy.parameters()])
        _check(scale_grads, step["scale_grad"])


@pytest.mark.parametrize(
    "name, params",
    [("modo", {"gamma": 0.1, "rho": 0.1}), ("sdmgrad", {})],  # sdmgrad: its defaults
)
def test_double_sampling_methods_match_libmtl(probe, name, params):
    model = probe(3)
    strategy = make_strategy(name, model, **params)
    for step in METHODS[name]["steps"]:
        first, second = step["first"], step["second"]
        strategy.samples.append((lambda s=first: model.losses(s), lambda s=second: model.losses(s)))
        _check(_update(model, strategy, step["step"]), step["update"])
