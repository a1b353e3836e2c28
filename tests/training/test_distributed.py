"""Data-parallel training: two Gloo processes make the updates of one process on the same
global batches, for every registered strategy (weighted sums, learned weights, GradNorm's
gradient norms, torchjd aggregators, double sampling, alternating steps, random draws), with a
sparsely labelled task and ranks whose shares of a batch differ by a row."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.data.tensors import TensorData
from mtlkit.models import create
from mtlkit.training import distributed
from mtlkit.training.settings import TrainConfig
from mtlkit.training.strategies import STRATEGIES as REGISTERED
from mtlkit.training.trainer import Trainer

#: Every registered strategy, and GradDrop on shared_bottom's representation ("@": the model).
STRATEGIES = [*REGISTERED.names(), "graddrop@shared_bottom"]
#: Settings that reach a strategy's later phase within the test's epochs.
PARAMS = {"stch": {"warmup_epochs": 1}}
#: Strategies whose task weights are their random draws alone (RLW on the losses, RGW on the
#: gradients), trained once more with dropout.
DRAWN = ["rlw", "random"]
DROPOUT = 0.3
WORLD = 2
#: 5 steps per epoch (alternating: more); a batch of 45 rows is shared 22 / 23 by the two ranks.
ROWS, BATCH, EPOCHS = 192, 45, 3


def _data(masked_value: float) -> tuple[TensorData, TensorData]:
    """Two binary tasks and a regression; task b is labelled on one row in 16 (so that a
    rank's share of a batch often has none), task c on every third row. ``masked_value``
    fills unlabelled rows' labels."""
    g = torch.Generator().manual_seed(0)
    n = ROWS + 64
    x_cat = torch.randint(0, 5, (n, 2), generator=g)
    x_num = torch.randn(n, 4, generator=g)
    y = torch.stack(
        [
            (x_num[:, 0] > 0).float(),
            (x_num[:, 1] + x_num[:, 0] > 0).float(),
            x_num[:, 2] * 2 + 0.1 * torch.randn(n, generator=g),
        ],
        dim=1,
    )
    mask = torch.ones(n, 3, dtype=torch.bool)
    mask[:, 1] = torch.arange(n) % 16 == 0
    mask[:, 2] = torch.arange(n) % 3 == 0
    y = torch.where(mask, y, torch.full_like(y, masked_value))
    train = TensorData(x_cat[:ROWS], x_num[:ROWS], y[:ROWS], mask[:ROWS])
    val = TensorData(x_cat[ROWS:], x_num[ROWS:], y[ROWS:], mask[ROWS:])
    return train, val


def _schema() -> Schema:
    tasks = (TaskSpec("a", "binary"), TaskSpec("b", "binary"), TaskSpec("c", "regression", 1))
    return Schema((5, 5), 4, tasks)


def _fit(strategy: str, masked_value: float, device: str = "cpu", dropout: float = 0.0) -> Trainer:
    """A trainer after training (the ranks draw the permutation one process draws, so the
    global batches are the same)."""
    train, val = _data(masked_value)
    strategy, _, family = strategy.partition("@")
    model = _model(family or "mmoe", dropout)
    config = TrainConfig(
        epochs=EPOCHS,
        batch_size=BATCH,
        lr=0.01,
        weight_decay=0.05,  # Adam ignores a gradient off by a constant factor; L2 does not
        patience=0,
        progress=False,
        seed=0,
        device=device,
    )
    trainer = Trainer(model, config, strategy, PARAMS.get(strategy))
    trainer.fit(train, val)
    return trainer


def _train(strategy: str, masked_value: float, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The model's weights after training."""
    model = _fit(strategy, masked_value, device).model
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _drawn(strategy: str, device: str = "cpu") -> list:
    """The task weights of each epoch, trained with dropout."""
    return [e.task_weights for e in _fit(strategy, 0.0, device, DROPOUT).history.epochs]


def _worker(rank: int, init_file: str, out: str, backend: str = "gloo") -> None:
    """Rank ``rank``: rank 0 saves every strategy's weights to ``out``, every rank the task
    weights of :data:`DRAWN` trained with dropout to ``out.RANK``, and the names of its
    threads once the process group is destroyed to ``out.RANK.threads``."""
    torch.set_num_threads(1)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    distributed.join_group(
        backend,
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        device = "cuda" if backend == "nccl" else "cpu"
        weights = {name: _train(name, 7.5, device) for name in STRATEGIES}
        torch.save({name: _drawn(name, device) for name in DRAWN}, f"{out}.{rank}")
        if rank == 0:
            torch.save(weights, out)
    finally:
        dist.destroy_process_group()
    Path(f"{out}.{rank}.threads").write_text("\n".join(_thread_names()))


def _thread_names() -> list[str]:
    """The names of this process's threads (Linux; none elsewhere)."""
    tasks = Path("/proc/self/task")
    return [(t / "comm").read_text().strip() for t in tasks.iterdir()] if tasks.is_dir() else []


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[dict, list[dict], list[list[str]]]:
    """Rank 0's weights per strategy, each rank's task weights of :data:`DRAWN`, and each
    rank's threads after it destroyed the process group."""
    folder = tmp_path_factory.mktemp("ddp")
    out = folder / "weights.pt"
    context = mp.start_processes(
        _worker,
        args=(str(folder / "init"), str(out)),
        nprocs=WORLD,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 300
    while not context.join(timeout=5):  # True once every rank exited (raises if one failed)
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two ranks did not finish in 300 s")
    drawn = [torch.load(f"{out}.{r}", weights_only=True) for r in range(WORLD)]
    threads = [Path(f"{out}.{r}.threads").read_text().split() for r in range(WORLD)]
    return torch.load(out, weights_only=True), drawn, threads


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_two_processes_make_the_updates_of_one(two_ranks, strategy):
    one = _train(strategy, masked_value=0.0)
    two = two_ranks[0][strategy]
    initial = _initial(strategy)
    moved = max((one[k] - initial[k]).abs().max().item() for k in one)
    assert moved > 1e-3  # training really changed the weights
    for name, value in one.items():
        # The ranks' unlabelled rows held 7.5, this process's 0: masked labels count for nothing.
        torch.testing.assert_close(two[name], value, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("strategy", DRAWN)
def test_dropout_leaves_a_strategys_draws_those_of_one_process(two_ranks, strategy):
    """Dropout draws masks per row from torch's global generator, so ranks with unequal
    shares of a batch (22 and 23 rows) consume it unequally, and neither as one process
    does; a strategy's draws come from its own stream and stay those of one process."""
    one = _drawn(strategy)
    assert len({str(w) for w in one}) == EPOCHS  # weights drawn anew: a different mean each epoch
    for rank in range(WORLD):
        assert len(two_ranks[1][rank][strategy]) == len(one)
        for mine, theirs in zip(two_ranks[1][rank][strategy], one):
            assert mine.keys() == theirs.keys()
            for task, value in mine.items():
                assert value == pytest.approx(theirs[task], abs=1e-6), (rank, task)


def test_no_gloo_thread_outlives_the_process_group(two_ranks):
    """Gloo's threads end in ``destroy_process_group`` (torch._dynamo, imported by the first
    optimizer after the group was made, kept the group alive until the interpreter's
    teardown, where a rank once aborted: see ``distributed.join_group``)."""
    for names in two_ranks[2]:
        assert not [n for n in names if "gloo" in n], names


def _model(family: str, dropout: float = 0.0):
    torch.manual_seed(0)
    if family == "shared_bottom":
        return create(family, _schema(), bottom_hidden=(8,), tower_hidden=(4,), dropout=dropout)
    return create(
        family, _schema(), n_experts=2, expert_hidden=(8,), tower_hidden=(4,), dropout=dropout
    )


def _initial(strategy: str) -> dict[str, torch.Tensor]:
    return _model(strategy.partition("@")[2] or "mmoe").state_dict()


def test_the_ranks_shares_of_each_batch_make_the_one_process_batch():
    train, _ = _data(0.0)
    data = train.subset(torch.arange(190))  # 190 = 3 batches of 64 less 2 rows
    whole = list(data.batches(64, shuffle=True, generator=torch.Generator().manual_seed(1)))
    shares = [
        list(data.shard(r, 3).batches(64, shuffle=True, generator=torch.Generator().manual_seed(1)))
        for r in range(3)
    ]
    assert (
        [len(s) for s in shares]
        == [3, 3, 3]
        == [data.shard(r, 3).num_batches(64) for r in range(3)]
    )
    for k, batch in enumerate(whole):
        joined = torch.cat([s[k].x_num for s in shares])
        assert torch.equal(joined, batch.x_num)
    # A last batch with fewer rows than ranks is skipped, so no rank gets an empty step.
    assert data.shard(0, 3).num_batches(188) == 1 and data.num_batches(188) == 2
