"""The settings of a comparison grid, validated before any training starts.

A :class:`CompareConfig` comes from command-line arguments or a YAML/TOML file
(:func:`~mtlkit.experiments.config_files.load_config_file`). Its settings are declared once, as :class:`~mtlkit.params.Param`
fields here and in :class:`~mtlkit.training.settings.TrainConfig`; the same declarations
make the ``mtlkit compare`` flags and the config-file keys (training settings sit at the top
level of the file, next to the grid's). :meth:`CompareConfig.validate` checks every name and
number so a typo fails in a second with a clear message rather than an hour into a grid.
Torch-free until the model and strategy names are checked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from mtlkit.data.read_options import READ_PARAMS, read_options
from mtlkit.datasets.synthetic import NAME as SYNTHETIC
from mtlkit.datasets.synthetic import OPTIONS as SYNTHETIC_OPTIONS
from mtlkit.errors import ConfigError
from mtlkit.evaluation.metrics import METRIC_NAMES, metric
from mtlkit.experiments.choices import parse_choice, parse_strategy
from mtlkit.experiments.config_files import looks_like_name
from mtlkit.experiments.tuning_plan import TuneConfig, check_keep
from mtlkit.params import (
    Param,
    check_names,
    declared,
    did_you_mean,
    params_of,
    setting,
    shown,
)
from mtlkit.training.settings import DEFAULT_STRATEGY, TrainConfig

#: The baseline every grid includes: one independent network per task.
BASELINE = "single_task"
#: Training settings a grid does not take: it has ``seeds``, and runs its cells quietly.
NOT_IN_GRID = ("seed", "progress")
#: Corrections for multiple comparisons (see :func:`mtlkit.experiments.stats.adjust_p`):
#: Holm's step-down (family-wise error), Benjamini-Hochberg (false discovery rate), none.
CORRECTIONS = ("holm", "bh", "none")
#: The label of a model's grouped configuration ends with this (see :func:`grouped_label`).
GROUPED_SUFFIX = " (grouped)"
#: ``task_groups`` that are measured (TAG's affinity on the training split) rather than given.
AUTO_GROUPS = "auto"
#: Old spellings still accepted in config files: old -> new.
ALIASES = {"rows": "n_rows"}


_READ = {p.name: p for p in READ_PARAMS}


@dataclass(frozen=True)
class ModelChoice:
    """One model of the grid: a registry name, its hyperparameters and the label it shows."""

    model: str
    params: dict = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.model)

    @classmethod
    def parse(cls, value: object) -> ModelChoice:
        """``"mmoe"``, ``"mmoe:n_experts=4:expert_hidden=[8]"`` or a mapping with ``model``,
        ``params`` and ``label``."""
        if isinstance(value, dict):
            unknown = set(value) - {"model", "params", "label"}
            if unknown or "model" not in value:
                raise ConfigError(
                    f"a model entry must be a name or a mapping with 'model' (and optional "
                    f"'params', 'label'), got {shown(value)}."
                )
            params = value.get("params") or {}
            if not isinstance(params, dict):
                raise ConfigError(f"'params' of model {value['model']!r} must be a mapping.")
            return cls(str(value["model"]), dict(params), str(value.get("label") or ""))
        if not isinstance(value, str) or not value:
            raise ConfigError(f"a model must be a name such as 'mmoe', got {shown(value)}.")
        name, params = parse_choice(value, "model", "mmoe:n_experts=4")
        return cls(name, params, value)


@dataclass
class CompareConfig:
    """Everything that decides a comparison's results (not how fast it runs: see ``jobs``).

    ``data`` is a list of files/folders/globs, or one built-in name (``"synthetic"``, or a
    data set of :mod:`mtlkit.datasets`, whose loader gets ``dataset_options`` such as
    ``{"path": "census-income.test.gz", "group": 2}``). ``correlations`` (synthetic only)
    makes the task correlation a grid axis, ``label_fractions`` (``{task: [1.0, 0.1]}``) the
    share of one task's training labels kept. The single-task baseline is always added.
    ``train`` holds the training settings shared by every run; ``tune`` (None: no tuning)
    the tuning budget every model x strategy gets (see :mod:`.tuning`).
    """

    data: list[str]
    models: list[ModelChoice]
    labels: list[str] | None = setting(
        None, "names", "the label columns (one task each)", optional=True
    )
    strategies: list[str] = setting(
        (DEFAULT_STRATEGY,),
        "names",
        "training strategies, optionally with settings, e.g. joint uncertainty "
        "alternating:order=proportional",
    )
    seeds: list[int] = setting(
        (0, 1, 2), "ints", "model seeds: every run is repeated per seed", low=0
    )
    correlations: list[float] | None = setting(
        None,
        "floats",
        "synthetic data only: task correlations to compare",
        low=-1.0,
        high=1.0,
        optional=True,
    )
    n_rows: int = setting(10_000, "int", "synthetic data only: rows generated", low=10)
    split_seed: int = setting(0, "int", "seed of the data split shared by every run", low=0)
    fractions: list[float] = setting(
        (0.7, 0.15, 0.15), "floats", "train, validation and test shares of the rows", low=0.0
    )
    stream: bool | None = setting(
        None,
        "bool",
        "read Parquet data batch by batch instead of loading it whole (the splits then take "
        "whole row groups, see docs/scaling.md); unset: stream Parquet data over 1 GiB on disk",
        optional=True,
    )
    metric: str = setting("roc_auc", "str", "the test metric compared", choices=METRIC_NAMES)
    correction: str = setting(
        "holm",
        "str",
        "correction for multiple comparisons over the grid's comparisons against single-task: "
        "holm (family-wise error), bh (Benjamini-Hochberg false discovery rate) or none",
        choices=CORRECTIONS,
    )
    dataset_options: dict = setting(
        None, "mapping", "built-in data sets only: loader options", optional=True
    )
    missing_labels: list | None = declared(_READ["missing_labels"])
    bad_values: str = declared(_READ["bad_values"])
    encoding: str = declared(_READ["encoding"])
    label_fractions: dict | None = setting(
        None,
        "mapping",
        "label scarcity as a grid axis: keep only these shares of one task's training labels, "
        "TASK=1.0,0.1,0.02 (nested random subsets, masked; validation and test keep all labels)",
        optional=True,
    )
    task_groups: str | None = setting(
        None,
        "str",
        "also train each model once per group of tasks (a single-task model for a task alone) "
        "beside all-in-one and single-task: 'auto' (the groups TAG's task affinity picks on "
        "the training split, see docs/affinity.md) or the groups, e.g. 'income,education;sex' "
        "(config: [[income, education], [sex]])",
        optional=True,
    )
    train: TrainConfig = field(default_factory=lambda: TrainConfig(progress=False))
    tune: TuneConfig | None = None

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_mapping(
        cls, values: dict, where: str = "the configuration", validate: bool = True
    ) -> CompareConfig:
        """Build from plain values (a parsed file or CLI arguments); unknown keys fail.

        ``validate=False`` reads a saved configuration without checking the model and
        strategy names (no PyTorch needed).
        """
        values = {ALIASES.get(k, k): v for k, v in values.items()}
        if values.get("label_fractions") is not None:
            values["label_fractions"] = parse_label_fractions(values["label_fractions"], where)
        if values.get("task_groups") is not None:
            values["task_groups"] = parse_task_groups(values["task_groups"], where)
        known = [*GRID_PARAM_NAMES, "data", "models", "tune", *TRAIN_PARAM_NAMES]
        for key in values:
            if key not in known:
                hint = did_you_mean(key, known) or "See 'mtlkit compare --help'."
                raise ConfigError(f"unknown setting {shown(key)} in {where}. {hint}")
        for key in ("data", "models"):
            if not values.get(key):
                raise ConfigError(f"{where} must give '{key}'.")
        data = values["data"]
        if not isinstance(data, (str, list, tuple)) or not all(
            isinstance(d, str) for d in _as_list(data)
        ):
            raise ConfigError(
                f"'data' in {where} must be a path, a list of paths or a name, got {shown(data)}."
            )
        grid = {
            p.name: _as_list(values[p.name])
            if p.kind in _LISTS and values[p.name] is not None
            else values[p.name]
            for p in GRID_PARAMS
            if p.name in values
        }
        for p in GRID_PARAMS:
            grid[p.name] = p.validate(grid[p.name], where) if p.name in grid else p.default
        train = {
            p.name: p.validate(values[p.name], where) for p in TRAIN_PARAMS if p.name in values
        }
        try:
            models = [ModelChoice.parse(m) for m in _as_list(values["models"])]
        except ConfigError as err:
            raise ConfigError(f"{err} (in {where})") from None
        config = cls(
            data=[str(d) for d in _as_list(data)],
            models=models,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in grid.items()},
            train=TrainConfig(progress=False, **train),
            tune=TuneConfig.from_value(values.get("tune"), where),
        )
        config.check(validate)
        try:  # the config is saved as JSON: YAML dates, NaN... are refused here, clearly
            json.dumps(config.to_dict(), allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"{where} holds a value that is not plain text, a number, a list or a mapping "
                f"({str(err)[:80]}); quote it."
            ) from None
        return config

    def to_dict(self) -> dict:
        """The flat mapping (the config-file form): grid settings and training settings."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "train"}
        out["models"] = [asdict(m) for m in self.models]
        out["tune"] = self.tune.to_dict() if self.tune else None
        out.update({k: getattr(self.train, k) for k in TRAIN_PARAM_NAMES})
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    # ---- properties ----------------------------------------------------------------------
    @property
    def builtin(self) -> str | None:
        """The built-in data set name, or None when ``data`` names files."""
        if len(self.data) == 1 and looks_like_name(self.data[0]):
            return self.data[0]
        return None

    @property
    def streamed(self) -> bool:
        """Whether the data is streamed (``stream``, else Parquet files above the size)."""
        from mtlkit.data.streaming_table import streams_by_default

        if self.builtin is not None:
            return False
        return streams_by_default(self.data) if self.stream is None else self.stream

    @property
    def higher_is_better(self) -> bool:
        return metric(self.metric).higher_is_better

    def grid_models(self) -> list[ModelChoice]:
        """The configured models, with the single-task baseline first (added if missing; a
        configured one, e.g. ``single_task:hidden=[16]``, is shown as ``single_task``)."""
        models = [m for m in self.models if m.model != BASELINE]
        given = next((m for m in self.models if m.model == BASELINE), ModelChoice(BASELINE))
        return [replace(given, label=BASELINE), *models]

    def read_options(self) -> dict:
        """How the data files are read: ``load_tables``' ``missing_labels``, ``bad_values``
        and ``encoding``."""
        return read_options({p.name: getattr(self, p.name) for p in READ_PARAMS})

    @property
    def scarce_task(self) -> str | None:
        """The task whose training labels ``label_fractions`` thins out, if any."""
        return next(iter(self.label_fractions)) if self.label_fractions else None

    @property
    def given_groups(self) -> list[list[str]] | None:
        """The task groups given explicitly (None without groups, or for ``auto``)."""
        if self.task_groups in (None, AUTO_GROUPS):
            return None
        return [group.split(",") for group in self.task_groups.split(";")]

    def label_fraction_values(self) -> list[float] | None:
        """The shares of the scarce task's training labels the grid compares, if any."""
        return list(self.label_fractions[self.scarce_task]) if self.label_fractions else None

    def train_params(self) -> dict:
        """The training settings every run of the grid gets (not the seed: a grid axis)."""
        return {k: getattr(self.train, k) for k in TRAIN_PARAM_NAMES}

    # ---- validation ----------------------------------------------------------------------
    def check(self, plugins: bool = True) -> None:
        """Raise :class:`ConfigError` on the first bad setting (names, ranges, combinations);
        with ``plugins`` also check model and strategy names and settings."""
        if not self.models:
            raise ConfigError("give at least one model, e.g. --models shared_bottom mmoe.")
        labels = [m.label for m in self.models]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"model labels must be unique, got {labels}.")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"give distinct seeds, got {self.seeds}.")
        check_fractions(self.fractions)
        parse_label_fractions(self.label_fractions)
        self._check_task_groups()
        self._check_data_settings()
        if plugins:
            self._check_plugins()

    def _check_task_groups(self) -> None:
        if self.task_groups is None:
            return
        parse_task_groups(self.task_groups)
        mtl = [m.label for m in self.models if m.model != BASELINE]
        if not mtl:
            raise ConfigError(
                "task groups train an MTL model per group: give one, e.g. --models mmoe."
            )
        for label in mtl:
            if label.endswith(GROUPED_SUFFIX):
                raise ConfigError(
                    f"model label {label!r} ends with {GROUPED_SUFFIX!r}, which names the "
                    "grouped configurations of task groups; choose another label."
                )
        if self.labels is not None and self.given_groups is not None:
            check_task_groups(self.given_groups, self.labels)
        if self.task_groups == AUTO_GROUPS and len(self.correlations or []) > 1:
            raise ConfigError(
                "task groups 'auto' measures one grouping, but the grid compares several task "
                "correlations; give the groups explicitly or one correlation."
            )
        if self.streamed:
            raise ConfigError(
                "task groups train models on subsets of the tasks in memory; they do not apply "
                "to streamed data (leave them out, or load the data whole with --no-stream)."
            )

    def _check_data_settings(self) -> None:
        if self.builtin == SYNTHETIC:
            if self.correlations is not None and len(set(self.correlations)) < len(
                self.correlations
            ):
                raise ConfigError(f"correlations are listed twice: {self.correlations}.")
        elif self.correlations:
            raise ConfigError(
                "correlations only apply to the built-in 'synthetic' data; remove them or use "
                "data 'synthetic'."
            )
        elif self.builtin is None and self.labels is None:
            raise ConfigError("give the label columns of your files, e.g. --labels a b.")
        read = {p.name: getattr(self, p.name) for p in READ_PARAMS}
        read_options(read)
        changed = [p.name for p in READ_PARAMS if read[p.name] != p.default]
        if changed and self.builtin is not None:
            raise ConfigError(
                f"{' and '.join(changed)} only reads your own files, not the built-in data "
                f"set {self.builtin!r}; remove that setting."
            )
        if self.label_fractions and self.streamed:
            raise ConfigError(
                "label_fractions thin out labels in memory; they do not apply to streamed data "
                "(leave them out, or load the data whole with --no-stream)."
            )
        if self.stream and self.builtin is not None:
            raise ConfigError(
                f"stream applies to Parquet files, not to the built-in data set {self.builtin!r}."
            )
        if self.dataset_options and self.builtin is None:
            raise ConfigError(
                "dataset options (--dataset-path, --dataset-option) only apply to a built-in "
                "data set such as 'census-income' or 'synthetic'; see 'mtlkit datasets'."
            )
        if self.builtin == SYNTHETIC:
            options = self.dataset_options or {}
            check_names(SYNTHETIC_OPTIONS, options, "synthetic data")
            for p in SYNTHETIC_OPTIONS:
                value = options.get(p.name)
                for item in value if p.name == "noise" and isinstance(value, list) else [value]:
                    if item is not None:
                        p.validate(item, "synthetic data")

    def _check_plugins(self) -> None:
        from mtlkit.models import check_hyperparameters  # here: importing the zoo loads PyTorch
        from mtlkit.training.strategies import check_strategy

        for m in self.models:
            check_hyperparameters(m.model, m.params)
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"strategies are listed twice: {self.strategies}.")
        for s in self.strategies:
            check_strategy(*parse_strategy(s))
        if self.tune is not None and self.tune.keep:
            check_keep(self.tune.keep)


