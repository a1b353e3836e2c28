"""Data-parallel training on ``torch.distributed``: the collectives of the trainer and strategies.

Every rank holds the same model and trains its share of each batch (see ``shard`` of
:class:`~mtlkit.data.protocol.EncodedData`, in memory or streamed). One rule makes
every strategy give every rank the update one process would make on the whole batch:

- **losses**: a strategy gets the *global* task losses (:func:`global_losses`): their value is
  the mean over the whole batch's labelled rows, identical on every rank, so weights computed
  from it agree; their graph reaches this rank's rows only;
- **gradients**: after ``Strategy.backward`` each model parameter's ``.grad`` holds this rank's
  share of the batch's gradient, and the trainer sums the shares over the ranks
  (:func:`reduce_gradients`: the all-reduce DistributedDataParallel's reducer performs, done
  once per step after the strategy, because strategies run several backward passes and
  Jacobians in one step). A strategy's own parameters get gradients from the global losses,
  equal on every rank; they are averaged, which keeps them equal;
- **per-task gradients**: :func:`mtlkit.training.diagnostics.task_gradients` sums its rows over
  the ranks (:func:`all_reduce`), as :func:`global_jac_to_grad` does torchjd's Jacobians: they
  are the gradients of the global losses. A direction a strategy computes from them is global,
  so it is added to ``.grad`` as this rank's share (:func:`share`: a ``1 / world_size`` part).

With one process every function here is the identity.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torchjd.autojac import jac_to_grad

from mtlkit.errors import ConfigError, MtlkitError
from mtlkit.processes import LAUNCHER_PID, end_with_parent, launcher_pid

T = TypeVar("T")

#: How long a rank waits in a collective for the others before it fails (a rank that died).
TIMEOUT = datetime.timedelta(minutes=10)


def world_size() -> int:
    """Processes training together (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes files (rank 0)."""
    return rank() == 0


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or ``mtlkit train --nproc``) as one
    of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_environment() -> None:
    """Join the process group ``torchrun`` describes in the environment: NCCL when this rank
    has a GPU (each rank its own, ``LOCAL_RANK``), Gloo on the CPU. The rank ends with the
    process that started it (``torchrun``'s agent, the launcher of ``mtlkit train --nproc``),
    as a grid's workers do (:func:`mtlkit.processes.end_with_parent`). Idempotent."""
    if not launched() or dist.is_initialized():
        return
    end_with_parent(launcher_pid())  # no orphaned rank training on after its launcher died
    if torch.cuda.is_available():
        local, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > gpus:
            raise ConfigError(
                f"{os.environ['LOCAL_WORLD_SIZE']} processes on this machine, but it has {gpus} "
                f"GPU(s): start at most {gpus} (--nproc / --nproc-per-node), one GPU each."
            )
        torch.cuda.set_device(local)
        backend = "nccl"
    else:
        backend = "gloo"
    join_group(backend, timeout=TIMEOUT)


def join_group(backend: str, **options: object) -> None:
    """``dist.init_process_group(backend, **options)``, after importing ``torch._dynamo``.

    Training imports it anyway (the first ``torch.optim`` optimizer does); imported after
    the process group exists, it keeps 10 references to the group that
    ``destroy_process_group`` cannot drop (measured with torch 2.13), so the group and Gloo's
    three threads live on until the interpreter tears itself down, where a rank was seen to
    abort ("terminate called without an active exception") after a successful training.
    Imported first, the group and its threads end in ``destroy_process_group``."""
    import torch._dynamo  # noqa: F401

    dist.init_process_group(backend, **options)


def from_main(compute: Callable[[], T]) -> T:
    """``compute()`` run by rank 0 alone, its result sent to every rank (e.g. a preprocessor
    fitted in one pass over a stream)."""
    if world_size() == 1:
        return compute()
    box = [compute() if is_main() else None]
    dist.broadcast_object_list(box, 0)
    return box[0]


@contextmanager
def process_group() -> Iterator[None]:
    """Inside: this process is a rank of ``torchrun``'s process group, when it was launched as
    one (see :func:`init_from_environment`); nothing otherwise."""
    if not launched():
        yield
        return
    init_from_environment()
    try:
        yield
    except RuntimeError as err:
        if not lost_the_others(err):
            raise
        raise MtlkitError(
            f"rank {rank()} lost the other ranks ({_first_line(err)}): one of them failed or "
            "was stopped (its own error, if it printed one, is above)."
        ) from None
    finally:
        dist.destroy_process_group()


def lost_the_others(err: BaseException) -> bool:
    """Whether ``err`` is a collective that failed because another rank is gone (Gloo raises
    a plain ``RuntimeError`` naming its source file, NCCL and the stores a ``DistError``)."""
    text = str(err)
    return isinstance(err, dist.DistError) or "gloo" in text or "NCCL" in text


def _first_line(err: BaseException) -> str:
    """The error's first line without the C++ source location Gloo puts in front of it."""
    line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    line = re.sub(r"^\[[^\]]*\.(cc|cpp|h|hpp):\d+\]\s*", "", line)
    return line.split(". ")[0][:120]


def launch(nproc: int, argv: Sequence[str]) -> None:
    """Run ``python -m mtlkit ARGV`` in ``nproc`` ranks on this machine with torch's own
    launcher (``torchrun --standalone --nproc-per-node NPROC -m mtlkit ARGV``). A rank that
    fails stops the others; the error says which rank and how."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    config = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "-m", "mtlkit"]
    )
    config.training_script_args = list(argv)  # not parsed: torchrun's options would match
    os.environ[LAUNCHER_PID] = str(os.getpid())  # the ranks end with this process
    for name in list(logging.root.manager.loggerDict):  # its log lines repeat the error below
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(config)
    except ChildFailedError as err:
        failed = "; ".join(
            f"rank {r} (pid {f.pid}) "
            + (
                f"was killed by {f.signal_name()}"
                if f.exitcode < 0
                else f"exited with {f.exitcode}"
            )
            for r, f in sorted(err.failures.items())
        )
        raise MtlkitError(
            f"data-parallel training failed: {failed}; the other ranks were stopped (the "
            "rank's own error, if it printed one, is above)."
        ) from None
    finally:
        del os.environ[LAUNCHER_PID]


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks, as a new tensor (``tensor`` with one process)."""
    if world_size() == 1:
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total


def broadcast(value: float) -> float:
    """Rank 0's ``value`` on every rank (e.g. an early-stopping decision)."""
    if world_size() == 1:
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, 0)
    return float(tensor.item())


class _GlobalSum(torch.autograd.Function):
    """Forward: the sum over the ranks; backward: the gradient passes to this rank's share."""

    @staticmethod
    def forward(ctx, shares: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        total = shares.detach().clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return grad


def global_losses(shares: torch.Tensor) -> torch.Tensor:
    """The task losses of the whole batch from each rank's ``shares`` (its rows' losses divided
    by the batch's labelled-row counts over all ranks): the value is their sum over the ranks,
    the same on every rank; the gradient reaches this rank's shares only."""
    return shares if world_size() == 1 else _GlobalSum.apply(shares)


def share(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global quantity that the ranks' parts sum to (``tensor / W``)."""
    n = world_size()
    return tensor if n == 1 else tensor / n


def reduce_gradients(summed: Iterable[nn.Parameter], averaged: Iterable[nn.Parameter]) -> None:
    """Sum the ``.grad`` shares of ``summed`` (the model) and average those of ``averaged``
    (the strategy's parameters) over the ranks, in one all-reduce. Parameters without a
    gradient are left out; which parameters have one must be the same on every rank (it is:
    it depends on the tasks a step trains, which every rank agrees on)."""
    n = world_size()
    if n == 1:
        return
    summed = [p for p in summed if p.grad is not None]
    averaged = [p for p in averaged if p.grad is not None]
    params = [*summed, *averaged]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    cut = sum(p.numel() for p in summed)
    flat[cut:] /= n
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(g.view_as(p.grad))


def rank_seed(seed: int, salt: int = 0) -> int:
    """The seed of this rank's global generator (dropout's masks, MMoE's gate noise).

    Rank 0 (and one process) keeps ``seed``; every other rank gets a seed derived from
    ``(seed, rank, salt)`` by NumPy's ``SeedSequence``, so the ranks draw different masks for
    their different rows instead of repeating rank 0's. ``salt`` gives a rank a fresh stream
    when its saved one is not available (a run continued with another number of ranks)."""
    r = rank()
    if r == 0 and salt == 0:
        return seed
    return int(np.random.SeedSequence([seed, r, salt]).generate_state(1, np.uint64)[0] >> 1)


def all_gather(value: T) -> list[T]:
    """Every rank's ``value`` (any picklable object), in rank order, on every rank
    (``[value]`` with one process)."""
    if world_size() == 1:
        return [value]
    values: list = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def broadcast_parameters(params: Sequence[torch.Tensor]) -> None:
    """Rank 0's values of ``params`` on every rank (as DistributedDataParallel starts)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, 0)


def global_jac_to_grad(params: Sequence[nn.Parameter], aggregator) -> torch.Tensor | None:  # noqa: ANN001
    """torchjd's ``jac_to_grad`` on the Jacobians of the global losses: the ``.jac`` shares of
    ``params`` are summed over the ranks, aggregated, and the (global) result is added to
    ``.grad`` as this rank's share. Returns the aggregator's task weights, if it has some."""
    n = world_size()
    if n == 1:
        return jac_to_grad(params, aggregator)
    for p in params:
        dist.all_reduce(p.jac)
    before = [p.grad for p in params]
    for p in params:
        p.grad = None
    weights = jac_to_grad(params, aggregator)
    for p, g in zip(params, before):
        p.grad = share(p.grad) if g is None else g + share(p.grad)
    return weights
