"""Equal tuning budget: what is tuned, with what budget, and what a study leaves behind.

Every model x strategy of a grid (the single-task baseline included) gets the same number of
Optuna trials (Akiba et al., "Optuna: A Next-generation Hyperparameter Optimization
Framework", KDD 2019): the TPE sampler (Bergstra et al., NeurIPS 2011) and median pruning
on the per-epoch validation metric, on the training and validation splits only. The search
space is read from the declarations (:class:`~mtlkit.params.Param` ``search``): the training
settings (learning rate, batch size, weight decay), the model's hyperparameters (dropout,
capacity knobs) and the strategy's settings. A setting the user gave (``mmoe:n_experts=4``,
``cagrad:c=0.4``, a name in ``keep``) is not tuned.

This module is torch- and optuna-free (the report reads :class:`StudyRecord` files);
:mod:`.study` runs the studies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import json_safe, renamed_fields
from mtlkit.params import Param, Trial, check_names, params_of, resolve, setting
from mtlkit.training.settings import TrainConfig

TUNING_DIR = "tuning"
#: The Optuna storage of every study of a run folder (SQLite: a killed process leaves no
#: half-written trial behind, and several processes may write to it).
STORAGE_FILE = "studies.db"
#: Completed trials below which parameter importances are not computed (they would be noise).
MIN_TRIALS_FOR_IMPORTANCE = 5
#: The most trials a study may be given: TPE's cost per trial grows with the trials before it,
#: and a larger budget is a typo more often than a plan (each trial trains a model).
MAX_TRIALS = 10_000
#: Where a tuned setting goes.
GROUPS = ("model", "strategy", "train")


@dataclass
class TuneConfig:
    """The tuning budget and how it is spent (config key ``tune``; ``mtlkit compare --tune N``)."""

    trials: int = setting(
        20,
        "int",
        "Optuna trials for each model x strategy (the same budget for all)",
        low=1,
        high=MAX_TRIALS,
    )
    seed: int = setting(0, "int", "seed of the TPE sampler and of every trial's model", low=0)
    pruning: bool = setting(
        True, "bool", "stop unpromising trials early (median pruning on the validation metric)"
    )
    keep: list[str] | None = setting(
        None,
        "names",
        "settings kept at their configured value instead of tuned, e.g. batch_size dropout",
        optional=True,
    )

    def __post_init__(self) -> None:
        for p in PARAMS:
            setattr(self, p.name, p.validate(getattr(self, p.name), "tune"))

    @classmethod
    def params(cls) -> tuple[Param, ...]:
        return PARAMS

    @classmethod
    def from_value(cls, value: Any, where: str = "the configuration") -> TuneConfig | None:
        """``None`` (no tuning), a number of trials, or a mapping of the settings above."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = {"trials": value}
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"'tune' in {where} must be a number of trials or a mapping such as "
                f"{{trials: 20, seed: 0}}, got {value!r}."
            )
        owner = f"tune ({where})"
        return cls(**resolve(PARAMS, value, owner))

    def to_dict(self) -> dict:
        return {**asdict(self), "keep": list(self.keep) if self.keep else None}

    def startup_trials(self) -> int:
        """Trials drawn at random before TPE models the results (and before median pruning
        compares with them): a third of the budget, 3 to 10."""
        return min(10, max(3, self.trials // 3))


PARAMS: tuple[Param, ...] = params_of(TuneConfig)


def tune_flags(trials_flag: str, tuned_by_default: bool) -> tuple[Param, ...]:
    """The command-line form of :class:`TuneConfig`: ``trials`` named ``trials_flag``, the
    other settings prefixed ``tune_`` (``--tune-seed``, ``--no-tune-pruning``, ...). Without
    ``tuned_by_default`` the budget has no default (no flag: no tuning)."""
    return tuple(
        replace(
            p,
            name=_flag_name(p.name, trials_flag),
            default=p.default if tuned_by_default or p.name != "trials" else None,
        )
        for p in PARAMS
    )


def from_flags(given: Mapping[str, Any], trials_flag: str) -> dict[str, Any]:
    """The tune settings among the command-line ``given`` settings, by their own names."""
    names = {_flag_name(p.name, trials_flag): p.name for p in PARAMS}
    return {names[k]: v for k, v in given.items() if k in names}


def _flag_name(name: str, trials_flag: str) -> str:
    return trials_flag if name == "trials" else f"tune_{name}"


# ---- the search space ------------------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    """One tuned setting: its group (:data:`GROUPS`), its declaration and its trial name."""

    group: str
    param: Param
    name: str


def search_space(
    model: str,
    strategy: str,
    given_model: Mapping[str, Any],
    given_strategy: Mapping[str, Any],
    keep: Sequence[str] = (),
) -> list[Dimension]:
    """What a study of ``model`` x ``strategy`` tunes: every declared setting with a search
    space that is not given (model and strategy settings) or kept (``keep``). A strategy's
    settings are named ``strategy.setting`` in the study."""
    from mtlkit.models import MODELS  # here: the zoo loads PyTorch
    from mtlkit.training.strategies import STRATEGIES

    declared = {
        "model": (MODELS.entry(model).params, given_model, ""),
        "strategy": (STRATEGIES.entry(strategy).params, given_strategy, f"{strategy}."),
        "train": (TrainConfig.params(), {}, ""),
    }
    return [
        Dimension(group, p, prefix + p.name)
        for group, (params, given, prefix) in declared.items()
        for p in params
        if p.search is not None and p.name not in given and p.name not in keep
    ]


def tunable_names() -> set[str]:
    """Every setting any model, strategy or the training declares a search space for."""
    from mtlkit.models import MODELS
    from mtlkit.training.strategies import STRATEGIES

    entries = [*MODELS.entries().values(), *STRATEGIES.entries().values()]
    params = [*TrainConfig.params(), *(p for e in entries for p in e.params)]
    return {p.name for p in params if p.search is not None}


def check_keep(keep: Sequence[str]) -> None:
    """Refuse a ``keep`` name that nothing tunes (a typo would silently tune it)."""
    unknown = sorted(set(keep) - tunable_names())
    if unknown:
        raise ConfigError(
            f"tune keep names {unknown}, which no model, strategy or training setting tunes; "
            f"tunable settings: {sorted(tunable_names())}."
        )


def suggest(trial: Trial, space: Sequence[Dimension]) -> dict[str, dict[str, Any]]:
    """One trial's settings, ``{group: {setting: value}}`` (layer widths as lists)."""
    values: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
    for dim in space:
        value = dim.param.search.suggest(trial, dim.name)
        values[dim.group][dim.param.name] = list(value) if isinstance(value, tuple) else value
    return values


def keep_given(tune: Any, given: Sequence[str], where: str = "the configuration") -> dict:
    """The ``tune`` settings with the training settings among ``given`` (the names a user
    set) added to ``keep``: a study tunes only what the user left open."""
    config = TuneConfig.from_value(tune, where).to_dict()
    searched = [p.name for p in TrainConfig.params() if p.search is not None and p.name in given]
    config["keep"] = list(dict.fromkeys([*(config["keep"] or []), *searched])) or None
    return config


# ---- a finished study ------------------------------------------------------------------------
@dataclass
class StudyRecord:
    """What one finished study leaves in ``RUN_DIR/tuning/<study>.json``.

    ``best`` holds the tuned values by group (:data:`GROUPS`); ``trials`` one dict per trial
    (``number``, ``state`` COMPLETE / PRUNED / FAIL, ``value``, ``last_value`` (the last
    epoch's), ``params``, ``epochs``, ``time_s``, ``diverged``); FAIL marks a trial interrupted by a killed process, retried on resume and
    not counted in the budget. ``importances`` are Optuna's parameter importances (None when
    there were too few finished trials to compute them).
    """

    study: str
    label: str
    architecture: str
    strategy: str
    monitor: str
    direction: str
    tune: dict
    best_value: float
    best_trial: int
    best: dict[str, dict[str, Any]]
    trials: list[dict]
    importances: dict[str, float] | None = None
    tags: dict = field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(t["state"] == state for t in self.trials)

    @property
    def time_s(self) -> float:
        """Seconds spent in the study's trials."""
        return float(sum(t["time_s"] or 0.0 for t in self.trials))

    def settings(self) -> dict[str, Any]:
        """Every tuned value in one mapping (strategy settings as ``strategy.setting``)."""
        out = dict(self.best["train"])
        out.update(self.best["model"])
        name = self.strategy.split(":")[0]
        out.update({f"{name}.{k}": v for k, v in self.best["strategy"].items()})
        return out

    def to_dict(self) -> dict:
        return json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> StudyRecord:
        return cls(**renamed_fields(data))


def study_path(run_dir: Path, study_id: str) -> Path:
    return Path(run_dir) / TUNING_DIR / f"{study_id}.json"


def load_studies(run_dir: Path) -> list[StudyRecord]:
    """The records of the finished studies of ``run_dir`` (empty without tuning)."""
    files = sorted((Path(run_dir) / TUNING_DIR).glob("*.json"))
    return [StudyRecord.from_dict(json.loads(path.read_text())) for path in files]


# ---- the best settings of one study, for ``mtlkit train --params`` --------------------------
BEST_KEYS = ("model", "model_params", "strategy", "strategy_params", "train_params")


def best_settings(
    record: StudyRecord, model_params: Mapping, strategy_params: Mapping, train_params: Mapping
) -> dict:
    """Everything ``mtlkit train`` needs to train what the study found best: the given
    settings with the tuned ones over them, and how the study went."""
    return {
        "model": record.architecture,
        "model_params": {**model_params, **record.best["model"]},
        "strategy": record.strategy.split(":")[0],
        "strategy_params": {**strategy_params, **record.best["strategy"]},
        "train_params": {**train_params, **record.best["train"]},
        "tuning": {
            "monitor": record.monitor,
            "best_value": record.best_value,
            "best_trial": record.best_trial,
            "trials": record.count("COMPLETE") + record.count("PRUNED"),
            "pruned": record.count("PRUNED"),
            "time_s": round(record.time_s, 1),
            **record.tune,
        },
    }


def read_best(path: Path) -> dict:
    """The settings saved by ``mtlkit tune`` (``best.json``), checked as far as they can be
    without the model and strategy (names as text, settings as mappings, training settings
    by name); anything else is a ConfigError naming the file."""
    path = Path(path)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the settings file {str(path)!r}: {exc}") from None
    if not isinstance(saved, dict) or any(k not in saved for k in BEST_KEYS):
        raise ConfigError(
            f"{str(path)!r} is not a settings file written by 'mtlkit tune' (it needs the keys "
            f"{list(BEST_KEYS)})."
        )
    for key in BEST_KEYS:
        kind = str if key in ("model", "strategy") else dict
        if not isinstance(saved[key], kind):
            what = "a name" if kind is str else "a mapping of settings ({} for none)"
            raise ConfigError(
                f"{key!r} in {str(path)!r} must be {what}, got {json.dumps(saved[key])[:40]}."
            )
    check_names(TrainConfig.params(), saved["train_params"], f"'train_params' in {str(path)!r}")
    return saved
