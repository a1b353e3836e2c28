"""The one training loop: masked losses, a pluggable strategy, Adam, early stopping."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mtlkit.data.protocol import EncodedData
from mtlkit.data.tensors import Batch
from mtlkit.errors import ConfigError, MtlkitError
from mtlkit.evaluation.metrics import all_task_metrics, check_reported, metric
from mtlkit.evaluation.run_record import Diagnostics, EpochRecord, History, is_converged
from mtlkit.models.base import MTLModel
from mtlkit.registry import Checked
from mtlkit.training import distributed, scoring
from mtlkit.training.allocator import keep_freed_memory
from mtlkit.training.calibration import Calibration
from mtlkit.training.diagnostics import ConflictMonitor, probe_steps, weighted_gradients
from mtlkit.training.distributed import share
from mtlkit.training.epoch_stats import EpochStats
from mtlkit.training.losses import masked_task_losses
from mtlkit.training.optim import dense_shared_parameters, make_optimizer
from mtlkit.training.schedules import make_scheduler, resumable, steps_on_metric
from mtlkit.training.scoring import SCORING_BATCH
from mtlkit.training.settings import DEFAULT_STRATEGY, TrainConfig, auto_batch_size
from mtlkit.training.state import (
    random_states,
    restore,
    resumable_settings,
    save_torch,
    snapshot,
    state_copy,
)
from mtlkit.training.strategies import Strategy, choose_strategy
from mtlkit.training.strategies.base import check_streams

#: A split to train or evaluate on: tensors in memory, or a stream read batch by batch.
Data = EncodedData


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


def fused_adam_supported(params: list[torch.Tensor]) -> bool:
    """Whether Adam's fused kernel (one kernel for all parameters; measured faster than the
    default per-parameter loop and than ``foreach`` on a CPU) can take ``params``: floating
    point, on CUDA or, from torch 2.4, on a CPU."""
    devices = {"cuda", "cpu"} if torch.__version__ >= "2.4" else {"cuda"}
    return all(p.is_floating_point() and p.device.type in devices for p in params)


class Trainer:
    """Train an :class:`MTLModel` on encoded splits (:class:`~mtlkit.data.protocol.EncodedData`).

    Each epoch: the strategy's batches, masked task losses, the strategy's backward, an
    optimizer step; then one validation pass. The best epoch (by ``config.monitor``) is kept
    and restored at the end. The strategy (a registered name and its settings, or the
    :func:`~mtlkit.training.strategies.choose_strategy` of them) is built for the model when
    ``fit`` starts.
    """

    def __init__(
        self,
        model: MTLModel,
        config: TrainConfig | None = None,
        strategy: str | Checked = DEFAULT_STRATEGY,
        strategy_params: dict | None = None,
        checkpoint_path: str | Path | None = None,
        state_path: str | Path | None = None,
    ) -> None:
        self.model = model
        self.config = config or TrainConfig()
        self.tasks = list(model.schema.tasks)
        self.task_names = [t.name for t in self.tasks]
        # A strategy checked by the caller (the estimator's check_params) is not checked again.
        if not isinstance(strategy, Checked):
            strategy = choose_strategy(strategy, strategy_params)
        self.chosen_strategy = strategy
        self.strategy_name, self.strategy_params = strategy.name, dict(strategy.params)
        self.strategy: Strategy | None = None
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        #: Where rank 0 saves :meth:`training_state` after every epoch (a killed run continues
        #: from it: ``fit(state=load_torch(state_path))``).
        self.state_path = Path(state_path) if state_path else None
        self.history = History()
        #: Post-hoc calibration applied to the scores (set by the estimator after training).
        self.calibration: Calibration | None = None

    # ---- evaluation -------------------------------------------------------------------
    def _scored(
        self, data: Data, batch_size: int, conditional: bool = False
    ) -> Iterator[tuple[Batch, dict[str, torch.Tensor]]]:
        """Each batch of ``data`` (in order) with the model's scores per task, on the CPU."""
        return scoring.scored(
            self.model, self.tasks, self.calibration, data, batch_size, conditional
        )

    def predict_scores(
        self, data: Data, batch_size: int = SCORING_BATCH, conditional: bool = False
    ) -> dict[str, np.ndarray]:
        """Probabilities (classification) or predictions (regression) per task; with
        ``conditional``, also the model's conditional funnel probabilities (e.g. ESMM's
        pCVR, see :meth:`~mtlkit.models.base.MTLModel.conditional_outputs`). ``data`` is
        read batch by batch (in memory or streamed)."""
        return scoring.predict_scores(self._scored(data, batch_size, conditional), self.tasks)

    def evaluate(self, data: Data, batch_size: int = SCORING_BATCH) -> dict[str, dict[str, float]]:
        """Metrics per task on the labelled rows of ``data``, read batch by batch."""
        return all_task_metrics(self.tasks, *self.labelled_scores(data, batch_size))

    def labelled_scores(
        self, data: Data, batch_size: int = SCORING_BATCH
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """The labels ``(N, T)`` (0 where missing), label masks ``(N, T)`` and scores per task
        of every row of ``data``, in one pass over it."""
        return scoring.labelled_scores(self._scored(data, batch_size), self.tasks)

    # ---- training ---------------------------------------------------------------------
    def fit(
        self,
        train: Data,
        val: Data,
        *,
        state: dict | None = None,
        on_epoch: Callable[[int, float], None] | None = None,
    ) -> History:
        """Train until early stopping or ``config.epochs``, then restore the best epoch.

        ``train`` and ``val`` are encoded splits, in memory or streamed
        (:class:`~mtlkit.data.protocol.EncodedData`). In data-parallel training (a ``torch.distributed`` process group,
        see :mod:`mtlkit.training.distributed`) each rank trains its share of every batch of
        ``train``, every rank validates on all of ``val``, and rank 0 alone writes the
        checkpoint.

        ``state`` is :meth:`training_state` of an earlier fit of the same model and settings
        that did not converge: training continues after its last epoch (weights, optimizer,
        strategy, random generators, best epoch and history restored), so continuing to a
        larger ``epochs`` gives what one longer fit gives. ``on_epoch(epoch, value)`` is
        called after every epoch with the monitored validation metric (mean over the tasks
        that report it); it may stop training by raising (a tuner's pruning does).
        """
        cfg = self.config
        check_reported(cfg.monitor, self.tasks)
        keep_freed_memory()
        # Dropout's masks: each rank its own stream (rank 0 that of one process); the batch
        # order (``generator``): one stream that every rank draws alike.
        torch.manual_seed(distributed.rank_seed(cfg.seed))
        generator = torch.Generator().manual_seed(cfg.seed)
        device = resolve_device(cfg.device)
        self.model.to(device)
        if not train.in_memory:
            check_streams(self.strategy_name)
        train = train.to(device)
        self.strategy = self.chosen_strategy.build(self.model)
        self.strategy.shuffle = cfg.shuffle
        self.strategy.seed(cfg.seed)  # its draws: alike on every rank, apart from dropout's
        distributed.broadcast_parameters([*self.model.parameters(), *self.strategy.parameters()])
        groups = [{"params": list(self.model.parameters()), "weight_decay": cfg.weight_decay}]
        if self.strategy.parameters():
            groups.append({"params": self.strategy.parameters(), "weight_decay": 0.0})
        params = [p for g in groups for p in g["params"]]
        optimizer = make_optimizer(
            self.model, self.strategy, cfg, groups, fused_adam_supported(params)
        )
        scheduler = self._scheduler(optimizer)
        sign = -1.0 if metric(cfg.monitor).higher_is_better else 1.0
        self.history = History(batch_size=cfg.batch_size or auto_batch_size(len(train)))
        if distributed.world_size() > 1:  # after the batch size, which is of the whole batch
            train = train.shard(distributed.rank(), distributed.world_size())
        # Until an epoch finishes, the initial weights are the last good ones.
        best_value, since_best = math.inf, 0
        best_state = state_copy(self.model)
        if state is not None:
            best_value, since_best, best_state = self._restore(
                state, optimizer, scheduler, generator
            )
        first = len(self.history.epochs) + 1
        bar = tqdm(
            range(first, cfg.epochs + 1), desc="epochs", disable=not cfg.progress, leave=False
        )
        for epoch in bar:
            start = time.perf_counter()
            train_stats, diagnostics, steps = self._train_epoch(
                train, optimizer, generator, epoch, best_state
            )
            val_metrics = self._validate(val, epoch, best_state)
            weights = self.strategy.task_weights()
            record = EpochRecord(
                epoch=epoch,
                time_s=time.perf_counter() - start,
                lr=optimizer.param_groups[0]["lr"],
                steps=steps,
                train=train_stats,
                val=val_metrics,
                task_weights=None if weights is None else dict(zip(self.task_names, weights)),
                diagnostics=diagnostics,
            )
            self.history.epochs.append(record)
            # Rank 0's value decides for every rank (their values agree up to float rounding).
            value = distributed.broadcast(sign * _mean_metric(val_metrics, cfg.monitor))
            if self.history.best_epoch == 0 or _improves(value, best_value):
                best_value, since_best = value, 0
                best_state = state_copy(self.model)
                self.history.best_epoch = epoch
                self._save_checkpoint(best_state)
            else:
                since_best += 1
            if on_epoch is not None:
                on_epoch(epoch, sign * value)
            bar.set_postfix(val_loss=f"{_mean_metric(val_metrics, 'loss'):.4f}")
            if scheduler is not None:
                scheduler.step(value) if steps_on_metric(cfg.lr_schedule) else scheduler.step()
            if cfg.patience and since_best >= cfg.patience:
                self.history.stopped_early = True
            if self.state_path is not None and resumable(cfg.lr_schedule):
                random = random_states(device)  # on every rank; rank 0 alone writes
                if distributed.is_main():
                    state = self._snapshot(optimizer, scheduler, generator, random)
                    state.update(
                        best_state=best_state, best_value=best_value, since_best=since_best
                    )
                    save_torch(self.state_path, state)
            if self.history.stopped_early:
                break
        bar.close()
        self.history.converged = is_converged(self.history, cfg.patience)
        self._state = self._snapshot(optimizer, scheduler, generator, random_states(device))
        self._state.update(best_state=best_state, best_value=best_value, since_best=since_best)
        self.model.load_state_dict(best_state)
        return self.history

    def _snapshot(
        self, optimizer: torch.optim.Optimizer, scheduler, generator, random: dict
    ) -> dict:
        """The state after the last epoch (see :meth:`training_state`), less early stopping's."""
        settings = resumable_settings(self.config, self.strategy_name, self.strategy_params)
        return snapshot(
            self.model,
            self.strategy,
            self.history,
            settings,
            optimizer,
            scheduler,
            generator,
            random,
        )

    def training_state(self) -> dict | None:
        """Everything :meth:`fit` needs to continue the last fit (its last epoch's weights,
        not the restored best), as tensors and plain values (``torch.save`` /
        ``torch.load(weights_only=True)``); None before a fit and for a cosine learning-rate
        schedule, whose shape depends on the epoch budget (retrain such runs instead)."""
        if not resumable(self.config.lr_schedule):
            return None
        return getattr(self, "_state", None)

    def _restore(
        self,
        state: dict,
        optimizer: torch.optim.Optimizer,
        scheduler,
        generator: torch.Generator,
    ) -> tuple[float, int, dict]:
        """Load a :meth:`training_state` into this fit; returns the early-stopping state."""
        ours = resumable_settings(self.config, self.strategy_name, self.strategy_params)
        self.history, best_value, since_best, best_state = restore(
            state, ours, self.model, self.strategy, optimizer, scheduler, generator
        )
        return best_value, since_best, best_state

    def _train_epoch(
        self,
        train: Data,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        epoch: int,
        best_state: dict,
    ) -> tuple[dict[str, dict[str, float]], Diagnostics | None, int]:
        """One pass over the strategy's steps; returns train stats, the diagnostics and the
        number of optimizer steps.

        A step's statistics count only the tasks it trains (``present``: labelled in the
        batch, and the active task when the strategy names one). The model's auxiliary loss
        and its label loss on the labels of the present tasks, when it has them, go to the
        strategy as ``extra`` and are added unweighted.

        The steps are read lazily (a stream never sits in memory). With several ranks, the
        losses, label counts and statistics are those of the whole batch (see
        :mod:`mtlkit.training.distributed`) and the gradients are summed after ``backward``.
        """
        self.model.train()
        n_tasks = len(self.tasks)
        device = next(self.model.parameters()).device
        clip = self.config.grad_clip
        batch_size = self.history.batch_size
        probes = probe_steps(
            self.strategy.num_steps(train, batch_size), self.config.diagnostic_batches
        )
        monitor = ConflictMonitor(self.task_names, dense_shared_parameters(self.model))
        task_index = torch.arange(n_tasks, device=device)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        trained = [p for p in self.model.parameters() if p.requires_grad]
        every_task = torch.ones(n_tasks, dtype=torch.bool, device=device)
        rows_labelled = _LabelledRows(train, n_tasks, device)
        stats = EpochStats(self.tasks, self.model.probability_outputs, device)
        steps = 0
        for i, (step_batch, active) in enumerate(
            self.strategy.batches(train, batch_size, generator)
        ):
            batch = step_batch if step_batch.y.device == device else step_batch.to(device)
            out = self.model(batch.x_cat, batch.x_num)
            local = rows_labelled(batch)
            # Python lists of a few floats: checks without further tensor operations.
            local_counts = local.tolist()
            counts = distributed.all_reduce(local)
            every_row = min(local_counts) == len(batch) > 0  # no label missing: no masking
            losses = distributed.global_losses(
                masked_task_losses(
                    self.tasks,
                    out,
                    batch.y,
                    None if every_row else batch.mask,
                    self.model.probability_outputs,
                    None if every_row and counts is local else counts,
                )
            )
            bad = [t.name for t, v in zip(self.tasks, losses.tolist()) if not math.isfinite(v)]
            if bad:
                self._diverged(bad, "loss", epoch, best_state)
            global_counts = local_counts if counts is local else counts.tolist()
            labelled = every_task if min(global_counts) > 0 else counts > 0
            present = labelled if active is None else labelled & (task_index == active)
            for param in params:  # optimizer.zero_grad(set_to_none=True), without its profiling
                param.grad = None
            self.strategy.before_step()
            extra = self._extra_loss(batch, None if present is every_task else present)
            per_task = None
            if i in probes:
                weights = self.strategy.linear_weights()
                reuse = weights is not None and extra is None and present is labelled
                per_task = monitor.measure(
                    losses, labelled, self.model.gate_weights(), trained if reuse else None
                )
            if per_task is None:
                self.strategy.backward(losses, present, None if extra is None else share(extra))
            else:  # the probe's per-task gradients make the step's (no further backward)
                weighted_gradients(trained, per_task, weights.tolist())
            distributed.reduce_gradients(self.model.parameters(), self.strategy.parameters())
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            optimizer.step()
            self.strategy.after_step(partial(self._step_losses, batch, counts))
            stats.add(out, batch, losses, counts, None if present is every_task else present)
            steps += 1
        loss_sum, count, correct = stats.totals()
        correct = distributed.all_reduce(correct)
        self.strategy.end_epoch(loss_sum / count.clamp(min=1))
        summary = {}
        for k, spec in enumerate(self.tasks):
            c = max(float(count[k]), 1.0)
            summary[spec.name] = {"loss": float(loss_sum[k]) / c}
            if spec.kind != "regression":
                summary[spec.name]["accuracy"] = float(correct[k]) / c
        return summary, (monitor.summary() if probes else None), steps

    def _extra_loss(self, batch: Batch, present: torch.Tensor | None) -> torch.Tensor | None:
        """The model's auxiliary loss plus its label loss on the labels this step trains (of
        the ``present`` tasks; None: of every task)."""
        mask = batch.mask if present is None else batch.mask & present
        terms = [self.model.auxiliary_loss(), self.model.label_loss(batch.y, mask)]
        terms = [t for t in terms if t is not None]
        return sum(terms[1:], terms[0]) if terms else None

    @torch.no_grad()
    def _step_losses(self, batch: Batch, counts: torch.Tensor) -> torch.Tensor:
        """The task losses of ``batch`` (of the whole batch over all ranks, whose labelled
        rows per task are ``counts``) under the current parameters."""
        out = self.model(batch.x_cat, batch.x_num)
        shares = masked_task_losses(
            self.tasks, out, batch.y, batch.mask, self.model.probability_outputs, counts
        )
        return distributed.all_reduce(shares)

    def _validate(self, val: Data, epoch: int, best_state: dict) -> dict:
        """The epoch's validation metrics; a non-finite prediction or validation loss means
        training diverged (the metrics could not even be computed)."""
        y, mask, scores = self.labelled_scores(val)
        bad = [t.name for t in self.tasks if not np.isfinite(scores[t.name]).all()]
        if bad:
            self._diverged(bad, "validation predictions", epoch, best_state)
        metrics = all_task_metrics(self.tasks, y, mask, scores)
        bad = [t for t, m in metrics.items() if not math.isfinite(m.get("loss", 0.0))]
        if bad:
            self._diverged(bad, "validation loss", epoch, best_state)
        return metrics

    def _diverged(self, bad: list[str], what: str, epoch: int, best_state: dict) -> None:
        self.model.load_state_dict(best_state)
        best = self.history.best_epoch
        kept = (
            f"the weights of epoch {best} were restored"
            if best
            else "the initial weights were restored"
        )
        raise TrainingDiverged(
            f"the {what} of task(s) {bad} became non-finite in epoch {epoch}; {kept}. "
            "Try a lower learning rate (lr), gradient clipping (grad_clip), or check the "
            "data for extreme values."
        )

    def _scheduler(self, optimizer: torch.optim.Optimizer):
        return make_scheduler(self.config.lr_schedule, optimizer, self.config.epochs)

    def _save_checkpoint(self, state: dict) -> None:
        if self.checkpoint_path is not None and distributed.is_main():
            save_torch(self.checkpoint_path, state)


class _LabelledRows:
    """A batch's labelled rows per task, as floats. Of a split known to have every label
    (in memory, without a missing one), every batch's are its number of rows: then no
    counting per step."""

    def __init__(self, train: Data, n_tasks: int, device: torch.device) -> None:
        self.complete = train.all_labelled()
        self.n_tasks, self.device = n_tasks, device
        self._by_rows: dict[int, torch.Tensor] = {}

    def __call__(self, batch: Batch) -> torch.Tensor:
        if not self.complete:
            return batch.mask.sum(0).to(batch.y.dtype)
        rows = len(batch)
        if rows not in self._by_rows:
            self._by_rows[rows] = torch.full(
                (self.n_tasks,), float(rows), dtype=batch.y.dtype, device=self.device
            )
        return self._by_rows[rows]


def _improves(value: float, best: float) -> bool:
    """Whether ``value`` beats ``best`` (lower is better); a NaN value (the metric undefined
    this epoch) never does, and anything beats a NaN best."""
    return not math.isnan(value) and (math.isnan(best) or value < best)


def _mean_metric(metrics: dict[str, dict[str, float]], name: str) -> float:
    """Mean of one metric over the tasks that report it (NaN-safe); NaN if none does."""
    values = [m[name] for m in metrics.values() if name in m and math.isfinite(m[name])]
    return float(np.mean(values)) if values else math.nan
