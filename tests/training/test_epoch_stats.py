import pytest
import torch

from mtlkit.data.schema import TaskSpec
from mtlkit.data.tensors import Batch
from mtlkit.training import epoch_stats
from mtlkit.training.epoch_stats import EpochStats

TASKS = [
    TaskSpec("logit", "binary"),
    TaskSpec("prob", "binary"),
    TaskSpec("cls", "multiclass", 3, (0, 1, 2)),
    TaskSpec("reg", "regression", 1),
]
OUT = {
    "logit": torch.tensor([2.0, -1.0, 0.5, -3.0]),
    "prob": torch.tensor([0.9, 0.2, 0.6, 0.4]),
    "cls": torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [3.0, 0, 0]]),
    "reg": torch.tensor([1.0, 2.0, 3.0, 4.0]),
}
Y = torch.tensor([[1, 1, 0, 1.0], [1, 0, 1, 2.0], [1, 0, 2, 3.0], [0, 0, 1, 4.0]])
MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 0, 1], [1, 0, 1, 1]]).bool()
BATCH = Batch(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, 0), Y, MASK)
COUNTS = MASK.sum(0).float()


def test_accuracy_counts_correct_labelled_predictions_of_every_task_kind():
    stats = EpochStats(TASKS, frozenset({"prob"}))
    stats.add(OUT, BATCH, torch.tensor([0.5, 0.25, 1.0, 2.0]), COUNTS)
    loss_sum, count, correct = stats.totals()
    # logit: rows 0,1,3 labelled, predictions 1,0,0 vs labels 1,1,0 -> 2 correct;
    # prob (threshold 0.5): rows 0,1,2 -> predictions 1,0,1 vs 1,0,0 -> 2; cls: rows 0,1,3 ->
    # argmax 0,1,0 vs 0,1,1 -> 2; regression: no accuracy (0).
    assert correct.tolist() == [2.0, 2.0, 2.0, 0.0]
    assert count.tolist() == [3.0, 3.0, 3.0, 4.0]
    assert loss_sum.tolist() == [1.5, 0.75, 3.0, 8.0]
    binary = EpochStats(TASKS[:2], frozenset({"prob"}))
    binary.add(
        OUT, Batch(BATCH.x_cat, BATCH.x_num, Y[:, :2], MASK[:, :2]), torch.ones(2), COUNTS[:2]
    )
    assert binary.totals()[2].tolist() == [2.0, 2.0]


def test_only_the_present_tasks_count():
    stats = EpochStats(TASKS, frozenset({"prob"}))
    stats.add(OUT, BATCH, torch.ones(4), COUNTS, present=torch.tensor([True, False, True, False]))
    loss_sum, count, correct = stats.totals()
    assert correct.tolist() == [2.0, 0.0, 2.0, 0.0]
    assert count.tolist() == [3.0, 0.0, 3.0, 0.0]
    assert loss_sum.tolist() == [3.0, 0.0, 3.0, 0.0]


@pytest.mark.parametrize("chunk_rows", [1, 6, 1000])
def test_steps_reduced_in_chunks_give_the_sums_of_the_steps(monkeypatch, chunk_rows):
    monkeypatch.setattr(epoch_stats, "CHUNK_ROWS", chunk_rows)
    gen = torch.Generator().manual_seed(0)
    stats = EpochStats(TASKS, frozenset({"prob"}))
    expected = torch.zeros(3, len(TASKS))
    for step in range(5):
        rows = 3 + step
        out = {
            "logit": torch.randn(rows, generator=gen),
            "prob": torch.rand(rows, generator=gen),
            "cls": torch.randn(rows, 3, generator=gen),
            "reg": torch.randn(rows, generator=gen),
        }
        y = torch.stack(
            [
                torch.randint(0, 2, (rows,), generator=gen).float(),
                torch.randint(0, 2, (rows,), generator=gen).float(),
                torch.randint(0, 3, (rows,), generator=gen).float(),
                torch.randn(rows, generator=gen),
            ],
            1,
        )
        mask = torch.rand(rows, 4, generator=gen) > 0.3
        losses = torch.rand(4, generator=gen)
        present = None if step % 2 else torch.tensor([True, True, step < 3, True])
        one = EpochStats(TASKS, frozenset({"prob"}))  # a step reduced on its own
        batch = Batch(torch.zeros(rows, 0, dtype=torch.long), torch.zeros(rows, 0), y, mask)
        one.add(out, batch, losses, mask.sum(0).float(), present)
        expected += torch.stack(one.totals())
        stats.add(out, batch, losses, mask.sum(0).float(), present)
    assert torch.allclose(torch.stack(stats.totals()), expected)
    assert torch.equal(stats.totals()[1:][1], expected[2])  # counts of correct: exact
