"""A scikit-learn style estimator: preprocessor + model + trainer behind ``fit``/``predict``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from mtlkit.data.features import Preprocessor
from mtlkit.data.loading import Sources, load_features
from mtlkit.data.schema import MultiTaskTable, Schema
from mtlkit.data.splits import split_table
from mtlkit.errors import ConfigError
from mtlkit.models import create
from mtlkit.models.base import MTLModel
from mtlkit.models.registry import check_hyperparameter_names
from mtlkit.training.strategies import Strategy, make_strategy
from mtlkit.training.trainer import History, TrainConfig, Trainer


class MultiTaskEstimator:
    """Fit one multi-task model on a :class:`MultiTaskTable` and predict every task.

    >>> est = MultiTaskEstimator("mmoe", n_experts=8, epochs=20)      # doctest: +SKIP
    >>> est.fit(train, val).evaluate(test)                            # doctest: +SKIP

    ``model`` is a registry name (see ``mtlkit.models.available()``); extra keyword arguments
    are the model's hyperparameters. ``strategy`` is a strategy name (see
    ``mtlkit.training.strategies.available_strategies()``) with its ``strategy_params``, or an
    instance; the training settings are those of :class:`TrainConfig`.
    """

    def __init__(
        self,
        model: str = "mmoe",
        *,
        strategy: str | Strategy = "joint",
        strategy_params: dict | None = None,
        epochs: int = 50,
        batch_size: int = 1024,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 5,
        monitor: str = "loss",
        grad_clip: float | None = None,
        lr_schedule: str | None = None,
        seed: int = 0,
        progress: bool = True,
        diagnostic_batches: int = 4,
        device: str = "cpu",
        feature_kinds: dict[str, str] | None = None,
        **model_params: object,
    ) -> None:
        check_hyperparameter_names(model, model_params)  # refuse typos before any data is read
        self.model_name = model
        self.strategy = strategy
        self.strategy_params = dict(strategy_params or {})
        make_strategy(strategy, **self.strategy_params)  # refuse bad names/parameters now
        self.model_params = model_params
        self.feature_kinds = feature_kinds
        self.config = TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            patience=patience,
            monitor=monitor,
            grad_clip=grad_clip,
            lr_schedule=lr_schedule,
            seed=seed,
            progress=progress,
            diagnostic_batches=diagnostic_batches,
            device=device,
        )

    def fit(self, train: MultiTaskTable, val: MultiTaskTable | None = None) -> MultiTaskEstimator:
        """Fit the preprocessor on ``train`` and train the model, early-stopping on ``val``
        (15% of ``train`` when not given)."""
        if val is None:
            train, val, _ = split_table(train, (0.85, 0.15, 0.0), seed=self.config.seed)
        self.preprocessor_ = Preprocessor(self.feature_kinds).fit(train)
        train_t = self.preprocessor_.transform(train)
        val_t = self.preprocessor_.transform(val)
        self.schema_ = self.preprocessor_.schema()
        torch.manual_seed(self.config.seed)
        self.model_ = create(self.model_name, self.schema_, **self.model_params)
        self.model_.check_labels(train_t.y, train_t.mask)
        strategy = make_strategy(self.strategy, **self.strategy_params)
        self.trainer_ = Trainer(self.model_, self.config, strategy)
        start = time.perf_counter()
        self.history_: History = self.trainer_.fit(train_t, val_t)
        self.fit_time_ = time.perf_counter() - start
        return self

    def predict_proba(self, data: MultiTaskTable | Sources) -> dict[str, np.ndarray]:
        """P(y=1) for binary tasks, class probabilities for multiclass, values for regression.

        ``data`` is a table, or files / data frames as :func:`load_tables` takes them (label
        columns, if present, are ignored).
        """
        self._check_fitted()
        if not isinstance(data, MultiTaskTable):
            data = load_features(data, ignore=self.schema_.task_names)
        data = self.preprocessor_.transform(data, require_labels=False)
        return self.trainer_.predict_scores(data)

    def predict(self, data: MultiTaskTable | Sources) -> dict[str, np.ndarray]:
        """Predicted labels in the original label values (classes) or predicted values."""
        scores = self.predict_proba(data)
        out = {}
        for spec in self.schema_.tasks:
            s = scores[spec.name]
            if spec.kind == "regression":
                out[spec.name] = s
                continue
            ids = (s >= 0.5).astype(int) if spec.kind == "binary" else s.argmax(axis=1)
            out[spec.name] = np.asarray(spec.classes, dtype=object)[ids] if spec.classes else ids
        return out

    def evaluate(self, table: MultiTaskTable) -> dict[str, dict[str, float]]:
        """Metrics per task on the labelled rows of ``table``."""
        self._check_fitted()
        return self.trainer_.evaluate(self.preprocessor_.transform(table))

    @property
    def n_parameters_(self) -> int:
        self._check_fitted()
        return sum(p.numel() for p in self.model_.parameters())

    # ---- persistence --------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the model weights, its preprocessor, its settings and (after ``fit``) the
        training history (``history.json``, see :class:`History`) into ``folder``."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.preprocessor_.save(folder / "preprocessor.json")
        torch.save(self.model_.state_dict(), folder / "model.pt")
        meta = {
            "model": self.model_name,
            "model_params": self.model_params,
            "schema": self.schema_.to_dict(),
            "train_config": self.config.to_dict(),
            "strategy": self.strategy if isinstance(self.strategy, str) else self.strategy.name,
            "strategy_params": self.strategy_params,
        }
        (folder / "estimator.json").write_text(json.dumps(meta, indent=2))
        if hasattr(self, "history_"):
            (folder / "history.json").write_text(json.dumps(self.history_.to_dict()))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> MultiTaskEstimator:
        """Load an estimator written by :meth:`save`, ready to ``predict`` on new tables."""
        folder = Path(folder)
        if not (folder / "estimator.json").is_file():
            raise ConfigError(
                f"{folder} holds no saved mtlkit model (estimator.json is missing); "
                "pass the folder given to MultiTaskEstimator.save()."
            )
        meta = json.loads((folder / "estimator.json").read_text())
        cfg = meta["train_config"]
        if cfg.get("device", "cpu") != "cpu" and not torch.cuda.is_available():
            cfg["device"] = "cpu"  # trained on a GPU, loaded on a machine without one
        est = cls(
            meta["model"],
            strategy=meta["strategy"],
            strategy_params=meta.get("strategy_params"),
            **cfg,
            **meta["model_params"],
        )
        est.preprocessor_ = Preprocessor.load(folder / "preprocessor.json")
        est.schema_ = Schema.from_dict(meta["schema"])
        est.model_: MTLModel = create(meta["model"], est.schema_, **meta["model_params"])
        est.model_.load_state_dict(
            torch.load(folder / "model.pt", weights_only=True, map_location="cpu")
        )
        est.trainer_ = Trainer(
            est.model_, est.config, make_strategy(est.strategy, **est.strategy_params)
        )
        if (folder / "history.json").is_file():
            est.history_ = History.from_dict(json.loads((folder / "history.json").read_text()))
        return est

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ConfigError("this estimator is not fitted yet; call fit(train) first.")
