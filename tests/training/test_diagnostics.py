"""Task-conflict diagnostics recorded per epoch."""

import numpy as np
import torch

from mtlkit.data.features import Preprocessor
from mtlkit.data.loading import load_tables
from mtlkit.data.synthetic import make_synthetic
from mtlkit.models import create
from mtlkit.training.diagnostics import FEW_TASKS, probe_steps, task_gradients
from mtlkit.training.settings import TrainConfig
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
