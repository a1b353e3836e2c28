"""The one training loop: masked losses, a pluggable strategy, Adam, early stopping."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mtlkit.data.tensors import TensorData
from mtlkit.errors import ConfigError, MtlkitError
from mtlkit.evaluation.metrics import HIGHER_IS_BETTER, all_task_metrics
from mtlkit.models.base import MTLModel
from mtlkit.training.diagnostics import ConflictMonitor, probe_steps
from mtlkit.training.losses import masked_task_losses, output_to_scores
from mtlkit.training.strategies import Strategy, make_strategy
from mtlkit.validation import (
    check_choice,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
)

LR_SCHEDULES = (None, "cosine", "plateau")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> the GPU if torch sees one, else the CPU; a clear error for a device this
    machine does not have."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} was asked for, but this torch ({torch.__version__}) sees no "
            "CUDA GPU; use device='cpu' (or 'auto'), or install a CUDA build of torch."
        )
    if resolved.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}.")
    return resolved


class TrainingDiverged(MtlkitError):
    """A loss became NaN or infinite; the last good weights were restored."""


@dataclass
class TrainConfig:
    """Settings of one training run.

    ``monitor`` is the validation metric averaged over tasks that drives early stopping and
    checkpoint choice ("loss" by default; e.g. "roc_auc"). ``patience`` counts epochs without
    improvement before stopping (0 = never stop early). ``diagnostic_batches`` is how many
    evenly spaced batches per epoch measure task-gradient conflict and gate usage (0 = off).
    ``device`` is where training runs: "cpu" (default), "cuda", "cuda:1"..., or "auto" (the
    GPU when torch sees one, else the CPU). Data and model move there once per fit; results
    always come back as CPU arrays.
    """

    epochs: int = 50
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5
    monitor: str = "loss"
    grad_clip: float | None = None
    lr_schedule: str | None = None
    seed: int = 0
    progress: bool = True
    diagnostic_batches: int = 4
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_non_negative_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_float("lr", self.lr)
        check_non_negative_int("patience", self.patience)
        check_choice(
            "monitor", self.monitor, ["loss", "accuracy", "roc_auc", "pr_auc", "rmse", "mae", "r2"]
        )
        if self.grad_clip is not None:
            check_positive_float("grad_clip", self.grad_clip)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_non_negative_int("diagnostic_batches", self.diagnostic_batches)
        resolve_device(self.device)
        if self.weight_decay < 0:
            check_positive_float("weight_decay", self.weight_decay)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    """What happened in training, one record per epoch; JSON-ready via :meth:`to_dict`.

    Each record in ``epochs`` is a dict::

        {
          "epoch": 1,                       # 1-based
          "time_s": 0.84,                   # wall-clock seconds of the epoch (train + val)
          "lr": 0.001,                      # learning rate used in the epoch
          "train": {task: {"loss": .., "accuracy": ..}},   # means over the labelled rows
                                            # the epoch trained (no accuracy for regression)
          "val": {task: {"loss": .., "roc_auc": .., ...}}, # evaluation.metrics per task
          "task_weights": {task: w} | None, # the strategy's task weights after the epoch
                                            # (for aggregators: the mean weight given to
                                            # each task's gradient over the epoch)
          "diagnostics": {                  # on the probed batches (TrainConfig.diagnostic_batches)
            "grad_cosine": c,               # mean cosine of task gradients on the shared
                                            # parameters, averaged over task pairs
            "grad_cosine_pairs": {"a|b": c},
            "grad_norm": {task: n},         # mean gradient norm per task
            "grad_norm_ratio": r,           # largest / smallest mean task gradient norm
            "expert_utilization": {gate: [mean weight per expert]},  # gated models only
          } | None,
        }

    Values that could not be measured are NaN in memory and ``null`` in :meth:`to_dict`.
    ``best_epoch`` is the restored epoch; ``stopped_early`` says if patience ran out.
    """

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    def series(self, split: str, task: str, metric: str) -> list[float]:
        """One metric of one task over epochs, e.g. ``series("val", "income", "loss")``."""
        return [_nan_if_none(e[split][task].get(metric)) for e in self.epochs]

    def diagnostic(self, name: str) -> list:
        """One diagnostic over epochs, e.g. ``diagnostic("grad_cosine")`` (NaN when off)."""
        return [_nan_if_none((e.get("diagnostics") or {}).get(name, math.nan)) for e in self.epochs]

    def to_dict(self) -> dict:
        """Strict-JSON data (NaN and infinities become None)."""
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(
            epochs=list(data["epochs"]),
            best_epoch=int(data["best_epoch"]),
            stopped_early=bool(data["stopped_early"]),
        )


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _nan_if_none(value):
    return math.nan if value is None else value


class Trainer:
    """Train an :class:`MTLModel` on :class:`TensorData` splits.

    Each epoch: the strategy's batches, masked task losses, the strategy's backward, an
    optimizer step; then one validation pass. The best epoch (by ``config.monitor``) is kept
    and restored at the end.
    """

    def __init__(
        self,
        model: MTLModel,
        config: TrainConfig | None = None,
        strategy: str | Strategy = "joint",
        checkpoint_path: str | Path | None = None,
    ) -> None:
        self.model = model
        self.config = config or TrainConfig()
        self.tasks = list(model.schema.tasks)
        self.task_names = [t.name for t in self.tasks]
        self.strategy = make_strategy(strategy)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.history = History()

    # ---- evaluation -------------------------------------------------------------------
    @torch.inference_mode()
    def predict_scores(self, data: TensorData, batch_size: int = 16384) -> dict[str, np.ndarray]:
        """Probabilities (classification) or predictions (regression) per task."""
        self.model.eval()
        device = next(self.model.parameters()).device
        parts: dict[str, list[torch.Tensor]] = {t.name: [] for t in self.tasks}
        for batch in data.batches(batch_size):
            out = self.model(batch.x_cat.to(device), batch.x_num.to(device))
            for spec in self.tasks:
                is_prob = spec.name in self.model.probability_outputs
                scores = output_to_scores(spec, out[spec.name], is_prob)
                parts[spec.name].append(scores.cpu())
        return {t: torch.cat(p).numpy() for t, p in parts.items()}

    def evaluate(self, data: TensorData) -> dict[str, dict[str, float]]:
        """Metrics per task on the labelled rows of ``data``."""
        scores = self.predict_scores(data)
        return all_task_metrics(self.tasks, data.y.numpy(), data.mask.numpy(), scores)

    # ---- training ---------------------------------------------------------------------
    def fit(self, train: TensorData, val: TensorData) -> History:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        device = resolve_device(cfg.device)
        self.model.to(device)
        train = train.to(device)
        self.strategy.setup(self.model, len(self.tasks))
        groups = [{"params": list(self.model.parameters()), "weight_decay": cfg.weight_decay}]
        if self.strategy.parameters():
            groups.append({"params": self.strategy.parameters(), "weight_decay": 0.0})
        # fused: one kernel for all parameters; faster than the default per-parameter loop
        # (and than foreach) on a CPU as on a GPU.
        optimizer = torch.optim.Adam(groups, lr=cfg.lr, fused=True)
        scheduler = self._scheduler(optimizer)
        sign = -1.0 if cfg.monitor in HIGHER_IS_BETTER else 1.0
        # Until an epoch finishes, the initial weights are the last good ones.
        best_value, since_best = math.inf, 0
        best_state = copy.deepcopy(self.model.state_dict())
        bar = tqdm(range(1, cfg.epochs + 1), desc="epochs", disable=not cfg.progress, leave=False)
        for epoch in bar:
            start = time.perf_counter()
            train_stats, diagnostics = self._train_epoch(
                train, optimizer, generator, epoch, best_state
            )
            val_metrics = self.evaluate(val)
            weights = self.strategy.task_weights()
            record = {
                "epoch": epoch,
                "time_s": time.perf_counter() - start,
                "lr": optimizer.param_groups[0]["lr"],
                "train": train_stats,
                "val": val_metrics,
                "task_weights": None if weights is None else dict(zip(self.task_names, weights)),
                "diagnostics": diagnostics,
            }
            self.history.epochs.append(record)
            value = sign * _mean_metric(val_metrics, cfg.monitor)
            if value < best_value or self.history.best_epoch == 0:
                best_value, since_best = value, 0
                best_state = copy.deepcopy(self.model.state_dict())
                self.history.best_epoch = epoch
                self._save_checkpoint(best_state)
            else:
                since_best += 1
            bar.set_postfix(val_loss=f"{_mean_metric(val_metrics, 'loss'):.4f}")
            if scheduler is not None:
                scheduler.step(value) if cfg.lr_schedule == "plateau" else scheduler.step()
            if cfg.patience and since_best >= cfg.patience:
                self.history.stopped_early = True
                break
        bar.close()
        self.model.load_state_dict(best_state)
        return self.history

    def _train_epoch(
        self,
        train: TensorData,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        epoch: int,
        best_state: dict,
    ) -> tuple[dict[str, dict[str, float]], dict | None]:
        """One pass over the strategy's steps; returns train stats and the diagnostics.

        A step's statistics count only the tasks it trains (``present``: labelled in the
        batch, and the active task when the strategy names one). The model's auxiliary loss,
        when it has one, goes to the strategy as ``extra`` and is added unweighted.
        """
        self.model.train()
        n_tasks = len(self.tasks)
        device = train.y.device
        loss_sum = torch.zeros(n_tasks, device=device)
        correct = torch.zeros(n_tasks, device=device)
        count = torch.zeros(n_tasks, device=device)
        clip = self.config.grad_clip
        steps = list(self.strategy.batches(train, self.config.batch_size, generator))
        probes = probe_steps(len(steps), self.config.diagnostic_batches)
        monitor = ConflictMonitor(self.task_names, self.model.shared_parameters())
        for i, (batch, active) in enumerate(steps):
            out = self.model(batch.x_cat, batch.x_num)
            losses = masked_task_losses(
                self.tasks, out, batch.y, batch.mask, self.model.probability_outputs
            )
            if not torch.isfinite(losses).all():
                self._diverged(losses, epoch, best_state)
            labelled = batch.mask.any(0)
            present = labelled.clone()
            if active is not None:
                present[:active] = False
                present[active + 1 :] = False
            if i in probes:
                monitor.measure(losses, labelled, self.model.gate_weights())
            optimizer.zero_grad(set_to_none=True)
            self.strategy.backward(losses, present, self.model.auxiliary_loss())
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            optimizer.step()
            with torch.no_grad():
                n = batch.mask.sum(0) * present
                loss_sum += losses.detach() * n
                count += n
                correct += self._correct(out, batch) * present
        self.strategy.end_epoch(loss_sum / count.clamp(min=1))
        stats = {}
        for k, spec in enumerate(self.tasks):
            c = max(float(count[k]), 1.0)
            stats[spec.name] = {"loss": float(loss_sum[k]) / c}
            if spec.kind != "regression":
                stats[spec.name]["accuracy"] = float(correct[k]) / c
        return stats, (monitor.summary() if probes else None)

    def _correct(self, out: dict[str, torch.Tensor], batch) -> torch.Tensor:
        """Correct predictions per task on the batch's labelled rows (classification)."""
        hits = []
        for k, spec in enumerate(self.tasks):
            o = out[spec.name]
            if spec.kind == "binary":
                threshold = 0.5 if spec.name in self.model.probability_outputs else 0.0
                pred = (o > threshold).to(batch.y.dtype)
            elif spec.kind == "multiclass":
                pred = o.argmax(-1).to(batch.y.dtype)
            else:
                hits.append(torch.zeros((), device=batch.y.device))
                continue
            hits.append(((pred == batch.y[:, k]) & batch.mask[:, k]).sum())
        return torch.stack(hits).to(torch.float32)

    def _diverged(self, losses: torch.Tensor, epoch: int, best_state: dict) -> None:
        bad = [t.name for t, v in zip(self.tasks, losses.tolist()) if not math.isfinite(v)]
        self.model.load_state_dict(best_state)
        best = self.history.best_epoch
        kept = (
            f"the weights of epoch {best} were restored"
            if best
            else "the initial weights were restored"
        )
        raise TrainingDiverged(
            f"the loss of task(s) {bad} became non-finite in epoch {epoch}; {kept}. "
            "Try a lower learning rate (lr), gradient clipping (grad_clip), or check the "
            "data for extreme values."
        )

    def _scheduler(self, optimizer: torch.optim.Optimizer):
        cfg = self.config
        if cfg.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
        if cfg.lr_schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=2)
        return None

    def _save_checkpoint(self, state: dict) -> None:
        if self.checkpoint_path is None:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.checkpoint_path)


def _mean_metric(metrics: dict[str, dict[str, float]], name: str) -> float:
    """Mean of one metric over the tasks that report it (NaN-safe); +inf if none does."""
    values = [m[name] for m in metrics.values() if name in m and math.isfinite(m[name])]
    return float(np.mean(values)) if values else math.inf
