"""The settings of a comparison grid, validated before any training starts.

A :class:`CompareConfig` comes from command-line arguments or a YAML/TOML file
(:func:`load_config_file`); :meth:`CompareConfig.validate` checks every name and number so a
typo fails in a second with a clear message rather than an hour into a grid.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
import yaml

from mtlkit.errors import ConfigError
from mtlkit.evaluation.metrics import HIGHER_IS_BETTER
from mtlkit.models.registry import check_hyperparameter_names
from mtlkit.training.strategies import make_strategy
from mtlkit.validation import (
    check_choice,
    check_fraction,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
)

#: The baseline every grid includes: one independent network per task.
BASELINE = "single_task"
#: The data set generated in-process (Ma et al. 2018 generator), no files needed.
SYNTHETIC = "synthetic"
METRICS = ("roc_auc", "pr_auc", "accuracy", "loss", "rmse", "mae", "r2")


def parse_choice(value: str, what: str, example: str) -> tuple[str, dict]:
    """``"NAME:key=value:key=value"`` -> ``(NAME, {key: value})``, values read as YAML
    (numbers, lists, booleans)."""
    name, *settings = value.split(":")
    params = {}
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"bad {what} setting {setting!r} in {value!r}; write NAME:key=value, "
                f"e.g. {example}."
            )
        params[key] = yaml.safe_load(raw)
    return name, params


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
                    f"'params', 'label'), got {value!r}."
                )
            params = value.get("params") or {}
            if not isinstance(params, dict):
                raise ConfigError(f"'params' of model {value['model']!r} must be a mapping.")
            return cls(str(value["model"]), dict(params), str(value.get("label") or ""))
        if not isinstance(value, str) or not value:
            raise ConfigError(f"a model must be a name such as 'mmoe', got {value!r}.")
        name, params = parse_choice(value, "model", "mmoe:n_experts=4")
        return cls(name, params, value)

    def validate(self) -> None:
        check_hyperparameter_names(self.model, self.params)


@dataclass
class CompareConfig:
    """Everything that decides a comparison's results (not how fast it runs: see ``jobs``).

    ``data`` is a list of files/folders/globs, or one built-in name (``"synthetic"``, or a
    data set of :mod:`mtlkit.datasets`, whose loader gets ``dataset_options`` such as
    ``{"path": "census-income.test.gz", "group": 2}``). ``correlations`` (synthetic only)
    makes the task correlation a grid axis. The single-task baseline is always added.
    """

    data: list[str]
    models: list[ModelChoice]
    labels: list[str] | None = None
    strategies: list[str] = field(default_factory=lambda: ["joint"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    correlations: list[float] | None = None
    rows: int = 10_000
    epochs: int = 20
    batch_size: int = 512
    lr: float = 1e-3
    patience: int = 5
    split_seed: int = 0
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    metric: str = "roc_auc"
    dataset_options: dict = field(default_factory=dict)

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: dict, where: str = "the configuration") -> CompareConfig:
        """Build from plain values (a parsed file or CLI arguments); unknown keys fail."""
        names = [f.name for f in fields(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown setting {key!r} in {where}.{hint} Known: {names}.")
        for key in ("data", "models"):
            if not values.get(key):
                raise ConfigError(f"{where} must give '{key}'.")
        values = dict(values)
        data = values["data"]
        values["data"] = [str(d) for d in ([data] if isinstance(data, str) else data)]
        values["models"] = [ModelChoice.parse(m) for m in _as_list(values["models"])]
        for key in ("labels", "strategies", "seeds", "correlations", "fractions"):
            if key in values and values[key] is not None:
                values[key] = _as_list(values[key])
        config = cls(**values)
        config.validate()
        return config

    def to_dict(self) -> dict:
        out = asdict(self)
        out["models"] = [asdict(m) for m in self.models]
        return out

    # ---- properties ----------------------------------------------------------------------
    @property
    def builtin(self) -> str | None:
        """The built-in data set name, or None when ``data`` names files."""
        if len(self.data) == 1 and _looks_like_name(self.data[0]):
            return self.data[0]
        return None

    @property
    def higher_is_better(self) -> bool:
        return self.metric in HIGHER_IS_BETTER

    def grid_models(self) -> list[ModelChoice]:
        """The configured models, with the single-task baseline first (added if missing)."""
        models = [m for m in self.models if m.label != BASELINE]
        return [next((m for m in self.models if m.label == BASELINE), ModelChoice(BASELINE))] + (
            models
        )

    def train_params(self) -> dict:
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "patience": self.patience,
        }

    # ---- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first bad setting (names, ranges, combinations)."""
        if not self.models:
            raise ConfigError("give at least one model, e.g. --models shared_bottom mmoe.")
        labels = [m.label for m in self.models]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"model labels must be unique, got {labels}.")
        for m in self.models:
            m.validate()
        if not self.strategies:
            raise ConfigError("give at least one strategy, e.g. --strategies joint.")
        for s in self.strategies:
            if not isinstance(s, str) or not s:
                raise ConfigError(f"a strategy must be a name such as 'joint', got {s!r}.")
            name, params = parse_strategy(s)
            make_strategy(name, **params)  # checks the name and its parameters
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"strategies are listed twice: {self.strategies}.")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"give one or more distinct seeds, got {self.seeds}.")
        for s in self.seeds:
            check_non_negative_int("every seed", s)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_float("lr", self.lr)
        check_non_negative_int("patience", self.patience)
        check_non_negative_int("split_seed", self.split_seed)
        check_choice("metric", self.metric, METRICS)
        if len(self.fractions) != 3 or abs(sum(self.fractions) - 1) > 1e-9:
            raise ConfigError(
                f"fractions must be three numbers (train, validation, test) that sum to 1, "
                f"got {self.fractions}."
            )
        for f in self.fractions:
            check_fraction("every split fraction", f)
        if self.labels is not None and (
            not self.labels or len(set(self.labels)) < len(self.labels)
        ):
            raise ConfigError(f"labels must be distinct column names, got {self.labels}.")
        if self.builtin == SYNTHETIC:
            check_positive_int("rows", self.rows)
            for c in self.correlations or []:
                if isinstance(c, bool) or not isinstance(c, (int, float)) or not -1 <= c <= 1:
                    raise ConfigError(f"every correlation must be a number in [-1, 1], got {c!r}.")
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
        if not isinstance(self.dataset_options, dict):
            raise ConfigError(f"dataset_options must be a mapping, got {self.dataset_options!r}.")
        if self.dataset_options and self.builtin in (None, SYNTHETIC):
            raise ConfigError(
                "dataset options (--dataset-path, --dataset-option) only apply to a built-in "
                "data set such as 'census-income'; see 'mtlkit datasets'."
            )


def load_config_file(path: str | Path) -> dict:
    """The raw settings of a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file; relative data
    paths are made relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            values = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            values = yaml.safe_load(text)
        else:
            raise ConfigError(f"config file {str(path)!r} must end in .yaml, .yml or .toml.")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot parse {str(path)!r}: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{str(path)!r} must hold a mapping of settings (key: value).")
    data = values.get("data")
    if data is not None:
        items = [data] if isinstance(data, str) else list(data)
        values["data"] = [_relative_to(path.parent, str(d)) for d in items]
    return values


def _relative_to(folder: Path, item: str) -> str:
    if _looks_like_name(item) or Path(item).is_absolute():
        return item
    return str(folder / item)


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _looks_like_name(text: str) -> bool:
    """A bare word such as ``synthetic`` or ``census-income`` that is not an existing path."""
    return (
        not Path(text).exists()
        and "/" not in text
        and "." not in text
        and not any(c in text for c in "*?[")
    )


def parse_strategy(value: str) -> tuple[str, dict]:
    """``"alternating:order=proportional"`` -> ``("alternating", {"order": "proportional"})``."""
    return parse_choice(value, "strategy", "alternating:order=proportional")
