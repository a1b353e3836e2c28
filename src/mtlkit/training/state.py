"""A fit's resumable state: what :meth:`Trainer.training_state
<mtlkit.training.trainer.Trainer.training_state>` holds, how a fit restores it, and how it is
saved (``torch.save`` written atomically, read back with ``weights_only=True``).

The state is the last epoch's weights, the optimizer's, scheduler's and strategy's states,
the random generators and the history, plus the settings a continued run must share with
the saved one; continuing it to a larger epoch budget gives what one longer fit gives.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path

import torch

from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import History
from mtlkit.files import atomic_write_bytes
from mtlkit.models.base import MTLModel
from mtlkit.training import distributed
from mtlkit.training.settings import TrainConfig
from mtlkit.training.strategies import Strategy


def snapshot(
    model: MTLModel,
    strategy: Strategy,
    history: History,
    settings: dict,
    optimizer: torch.optim.Optimizer,
    scheduler,
    generator: torch.Generator,
    random: dict,
) -> dict:
    """The state after the last epoch, less early stopping's (the trainer adds it);
    ``random``: :func:`random_states` of the same moment."""
    return {
        "settings": settings,
        "model": state_copy(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "strategy": strategy.state_dict(),
        "history": history.to_dict(),
        **random,
        "generator": generator.get_state(),
    }


def random_states(device: torch.device) -> dict:
    """This process's global generators (dropout's), and with several ranks every rank's,
    whose streams differ (see :func:`~mtlkit.training.distributed.rank_seed`): a collective,
    which every rank calls."""
    own = [torch.get_rng_state(), _cuda_rng(device)]
    rank_rng = distributed.all_gather(own) if distributed.world_size() > 1 else None
    return {"rng": own[0], "cuda_rng": own[1], "rank_rng": rank_rng}


def _cuda_rng(device: torch.device) -> torch.Tensor | None:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _restore_random(state: dict, seed: int, device: torch.device) -> None:
    """This rank's global generator as saved: its own stream when the run was saved by as
    many ranks, rank 0's (or one process's) on rank 0; a rank the saved run lacked (or a state
    saved before per-rank streams) starts a fresh stream derived from the seed and the epoch."""
    saved, n = state.get("rank_rng"), distributed.world_size()
    if saved is not None and len(saved) == n:
        cpu, cuda = saved[distributed.rank()]
    elif distributed.rank() == 0:
        cpu, cuda = state["rng"], state["cuda_rng"]
    else:
        torch.manual_seed(distributed.rank_seed(seed, salt=len(state["history"]["epochs"])))
        return
    torch.set_rng_state(cpu)
    if cuda is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda, device)


def restore(
    state: dict,
    settings: dict,
    model: MTLModel,
    strategy: Strategy,
    optimizer: torch.optim.Optimizer,
    scheduler,
    generator: torch.Generator,
) -> tuple[History, float, int, dict]:
    """Load a saved state into a fit whose resumable ``settings`` are those given; returns
    the restored history and the early-stopping state (best value, epochs since the best,
    best weights)."""
    if state["settings"] != settings:
        differs = sorted(k for k in settings if state["settings"].get(k) != settings[k])
        raise ConfigError(
            f"cannot continue this training run: its settings {differs} differ from the "
            "saved run's; only the number of epochs may change."
        )
    device = next(model.parameters()).device
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise ConfigError(
            f"cannot continue this training run: its saved weights do not fit the "
            f"{type(model).__name__} model (saved by an mtlkit whose layout of that model "
            "differs, e.g. single_task up to 6c82c21); start the fit again."
        ) from None
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    strategy.load_state_dict(state["strategy"])
    _restore_random(state, settings["seed"], device)
    generator.set_state(state["generator"])
    history = History.from_dict(state["history"])
    best_state = {k: v.to(device) for k, v in state["best_state"].items()}
    return history, float(state["best_value"]), int(state["since_best"]), best_state


def resumable_settings(cfg: TrainConfig, strategy: str, strategy_params: dict) -> dict:
    """The settings a continued run must share with the saved one: all but the epoch
    budget, the progress bars and the device."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ("epochs", "progress", "device")}
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    return {**settings, "strategy": strategy, "strategy_params": dict(strategy_params)}


def state_copy(model: torch.nn.Module) -> dict:
    """A copy of ``model.state_dict()`` that later training leaves alone: its tensors cloned
    (about 4x faster than ``copy.deepcopy`` of the state, which a fit takes every epoch)."""
    state = model.state_dict()
    copied = type(state)(
        (k, v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v))
        for k, v in state.items()
    )
    copied._metadata = copy.deepcopy(getattr(state, "_metadata", None))
    return copied


def save_torch(path: str | Path, value: object) -> None:
    """``torch.save`` of ``value`` (tensors, dicts, lists, numbers) to ``path``, atomically."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_torch(path: str | Path) -> dict:
    """What :func:`save_torch` wrote, on the CPU (tensors and plain values only)."""
    return torch.load(path, weights_only=True, map_location="cpu")
