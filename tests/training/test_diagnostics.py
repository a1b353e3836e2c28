"""Task-conflict diagnostics recorded per epoch."""

import numpy as np
import pytest
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.synthetic import make_synthetic
from mtlkit.models import create
from mtlkit.training.diagnostics import (
    FEW_TASKS,
    ConflictMonitor,
    probe_steps,
    task_gradients,
    weighted_gradients,
)
from mtlkit.training.losses import masked_task_losses
from mtlkit.training.settings import TrainConfig
from mtlkit.training.strategies import make_strategy
from mtlkit.training.strategies.weighting import Joint
from mtlkit.training.trainer import Trainer


def _mean_cosine(correlation: float) -> float:
    frame = make_synthetic(3000, n_features=20, correlation=correlation, task_type="regression")
    pre = Preprocessor().fit(load_tables(frame, labels=["label0", "label1"]))
    data = pre.transform(load_tables(frame, labels=["label0", "label1"]))
    torch.manual_seed(0)
    model = create("shared_bottom", pre.schema())
    cfg = TrainConfig(
        epochs=3, batch_size=128, lr=3e-3, patience=0, progress=False, diagnostic_batches=8
    )
    hist = Trainer(model, cfg).fit(data, data)
    return float(np.mean(hist.diagnostic("grad_cosine")))


def test_gradient_cosine_is_higher_for_correlated_tasks():
    related, unrelated = _mean_cosine(0.9), _mean_cosine(0.0)
    assert related > unrelated + 0.15, (related, unrelated)
    assert abs(unrelated) < 0.1


def test_task_gradients_match_autograd_and_keep_the_graph():
    torch.manual_seed(0)
    w = torch.randn(3, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    losses = torch.stack([(w**2).sum() + b[0], (w * 3).sum() + b.sum()])
    grads = task_gradients(losses, [w, b])
    assert grads.shape == (2, 5)
    torch.testing.assert_close(grads[0], torch.cat([2 * w.detach(), torch.tensor([1.0, 0.0])]))
    torch.testing.assert_close(grads[1], torch.tensor([3.0, 3.0, 3.0, 1.0, 1.0]))
    losses.sum().backward()  # the graph is still there
    assert w.grad is not None


def test_task_gradients_agree_for_few_and_many_tasks():
    # Up to FEW_TASKS losses are differentiated one by one, more through torchjd's Jacobian.
    torch.manual_seed(0)
    w = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(FEW_TASKS + 2, requires_grad=True)
    x = torch.randn(8, 4)
    losses = ((x @ w).tanh().sum(0).repeat(3)[: len(b)] * b) ** 2
    many = task_gradients(losses, [w, b])
    assert many.shape == (len(b), w.numel() + len(b))
    for k in range(0, len(b), 2):
        torch.testing.assert_close(task_gradients(losses[k : k + 2], [w, b]), many[k : k + 2])


def test_probes_are_evenly_spaced_and_bounded():
    assert probe_steps(100, 0) == set()
    assert probe_steps(3, 8) == {0, 1, 2}
    steps = sorted(probe_steps(100, 5))
    assert steps[0] == 0 and steps[-1] == 99 and len(steps) == 5


def _census_like(n_rows: int = 512):
    frame = make_synthetic(n_rows, n_features=20, correlation=0.5)
    tables = load_tables(frame, labels=["label0", "label1"])
    pre = Preprocessor().fit(tables)
    return pre, pre.transform(tables)


@pytest.mark.parametrize(
    ("model_name", "weights"),
    [("shared_bottom", None), ("mmoe", None), ("mmoe", [2.0, 0.0]), ("ple", [0.5, 1.5])],
)
def test_a_probed_step_reuses_the_task_gradients_for_the_same_step(model_name, weights):
    # The probe's per-task gradients, weighted and summed, give the gradients the strategy's
    # backward pass gives (float rounding aside), with no gradient where it gives none
    # (a task of weight 0 still gives its tower zeros, as backward does), and the same
    # diagnostics as the probe that only measures.
    pre, data = _census_like()
    torch.manual_seed(0)
    model = create(model_name, pre.schema())
    strategy = make_strategy("joint", model, weights=weights)
    out = model(data.x_cat[:256], data.x_num[:256])
    losses = masked_task_losses(pre.schema().tasks, out, data.y[:256], data.mask[:256])
    params = list(model.parameters())
    everyone = torch.ones(2, dtype=torch.bool)
    measured = ConflictMonitor(model.task_names, model.shared_parameters())
    assert measured.measure(losses, everyone, model.gate_weights()) is None
    reused = ConflictMonitor(model.task_names, model.shared_parameters())
    per_task = reused.measure(losses, everyone, model.gate_weights(), params)
    assert sorted(per_task) == [0, 1]
    weighted_gradients(params, per_task, strategy.linear_weights().tolist())
    merged = [p.grad for p in params]
    for p in params:
        p.grad = None
    strategy.backward(losses, everyone)
    for p, g in zip(params, merged):
        assert (g is None) == (p.grad is None)
        if g is not None:
            assert g.is_contiguous() == p.grad.is_contiguous()
            torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-7)
    a, b = measured.summary(), reused.summary()
    assert a.grad_cosine == pytest.approx(b.grad_cosine, rel=1e-5, abs=1e-7)
    assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-5)
    assert a.expert_utilization == b.expert_utilization


@pytest.mark.parametrize("rare_labels", [False, True])
def test_training_with_reused_probe_gradients_matches_training_without(monkeypatch, rare_labels):
    # With rare labels of one task, probes meet batches without them: backward gives that
    # task's tower zero gradients (not none, which Adam would skip), and so do the others'.
    pre, data = _census_like(2048)
    if rare_labels:
        data.mask[torch.arange(2048) % 256 != 0, 1] = False
    cfg = TrainConfig(
        epochs=3, batch_size=128, lr=3e-3, patience=0, progress=False, diagnostic_batches=8
    )

    def fit():
        torch.manual_seed(0)
        model = create("mmoe", pre.schema())
        return model, Trainer(model, cfg).fit(data, data)

    reused_model, reused = fit()
    monkeypatch.setattr(Joint, "linear_weights", lambda self: None)  # probes measure only
    model, measured = fit()
    for name in ("grad_cosine", "grad_norm_ratio"):
        np.testing.assert_allclose(reused.diagnostic(name), measured.diagnostic(name), rtol=1e-3)
    for a, b in zip(reused_model.parameters(), model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
