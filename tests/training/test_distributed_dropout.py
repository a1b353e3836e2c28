"""Dropout with two Gloo ranks: each rank draws its own masks (not rank 0's again), and a run
continued from its saved training state trains on as the uninterrupted run does, every rank's
generator included."""

from __future__ import annotations

import datetime
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.data.tensors import TensorData
from mtlkit.models import create
from mtlkit.training import distributed
from mtlkit.training.settings import TrainConfig
from mtlkit.training.trainer import Trainer

WORLD = 2
#: Equal shares (20 / 20 rows of a 40-row batch): with one stream, rank 1 repeated rank 0's masks.
ROWS, BATCH, EPOCHS = 160, 40, 3


def _data() -> tuple[TensorData, TensorData]:
    g = torch.Generator().manual_seed(0)
    n = ROWS + 40
    x_cat = torch.randint(0, 5, (n, 2), generator=g)
    x_num = torch.randn(n, 4, generator=g)
    y = torch.stack([(x_num[:, 0] > 0).float(), (x_num[:, 1] > 0).float()], dim=1)
    mask = torch.ones(n, 2, dtype=torch.bool)
    return (
        TensorData(x_cat[:ROWS], x_num[:ROWS], y[:ROWS], mask[:ROWS]),
        TensorData(x_cat[ROWS:], x_num[ROWS:], y[ROWS:], mask[ROWS:]),
    )


def _trainer(epochs: int) -> Trainer:
    schema = Schema((5, 5), 4, (TaskSpec("a", "binary"), TaskSpec("b", "binary")))
    torch.manual_seed(0)
    model = create("shared_bottom", schema, bottom_hidden=(16,), tower_hidden=(8,), dropout=0.5)
    config = TrainConfig(
        epochs=epochs, batch_size=BATCH, lr=0.01, patience=0, progress=False, seed=0
    )
    return Trainer(model, config, "ew")


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _worker(rank: int, init_file: str, out: str) -> None:
    """Rank ``rank`` saves to ``out.RANK``: the dropout masks of its first step, the weights
    of an uninterrupted fit and those of a fit stopped after 2 epochs and continued to 3."""
    torch.set_num_threads(1)
    distributed.join_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        train, val = _data()
        masks: list[torch.Tensor] = []
        whole = _trainer(EPOCHS)
        dropout = next(m for m in whole.model.modules() if isinstance(m, nn.Dropout))
        hook = dropout.register_forward_hook(
            lambda m, i, o: masks.append(torch.stack([i[0] != 0, o == 0])) if not masks else None
        )
        whole.fit(train, val)
        hook.remove()
        first = _trainer(EPOCHS - 1)
        first.fit(train, val)
        continued = _trainer(EPOCHS)
        continued.fit(train, val, state=first.training_state())
        torch.save(
            {"mask": masks[0], "whole": _weights(whole), "continued": _weights(continued)},
            f"{out}.{rank}",
        )
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("dropout")
    out = folder / "out.pt"
    context = mp.start_processes(
        _worker, args=(str(folder / "init"), str(out)), nprocs=WORLD, join=False,
        start_method="spawn",
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two ranks did not finish in 180 s")
    return [torch.load(f"{out}.{r}", weights_only=True) for r in range(WORLD)]


def test_each_rank_draws_its_own_dropout_masks(ranks):
    (live, dropped), (live_1, dropped_1) = ranks[0]["mask"], ranks[1]["mask"]
    assert live.shape == live_1.shape and live.shape[0] == BATCH // WORLD
    assert 0.3 < dropped[live].float().mean() < 0.7  # dropout 0.5 dropped half of them
    both = live & live_1  # units alive on both ranks' rows: one stream dropped the same ones
    assert both.sum() > 50
    assert (dropped[both] != dropped_1[both]).float().mean() > 0.25


def test_a_continued_run_trains_as_the_uninterrupted_one(ranks):
    for rank in ranks:
        for name, weight in rank["whole"].items():
            torch.testing.assert_close(rank["continued"][name], weight, rtol=0, atol=1e-6)


def test_the_ranks_keep_equal_weights(ranks):
    for name, weight in ranks[0]["whole"].items():
        torch.testing.assert_close(ranks[1]["whole"][name], weight, rtol=0, atol=1e-6)


def test_one_process_keeps_its_seed():
    assert distributed.rank_seed(7) == 7
    assert distributed.rank_seed(7, salt=1) != 7
