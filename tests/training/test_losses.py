import torch

from mtlkit.data.schema import TaskSpec
from mtlkit.training.losses import masked_task_losses

TASKS = (
    TaskSpec("a", "binary"),
    TaskSpec("b", "multiclass", 3, (0, 1, 2)),
    TaskSpec("c", "regression", 1),
)


def _logits(n: int):
    return {
        "a": torch.randn(n, requires_grad=True),
        "b": torch.randn(n, 3, requires_grad=True),
        "c": torch.randn(n, requires_grad=True),
    }


def test_masked_labels_contribute_exactly_zero_gradient():
    torch.manual_seed(0)
    logits = _logits(6)
    y = torch.tensor(
        [[1, 2, 0.5], [0, 1, 1.0], [1, 0, -2.0], [0, 0, 0.0], [1, 2, 3.0], [0, 1, 1.0]]
    )
    mask = torch.tensor([[1, 1, 1], [0, 1, 0], [1, 0, 1], [0, 0, 0], [1, 1, 0], [0, 1, 1]]).bool()
    masked_task_losses(TASKS, logits, y, mask).sum().backward()
    for k, name in enumerate("abc"):
        grad = logits[name].grad
        rows = ~mask[:, k]
        assert torch.all(grad[rows] == 0), name
        assert torch.all(grad[mask[:, k]].abs().reshape(mask[:, k].sum(), -1).sum(-1) > 0), name


def test_masked_value_does_not_change_the_loss():
    torch.manual_seed(0)
    logits = _logits(4)
    mask = torch.tensor([[1, 1, 1], [0, 0, 0], [1, 1, 1], [1, 1, 1]]).bool()
    y1 = torch.tensor([[1, 2, 0.5], [0, 0, 0.0], [1, 0, -2.0], [0, 1, 1.0]])
    y2 = y1.clone()
    y2[1] = torch.tensor([1, 2, 99.0])
    torch.testing.assert_close(
        masked_task_losses(TASKS, logits, y1, mask), masked_task_losses(TASKS, logits, y2, mask)
    )


def test_loss_is_mean_over_labelled_rows_and_zero_without_labels():
    logits = {"a": torch.zeros(4), "b": torch.zeros(4, 3), "c": torch.zeros(4)}
    y = torch.tensor([[1, 0, 2.0], [1, 0, 2.0], [0, 0, 0.0], [0, 0, 0.0]])
    mask = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0]]).bool()
    losses = masked_task_losses(TASKS, logits, y, mask)
    torch.testing.assert_close(losses[0], torch.log(torch.tensor(2.0)))
    assert losses[1] == 0
    torch.testing.assert_close(losses[2], torch.tensor(4.0))


def test_all_binary_tasks_match_per_task_losses_and_masked_rows_get_zero_gradient():
    # Every task binary with logits: the losses are computed on the stacked logits at once.
    tasks = (TaskSpec("a", "binary"), TaskSpec("b", "binary"), TaskSpec("c", "binary"))
    torch.manual_seed(0)
    logits = {t.name: torch.randn(8, requires_grad=True) for t in tasks}
    y = torch.randint(0, 2, (8, 3)).float()
    mask = torch.rand(8, 3) > 0.4
    mask[:, 2] = False  # a task without labels in the batch gets loss 0
    losses = masked_task_losses(tasks, logits, y, mask)
    for k, t in enumerate(tasks):
        rows = mask[:, k]
        expected = (
            torch.nn.functional.binary_cross_entropy_with_logits(logits[t.name][rows], y[rows, k])
            if rows.any()
            else torch.tensor(0.0)
        )
        torch.testing.assert_close(losses[k], expected)
    losses.sum().backward()
    for k, t in enumerate(tasks):
        assert torch.all(logits[t.name].grad[~mask[:, k]] == 0), t.name
        assert torch.all(logits[t.name].grad[mask[:, k]] != 0), t.name


def test_no_mask_gives_the_losses_and_gradients_of_a_full_mask():
    binary = (TaskSpec("a", "binary"), TaskSpec("c", "binary"))
    torch.manual_seed(0)
    y = torch.stack([torch.randint(0, 2, (8,)).float(), torch.randint(0, 3, (8,)).float()], 1)
    y = torch.cat([y, torch.randn(8, 1)], 1)
    for tasks, labels in ((TASKS, y), (binary, y[:, [0, 0]])):
        for counts in (None, torch.full((len(tasks),), 16.0)):  # e.g. of 2 ranks' batch
            runs = []
            for mask in (torch.ones_like(labels, dtype=torch.bool), None):
                torch.manual_seed(1)
                logits = _logits(8)
                losses = masked_task_losses(tasks, logits, labels, mask, counts=counts)
                losses.sum().backward()
                runs.append((losses.detach(), [logits[t.name].grad for t in tasks]))
            (full, full_grads), (unmasked, unmasked_grads) = runs
            torch.testing.assert_close(full, unmasked, rtol=1e-6, atol=0)
            for a, b in zip(full_grads, unmasked_grads):
                torch.testing.assert_close(a, b, rtol=1e-6, atol=0)
    empty = {"a": torch.zeros(0), "b": torch.zeros(0, 3), "c": torch.zeros(0)}
    assert masked_task_losses(TASKS, empty, torch.zeros(0, 3), None).tolist() == [0, 0, 0]
