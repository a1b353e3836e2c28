"""Which tasks belong together: TAG's inter-task affinity over seeds, and the groups it picks.

:func:`measure_affinity` trains one shared model jointly on all the tasks for a short fixed
budget, once per seed, measuring on a few steps of each epoch the lookahead affinity and the
task-gradient cosine of :mod:`mtlkit.affinity.lookahead`. The mean over seeds picks the
groups (:mod:`mtlkit.affinity.grouping`); the seeds give a 95% t-interval per pair.

Short, because the affinity changes over training: on planted groups (tasks of weight cosine
0.9), group-mates help each other while the shared features are learnt and compete later,
once each fits its own direction (measured: mean within-group affinity +0.019 in epochs 2-3,
-0.01 in epochs 5-8 of the same run); TAG's value is an average over the budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mtlkit.affinity.defaults import DEFAULT_EPOCHS, DEFAULT_MODEL, DEFAULT_PROBES
from mtlkit.affinity.grouping import EXACT_MAX_TASKS, choose_groups
from mtlkit.affinity.lookahead import Probed, train_and_probe
from mtlkit.data import protocol
from mtlkit.data.loading import Sources, load_tables
from mtlkit.data.protocol import Table
from mtlkit.errors import ConfigError
from mtlkit.evaluation.intervals import mean_ci
from mtlkit.files import atomic_write_json
from mtlkit.training.settings import TrainConfig, auto_batch_size


@dataclass
class AffinityResult:
    """Affinity between every ordered pair of tasks, the chosen groups and how they were got.

    ``matrix[i][j]`` is TAG's affinity of task i onto task j (mean over seeds), ``cosine`` the
    mean cosine of their gradients on the shared parameters; ``*_low``/``*_high`` the 95%
    t-interval over the seeds (NaN with one seed). ``scores`` maps each number of groups tried
    to its best partition's score.
    """

    tasks: list[str]
    seeds: list[int]
    matrix: np.ndarray
    matrix_low: np.ndarray
    matrix_high: np.ndarray
    cosine: np.ndarray
    cosine_low: np.ndarray
    cosine_high: np.ndarray
    per_seed: list[np.ndarray]
    groups: list[list[str]]
    scores: dict[int, float]
    settings: dict = field(default_factory=dict)
    fit_time_s: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain values for JSON (NaN written as null)."""

        def plain(a: np.ndarray) -> list:
            return [[None if not math.isfinite(v) else float(v) for v in row] for row in a]

        return {
            "tasks": self.tasks,
            "matrix": plain(self.matrix),
            "cosine": plain(self.cosine),
            "groups": self.groups,
            "seeds": self.seeds,
            "matrix_interval": {"low": plain(self.matrix_low), "high": plain(self.matrix_high)},
            "cosine_interval": {"low": plain(self.cosine_low), "high": plain(self.cosine_high)},
            "matrix_per_seed": [plain(m) for m in self.per_seed],
            "group_scores": {str(k): v for k, v in self.scores.items()},
            "definition": (
                "matrix[i][j] = TAG inter-task affinity of task i onto task j (Fifty et al., "
                "NeurIPS 2021): (1 - L_j(shared - lr * grad L_i) / L_j(shared)) / lr on the "
                "same batch, averaged over batches probed after each epoch; groups maximise "
                "the sum over tasks of the mean affinity onto each from its group-mates"
            ),
            "settings": self.settings,
            "fit_time_s": self.fit_time_s,
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``affinity.json`` into ``folder``; returns its path."""
        path = Path(folder) / "affinity.json"
        atomic_write_json(path, self.to_dict())
        return path


def measure_affinity(
    data: Table | Sources,
    labels: Sequence[str] | None = None,
    *,
    n_groups: int | None = None,
    seeds: Sequence[int] = (0,),
    model: str = DEFAULT_MODEL,
    model_params: dict | None = None,
    epochs: int = DEFAULT_EPOCHS,
    probes_per_epoch: int = DEFAULT_PROBES,
    lr: float = 1e-3,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    device: str = "cpu",
    progress: bool = False,
) -> AffinityResult:
    """TAG's task affinity on ``data`` (a table, or files / data frames with the ``labels``
    columns) and the groups it picks: ``n_groups`` groups, or the fewest whose best partition
    falls short of the highest score by no more than the noise of the probed steps (see
    :func:`~mtlkit.affinity.grouping.choose_groups`; every probed step's matrix, of every
    seed, is one replicate).

    Per seed, ``model`` (a registry name with ``model_params``, weights initialised from the
    seed) is trained jointly on every row for exactly ``epochs`` epochs of ``batch_size``
    rows (None: the trainer's adaptive size), probing ``probes_per_epoch`` steps per epoch
    (:func:`~mtlkit.affinity.lookahead.train_and_probe`). ``lr``, ``weight_decay`` and
    ``device`` are the training settings of :class:`~mtlkit.training.settings.TrainConfig`.
    """
    from mtlkit.data.preprocessor import Preprocessor  # here: loads PyTorch
    from mtlkit.models import build_model, check_model
    from mtlkit.training.trainer import resolve_device

    if protocol.is_table(data):
        table = data
        if labels is not None and list(labels) != table.task_names:
            raise ConfigError(f"labels {list(labels)} differ from the table's {table.task_names}.")
    else:
        if not labels:
            raise ConfigError("give the label columns (labels=[...]), one task each.")
        table = load_tables(data, labels)
    tasks = table.task_names
    if len(tasks) < 2:
        raise ConfigError(
            f"affinity is measured between tasks: give at least two labels, got {tasks}."
        )
    if n_groups is not None and not 1 <= n_groups <= len(tasks):
        raise ConfigError(
            f"--n-groups must lie between 1 and the number of tasks ({len(tasks)}), got {n_groups}."
        )
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) < len(seeds):
        raise ConfigError(f"give one or more distinct seeds, got {seeds}.")
    if epochs < 1 or probes_per_epoch < 1:
        raise ConfigError(
            f"epochs and probes per epoch must be at least 1, got {epochs} and {probes_per_epoch}."
        )
    config = TrainConfig(lr=lr, batch_size=batch_size, weight_decay=weight_decay, device=device)
    target = resolve_device(config.device)
    chosen = check_model(model, model_params or {})
    preprocessor = protocol.fit(table, Preprocessor())
    encoded = protocol.encode(table, preprocessor)
    if not encoded.in_memory:
        raise ConfigError(
            "affinity needs the rows in memory (its lookahead revisits batches): load the "
            "data with load_tables, or give the files instead of a stream."
        )
    encoded = encoded.to(target)
    schema = preprocessor.schema()
    batch_size = config.batch_size or auto_batch_size(len(table))
    affinities, cosines, times, probes = [], [], [], []
    bar = tqdm(total=len(seeds) * epochs, desc="affinity", unit="epoch", disable=not progress)
    for seed in seeds:
        torch.manual_seed(seed)
        net = build_model(chosen, schema).to(target)
        start = time.perf_counter()
        probed = train_and_probe(
            net,
            encoded,
            epochs=epochs,
            batch_size=batch_size,
            lr=config.lr,
            weight_decay=config.weight_decay,
            probes_per_epoch=probes_per_epoch,
            seed=seed,
            on_epoch=bar.update,
        )
        times.append(time.perf_counter() - start)
        affinities.append(Probed.mean(probed.affinity))
        probes += probed.affinity
        cosines.append(Probed.mean(probed.cosine))
    bar.close()
    matrix, low, high = _summary(affinities)
    cosine, cos_low, cos_high = _summary(cosines)
    groups, scores = choose_groups(matrix, n_groups, replicates=probes)
    return AffinityResult(
        tasks=tasks,
        seeds=seeds,
        matrix=matrix,
        matrix_low=low,
        matrix_high=high,
        cosine=cosine,
        cosine_low=cos_low,
        cosine_high=cos_high,
        per_seed=affinities,
        groups=[[tasks[i] for i in g] for g in groups],
        scores=scores,
        settings={
            "model": model,
            "model_params": dict(model_params or {}),
            "epochs": epochs,
            "probes_per_epoch": probes_per_epoch,
            "batch_size": batch_size,
            "lr": config.lr,
            "weight_decay": config.weight_decay,
            "n_groups": n_groups,
            "search": "exact" if len(tasks) <= EXACT_MAX_TASKS else "approximate",
        },
        fit_time_s=times,
    )


def _summary(matrices: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% t-interval over the seeds, entry by entry."""
    stacked = np.stack(matrices)
    n = stacked.shape[1]
    out = np.full((3, n, n), math.nan)
    for i in range(n):
        for j in range(n):
            mean, _, low, high = mean_ci(stacked[:, i, j])
            out[:, i, j] = mean, low, high
    return out[0], out[1], out[2]
