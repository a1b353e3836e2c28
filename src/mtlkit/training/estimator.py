"""A scikit-learn compatible estimator: preprocessor + model + trainer behind ``fit``/``predict``.

``__init__`` only stores its arguments; ``fit`` validates them against their declarations
(the model's and strategy's registered parameters, :class:`TrainConfig`), so
``get_params``/``set_params``/``sklearn.base.clone`` and scikit-learn's model selection
(``GridSearchCV``...) work. The training keyword arguments are generated from
:class:`TrainConfig`: one list of settings and defaults for the API, the CLI and config files.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from mtlkit.data import protocol
from mtlkit.data.loading import Sources, load_features
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.protocol import EncodedData, Table
from mtlkit.data.read_options import FEATURE_READ_PARAMS, READ_PARAMS, read_options
from mtlkit.data.schema import FEATURE_KINDS, TASK_KINDS, MultiTaskTable, Schema
from mtlkit.data.splits import check_splits
from mtlkit.data.vocabulary import VOCABULARY_PARAM_NAMES
from mtlkit.errors import ConfigError, DataError, ModelFileError
from mtlkit.evaluation.run_record import History
from mtlkit.files import atomic_write_json
from mtlkit.models import build_model, check_model
from mtlkit.models.base import MTLModel
from mtlkit.params import Param
from mtlkit.tracking import make_tracker
from mtlkit.tracking.fit import log_fit
from mtlkit.training import distributed
from mtlkit.training.calibration import fit_calibration, load_calibration
from mtlkit.training.estimator_params import (
    OWN_PARAMS,
    CheckedSettings,
    check_hyperparameter_name,
    check_kinds,
    setting_defaults,
    signature,
)
from mtlkit.training.inputs import feature_table, labelled_table
from mtlkit.training.model_folder import (
    CALIBRATION,
    META,
    load_weights,
    plain_json,
    read_json,
    read_meta,
    write_model_folder,
)
from mtlkit.training.settings import DEFAULT_MODEL, TrainConfig
from mtlkit.training.state import save_torch
from mtlkit.training.strategies import choose_strategy
from mtlkit.training.trainer import Trainer, resolve_device


@dataclass
class LabelledScores:
    """Labels ``y`` and masks ``mask`` ``(N, T)``, ``scores`` per task and the rows whose
    predictions are ``kept`` ``(N, T)``; see :meth:`MultiTaskEstimator.labelled_scores`."""

    y: np.ndarray
    mask: np.ndarray
    scores: dict[str, np.ndarray]
    kept: np.ndarray


class NotFittedYet(ConfigError, NotFittedError):
    """Predicting, scoring or saving before ``fit`` (also scikit-learn's NotFittedError)."""


class MultiTaskEstimator(BaseEstimator):
    """Fit one multi-task model and predict every task.

    >>> est = MultiTaskEstimator("mmoe", n_experts=8, epochs=20)      # doctest: +SKIP
    >>> est.fit(train, validation=val).evaluate(test)                 # doctest: +SKIP

    ``model`` is a registry name (``mtlkit.models.available()``); extra keyword arguments are
    the model's hyperparameters (``mtlkit models --verbose``). ``strategy`` is a registered
    strategy name with its ``strategy_params``. The training settings (``epochs``, ``lr``,
    ``batch_size``, ``monitor``, ...) are those of :class:`~mtlkit.training.settings.TrainConfig`.

    Data: ``fit``/``predict``/``score`` take a :class:`~mtlkit.data.schema.MultiTaskTable`,
    or files / folders / data frames with the ``labels`` columns (a missing label is
    masked), or scikit-learn style ``X`` (features) and ``y`` (one column per task, NaN
    where a label is missing), or a Parquet dataset too large for memory opened with
    :func:`~mtlkit.data.streaming_table.stream_tables` (streamed batch by batch; see
    docs/scaling.md).
    """

    def __init__(self, model: str = DEFAULT_MODEL, **params: Any) -> None:
        # The full signature (generated below) lists every setting; ``params`` beyond it are
        # the model's hyperparameters. Nothing is checked here (scikit-learn convention).
        self.model = model
        own = set(setting_defaults())
        for name, default in setting_defaults().items():
            setattr(self, name, params.get(name, default))
        self._model_param_names = tuple(k for k in params if k not in own)
        for name in self._model_param_names:
            check_hyperparameter_name(name, MultiTaskEstimator)
            setattr(self, name, params[name])

    # ---- scikit-learn parameters ----------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The settings, plus the model hyperparameters given (scikit-learn API)."""
        params = super().get_params(deep=False)
        params.update({k: getattr(self, k) for k in self._model_param_names})
        return params

    def set_params(self, **params: Any) -> MultiTaskEstimator:
        """Set settings or model hyperparameters (scikit-learn API); checked at ``fit``."""
        own = set(self._get_param_names())
        for name, value in params.items():
            if name not in own:
                check_hyperparameter_name(name, MultiTaskEstimator)
            setattr(self, name, value)
            if name not in own and name not in self._model_param_names:
                self._model_param_names = (*self._model_param_names, name)
        return self

    @property
    def model_params(self) -> dict[str, Any]:
        """The model hyperparameters given (the rest take their declared defaults)."""
        return {k: getattr(self, k) for k in self._model_param_names}

    def check_params(self) -> TrainConfig:
        """Validate every setting against its declaration; returns the training settings.

        ``fit`` calls this first; call it yourself to fail fast before reading data. The
        settings are checked once: until one changes, ``fit`` trusts this check.
        """
        return self._checked_settings().config

    def _checked_settings(self) -> CheckedSettings:
        """The settings, validated here and nowhere else (the model and the trainer build
        from the result); checked again only when a setting changed since."""
        given = copy.deepcopy(self.get_params())
        cached = getattr(self, "_checked", None)
        if cached is not None and cached[0] == given:
            return cached[1]
        model = check_model(self.model, self.model_params)
        if not isinstance(self.strategy, str):
            raise ConfigError(
                f"strategy must be a registered strategy name such as 'joint' (see 'mtlkit "
                f"strategies'), got {self.strategy!r}; to use your own strategy class, register "
                "it with @register_strategy('a-name', ...) and pass that name."
            )
        for p in OWN_PARAMS:
            p.validate(getattr(self, p.name), "estimator")
        read_options(self._read_settings(READ_PARAMS), "estimator")
        strategy = choose_strategy(self.strategy, self.strategy_params)
        check_kinds("feature_kinds", self.feature_kinds, FEATURE_KINDS)
        check_kinds("task_kinds", self.task_kinds, TASK_KINDS)
        config = TrainConfig(**{p.name: getattr(self, p.name) for p in TrainConfig.params()})
        resolve_device(config.device)  # a GPU asked for where there is none
        checked = CheckedSettings(config, model, strategy)
        self._checked = (given, checked)
        return checked

    # ---- fitting ------------------------------------------------------------------------
    def fit(
        self,
        X: MultiTaskTable | Sources | np.ndarray,  # noqa: N803 (scikit-learn's name)
        y: Any = None,
        *,
        validation: MultiTaskTable | Sources | None = None,
        state: dict | None = None,
        state_path: str | Path | None = None,
        on_epoch: Callable[[int, float], None] | None = None,
    ) -> MultiTaskEstimator:
        """Fit the preprocessor on the training rows and train the model, early-stopping on
        ``validation`` (a ``validation_fraction`` of ``X`` when not given). With ``track``
        the fit is logged as one run (its id in ``tracked_run_``, see :mod:`mtlkit.tracking`).

        ``fit(train_table, val_table)`` (a table, in memory or streamed, as the second
        argument) is read as ``fit(train_table, validation=val_table)``, as in earlier
        versions; otherwise a table ``X`` holds its labels and takes no ``y``. Training and
        validation data may each be in memory or streamed. ``state`` (the
        :meth:`training_state` of an earlier fit on the same data with the same settings
        and fewer ``epochs``) continues that fit instead of starting over; with
        ``state_path`` that state is saved there after every epoch (by rank 0 alone in
        data-parallel training), so a killed fit continues from its last epoch. ``on_epoch``
        is :meth:`Trainer.fit <mtlkit.training.trainer.Trainer.fit>`'s per-epoch callback.
        """
        checked = self._checked_settings()
        config = checked.config
        # the tracking target answers before training; rank 0 alone tracks (one experiment)
        tracker = make_tracker(self.track) if distributed.is_main() else None
        if protocol.is_table(y) and validation is None:
            y, validation = None, y
        train_t, val_t = self._encoded_splits(X, y, validation, config)
        self.schema_ = self.preprocessor_.schema()
        torch.manual_seed(config.seed)
        self.model_ = build_model(checked.model, self.schema_)
        self._check_funnel(train_t)
        self.trainer_ = Trainer(self.model_, config, checked.strategy, state_path=state_path)
        start = time.perf_counter()
        self.history_: History = self.trainer_.fit(train_t, val_t, state=state, on_epoch=on_epoch)
        self.trainer_.calibration = fit_calibration(
            config.calibration,
            self.schema_.tasks,
            self.model_.task_roles is not None,
            *self.trainer_.labelled_scores(val_t),
        )
        self.fit_time_ = time.perf_counter() - start
        if tracker is not None:  # rank 0's: one run, not one per rank
            self.tracked_run_ = log_fit(tracker, self, f"{self.model}-{self.strategy}")
        return self

    def training_state(self) -> dict | None:
        """The state a later ``fit(..., state=...)`` continues from (see
        :meth:`Trainer.training_state`); save it with :func:`~mtlkit.training.state.save_torch`."""
        self._check_fitted()
        return self.trainer_.training_state()

    def _encoded_splits(
        self, X: Any, y: Any, validation: Any, config: TrainConfig
    ) -> tuple[EncodedData, EncodedData]:  # noqa: N803
        """The training and validation rows, checked (:func:`check_splits`) and encoded by
        the preprocessor fitted on the training rows (by rank 0 alone, with several ranks).
        Each is in memory or streamed; without ``validation``, a ``validation_fraction`` of
        the training rows (stratified rows in memory, whole row groups of a stream)."""
        train = self._table(X, y)
        if validation is None:
            f = self.validation_fraction
            train, val, _ = protocol.split(train, (1 - f, f, 0.0), seed=config.seed)
        else:
            val = self._table(validation, None)
        check_splits(train, val)
        vocabulary = {name: getattr(config, name) for name in VOCABULARY_PARAM_NAMES}
        prep = Preprocessor(self.feature_kinds, **vocabulary)
        self.preprocessor_ = distributed.from_main(lambda: protocol.fit(train, prep))
        self.n_features_in_ = len(train.feature_names)
        return protocol.encode(train, self.preprocessor_), protocol.encode(val, self.preprocessor_)

    def _check_funnel(self, train: EncodedData) -> None:
        """The funnel-order check of sequential models; ``funnel_check="warn"`` lets training
        go on, saying what the model then assumes. A stream is checked record batch by
        record batch (up to its first one with a row out of order)."""
        if self.model_.task_roles is None:
            return
        try:
            for y, mask in train.label_chunks():
                self.model_.check_labels(y, mask)
        except DataError as err:
            if self.funnel_check == "error":
                raise
            warnings.warn(
                f"{err} Training goes on (funnel_check='warn'), but these labels are not a "
                "funnel: the model's product of step probabilities (ESMM: pCTCVR = pCTR x "
                "pCVR) is then only a modelling assumption, not a property of the data, and "
                "its conditional outputs (pCVR) have no direct meaning.",
                UserWarning,
                stacklevel=3,
            )

    # ---- prediction ---------------------------------------------------------------------
    def predict_proba(self, X: MultiTaskTable | Sources | np.ndarray) -> dict[str, np.ndarray]:  # noqa: N803
        """P(y=1) for binary tasks, class probabilities for multiclass, values for regression.

        ``X`` is a table, files / data frames as :func:`~mtlkit.load_tables` takes them
        (label columns, if present, are ignored), or a feature array. Funnel models add
        their conditional probabilities next to the tasks, named ``"<step>_given_<previous
        step>"``: ESMM trained on ``["click", "conversion"]`` returns ``"click"`` (pCTR),
        ``"conversion"`` (pCTCVR) and ``"conversion_given_click"`` (pCVR).
        """
        self._check_fitted()
        return self.trainer_.predict_scores(self._data(self._features(X), False), conditional=True)

    def predict(self, X: MultiTaskTable | Sources | np.ndarray) -> dict[str, np.ndarray]:  # noqa: N803
        """Predicted labels in the original label values (classes) or predicted values."""
        scores = self.predict_proba(X)
        out = {}
        for spec in self.schema_.tasks:  # labels per task (not the conditional outputs)
            s = scores[spec.name]
            if spec.kind == "regression":
                out[spec.name] = s
                continue
            ids = (s >= 0.5).astype(int) if spec.kind == "binary" else s.argmax(axis=1)
            out[spec.name] = np.asarray(spec.classes, dtype=object)[ids] if spec.classes else ids
        return out

    def evaluate(self, X: MultiTaskTable | Sources | np.ndarray, y: Any = None) -> dict:  # noqa: N803
        """Metrics per task on the labelled rows: ``{task: {metric: value}}``."""
        self._check_fitted()
        return self.trainer_.evaluate(self._data(self._table(X, y)))

    def labelled_scores(self, X: Table | Sources | np.ndarray, y: Any = None) -> LabelledScores:  # noqa: N803
        """The labels, label masks and scores of every row of ``X``, in one pass over it.

        The labels are those the model trains on: encoded by the fitted preprocessor
        (recoded to the classes it was fitted with, masked where missing); ``kept`` marks the
        labelled rows whose predictions a run record keeps (every one of a table in memory,
        a seeded sample of a stream's, see :class:`~mtlkit.data.protocol.EncodedData`)."""
        self._check_fitted()
        data = self._data(self._table(X, y))
        labels, mask, scores = self.trainer_.labelled_scores(data)
        return LabelledScores(labels, mask, scores, data.kept_rows(mask))

    def score(self, X: MultiTaskTable | Sources | np.ndarray, y: Any = None) -> float:  # noqa: N803
        """One number, higher is better (scikit-learn's model selection maximises it): the
        mean over tasks of ROC-AUC (classification) or R² (regression)."""
        metrics = self.evaluate(X, y)
        values = [
            m.get("r2" if spec.kind == "regression" else "roc_auc", math.nan)
            for spec, m in zip(self.schema_.tasks, metrics.values())
        ]
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else math.nan

    @property
    def n_parameters_(self) -> int:
        self._check_fitted()
        return sum(p.numel() for p in self.model_.parameters())

    # ---- persistence --------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the model weights, its preprocessor, its settings and the training history
        (``history.json``, see :class:`~mtlkit.evaluation.run_record.History`) into ``folder``.

        The files are written into a staging folder and moved into ``folder`` once all are
        written (see :mod:`~mtlkit.training.model_folder`): a failed save leaves a model
        saved there before intact, and ``estimator.json`` records each file's checksum for
        ``load``."""
        self._check_fitted()

        def write(staging: Path) -> None:
            self.preprocessor_.save(staging / "preprocessor.json")
            save_torch(staging / "model.pt", self.model_.state_dict())
            atomic_write_json(staging / "history.json", self.history_.to_dict(), indent=None)
            if self.trainer_.calibration is not None:
                atomic_write_json(staging / CALIBRATION, self.trainer_.calibration.to_dict())

        params = {k: plain_json(v) for k, v in self.get_params().items()}
        return write_model_folder(
            folder, write, {"params": params, "schema": self.schema_.to_dict()}
        )

    @classmethod
    def load(cls, folder: str | Path) -> MultiTaskEstimator:
        """Load an estimator written by :meth:`save`, ready to ``predict`` on new tables.

        Every file is checked first (present, complete, unchanged since saving, weights
        finite and of the model's shapes): a :class:`~mtlkit.errors.ModelFileError` says in
        one line what is wrong."""
        folder = Path(folder)
        meta = read_meta(folder)
        params = dict(meta["params"])
        if params.get("device", "cpu") != "cpu" and not torch.cuda.is_available():
            params["device"] = "cpu"  # trained on a GPU, loaded on a machine without one
        try:
            est = cls(**params)
            checked = est._checked_settings()
            est.schema_ = Schema.from_dict(meta["schema"])
            est.model_: MTLModel = build_model(checked.model, est.schema_)
        except (ConfigError, KeyError, TypeError, ValueError) as err:
            reason = str(err).split(". ")[0].rstrip(".")[:120]
            raise ModelFileError(
                f"{folder / META} describes a model this mtlkit cannot build ({reason}); "
                "save the model again."
            ) from None
        est.preprocessor_ = Preprocessor.load(folder / "preprocessor.json")
        if est.preprocessor_.schema() != est.schema_:
            raise ModelFileError(
                f"{folder / 'preprocessor.json'} does not fit the model described in {META} "
                "(other features or tasks); the files come from different models."
            )
        load_weights(folder / "model.pt", est.model_)
        est.trainer_ = Trainer(est.model_, checked.config, checked.strategy)
        if checked.config.calibration != "none":
            est.trainer_.calibration = load_calibration(
                folder / CALIBRATION, est.schema_.tasks, est.model_.task_roles is not None
            )
        try:
            est.history_ = History.from_dict(read_json(folder / "history.json"))
        except (KeyError, TypeError, AttributeError) as err:
            raise ModelFileError(
                f"{folder / 'history.json'} is not a training history ({err!r:.80})."
            ) from None
        return est

    # ---- helpers ------------------------------------------------------------------------
    def _data(self, table: Table, require_labels: bool = True) -> EncodedData:
        """A table's rows encoded by the fitted preprocessor: tensors, or a stream of them."""
        return protocol.encode(table, self.preprocessor_, require_labels)

    def _table(self, X: Any, y: Any) -> Table:  # noqa: N803
        """Labelled data as a table (see :func:`~mtlkit.training.inputs.labelled_table`)."""
        kinds = {"task_kinds": self.task_kinds, "feature_kinds": self.feature_kinds}
        options = self._read_settings(READ_PARAMS)
        n_features = getattr(self, "n_features_in_", None)
        return labelled_table(X, y, self.labels, kinds, options, n_features)

    def _features(self, X: Any) -> Table:  # noqa: N803
        return feature_table(X, lambda: self.n_features_in_, self.read_features)

    def read_features(self, X: Sources) -> MultiTaskTable:  # noqa: N803
        """New rows to predict on (files, folders or data frames), read with this estimator's
        ``bad_values`` and ``encoding`` and the feature kinds it was fitted with, so a stray
        text cell in a numeric column is named by file, column and line."""
        self._check_fitted()
        return load_features(
            X,
            ignore=self.schema_.task_names,
            feature_kinds=self.preprocessor_.fitted_kinds,
            **self._read_settings(FEATURE_READ_PARAMS),
        )

    def _read_settings(self, params: Sequence[Param]) -> dict[str, Any]:
        """The reading settings (``missing_labels``, ``bad_values``, ``encoding``)."""
        return {p.name: getattr(self, p.name, p.default) for p in params}

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedYet("this estimator is not fitted yet; call fit(train) first.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing feature values are imputed
        tags.target_tags.required = False  # labels may come inside X
        return tags


MultiTaskEstimator.__init__.__signature__ = signature()