GRID_PARAMS: tuple[Param, ...] = params_of(CompareConfig)
GRID_PARAM_NAMES = tuple(p.name for p in GRID_PARAMS)
#: The training settings a grid takes (at the top level of its config file).
TRAIN_PARAMS: tuple[Param, ...] = tuple(
    p for p in TrainConfig.params() if p.name not in NOT_IN_GRID
)
TRAIN_PARAM_NAMES = tuple(p.name for p in TRAIN_PARAMS)
_LISTS = ("names", "ints", "floats", "sizes", "values")


def check_fractions(fractions: Sequence[float]) -> None:
    """Three shares (train, validation, test) that sum to 1, with training and validation
    rows."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or 0 in fractions[:2]:
        raise ConfigError(
            "fractions must be three numbers (train, validation, test) that sum to 1, with "
            f"some training and validation rows, got {list(fractions)}."
        )


#: One share of a task's training labels.
LABEL_FRACTION = Param(
    "label_fractions",
    None,
    "floats",
    "shares of the task's training labels",
    low=0.0,
    open_low=True,
    high=1.0,
)


def parse_label_fractions(value: Any, where: str = "the configuration") -> dict | None:
    """``{task: [fraction, ...]}`` from a mapping or the command-line form
    ``TASK=1.0,0.1,0.02``: one task, distinct shares in (0, 1]."""
    example = "income=1.0,0.1,0.02 (config: label_fractions: {income: [1.0, 0.1, 0.02]})"
    if value is None:
        return None
    if isinstance(value, str):
        task, sep, numbers = value.partition("=")
        try:
            parsed = {task: [float(x) for x in numbers.split(",")]} if sep and task else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise ConfigError(
                f"label fractions in {where} must read like {example}; got {value!r}."
            )
        value = parsed
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(
            f"label fractions in {where} take one task (the one whose labels become scarce) "
            f"and its shares, e.g. {example}; got {value!r}."
        )
    ((task, fractions),) = value.items()
    fractions = list(fractions) if isinstance(fractions, (list, tuple)) else [fractions]
    checked = list(LABEL_FRACTION.validate(fractions, f"{where}, task {task!r}"))
    if len(set(checked)) < len(checked):
        raise ConfigError(f"label fractions of task {task!r} are listed twice: {checked}.")
    return {str(task): checked}


def parse_task_groups(value: Any, where: str = "the configuration") -> str:
    """``task_groups`` in its one saved form: ``"auto"``, or the groups as
    ``"t0,t1;t2,t3"``, from that text or a list of lists of task names (config files). A task
    named twice, an empty group or a name holding ``,`` or ``;`` fails here; whether the
    groups cover the tasks exactly is :func:`check_task_groups`'."""
    example = "'auto' or 'income,education;sex' (config: [[income, education], [sex]])"
    if isinstance(value, str):
        text = value.strip()
        if text == AUTO_GROUPS:
            return text
        groups: Any = [[t.strip() for t in group.split(",")] for group in text.split(";")]
    elif isinstance(value, (list, tuple)) and all(isinstance(g, (list, tuple)) for g in value):
        groups = [list(g) for g in value]
    else:
        raise ConfigError(f"task groups in {where} must be {example}; got {shown(value)}.")
    for group in groups:
        for task in group:
            if not isinstance(task, str) or not task or "," in task or ";" in task:
                raise ConfigError(
                    f"task groups in {where} must be {example}: each group a list of task "
                    f"names without ',' or ';'; got {shown(value)}."
                )
    seen: set[str] = set()
    for group in groups:
        for task in group:
            if task in seen:
                raise ConfigError(
                    f"task {task!r} is in two task groups in {where} ({shown(value)}); put each "
                    "task in exactly one group."
                )
            seen.add(task)
    if not groups:
        raise ConfigError(f"task groups in {where} must be {example}; got {shown(value)}.")
    return ";".join(",".join(group) for group in groups)


def check_task_groups(groups: list[list[str]], tasks: Sequence[str], where: str = "") -> None:
    """Every task of ``groups`` is one of ``tasks`` and every one of ``tasks`` is in a group
    (the groups partition the tasks), or one ConfigError line naming the task."""
    given = [t for g in groups for t in g]
    for task in given:
        if task not in tasks:
            hint = did_you_mean(task, tasks) or f"The tasks are {list(tasks)}."
            raise ConfigError(f"task groups{where} name {task!r}, which is not a task. {hint}")
    left = [t for t in tasks if t not in given]
    if left:
        raise ConfigError(
            f"task groups{where} leave out {', '.join(map(repr, left))}: put every task in a "
            "group (a task alone is a group of one, e.g. 'a,b;c')."
        )


def grouped_label(label: str) -> str:
    """The label of ``label``'s grouped configuration (one model per task group)."""
    return label + GROUPED_SUFFIX


def all_in_one_label(label: str) -> str | None:
    """The all-in-one model whose grouped configuration ``label`` is (None: not grouped)."""
    return label[: -len(GROUPED_SUFFIX)] if label.endswith(GROUPED_SUFFIX) else None


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]
