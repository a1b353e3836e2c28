"""Declared settings: validation messages, search spaces, and the registry built on them."""

import pytest

from mtlkit.errors import ConfigError
from mtlkit.params import Choice, Float, Int, Range, Sizes, Str, resolve
from mtlkit.registry import Registry

DECLARED = (
    Int("n_experts", 8, "experts", low=1, search=Range(2, 16)),
    Float("lr", 1e-3, "learning rate", low=0.0, open_low=True, search=Range(1e-4, 1e-2, log=True)),
    Sizes("hidden", (16,), "widths", search=Choice(((16,), (32, 16)))),
    Str("norm", None, "normalisation", choices=("batch", "layer"), optional=True),
)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"n_expert": 4}, "has no setting(s) ['n_expert']. Did you mean 'n_experts'?"),
        ({"n_experts": 0}, "'n_experts' must be >= 1, got 0"),
        ({"n_experts": 2.5}, "'n_experts' must be an integer"),
        ({"n_experts": True}, "'n_experts' must be an integer"),
        ({"lr": 0.0}, "'lr' must be > 0"),
        ({"lr": float("nan")}, "'lr' must be a finite number"),
        ({"hidden": []}, "'hidden' must list at least one layer size"),
        ({"hidden": [8, -1]}, "every size in"),
        ({"norm": "batchnorm"}, "Did you mean 'batch'?"),
    ],
)
def test_bad_values_get_one_clear_message(given, message):
    with pytest.raises(ConfigError) as err:
        resolve(DECLARED, given, "model 'toy'")
    assert message in str(err.value)
    assert len(str(err.value)) < 300


def test_defaults_fill_in_and_values_are_normalised():
    values = resolve(DECLARED, {"hidden": 32, "norm": None}, "model 'toy'")
    assert values == {"n_experts": 8, "lr": 1e-3, "hidden": (32,), "norm": None}


class _Trial:
    """Records what a tuner was asked (the part of optuna.Trial a search space uses)."""

    def __init__(self):
        self.asked = []

    def suggest_int(self, name, low, high, *, log=False):
        self.asked.append(("int", name, low, high, log))
        return low

    def suggest_float(self, name, low, high, *, log=False):
        self.asked.append(("float", name, low, high, log))
        return high

    def suggest_categorical(self, name, choices):
        self.asked.append(("categorical", name, tuple(choices)))
        return choices[-1]


def test_search_spaces_ask_the_tuner_with_the_declared_ranges():
    trial = _Trial()
    picked = {p.name: p.search.suggest(trial, p.name) for p in DECLARED if p.search}
    assert picked == {"n_experts": 2, "lr": 1e-2, "hidden": (32, 16)}
    assert trial.asked == [
        ("int", "n_experts", 2, 16, False),
        ("float", "lr", 1e-4, 1e-2, True),
        ("categorical", "hidden", ("[16]", "[32, 16]")),  # lists offered as plain labels
    ]


def _toy_registry() -> Registry:
    reg = Registry("widget", "mtlkit.datasets", common=(Int("size", 1, "size", low=1),))
    reg.add("plain", dict, "a plain widget", params=DECLARED[:1])
    reg.variant("big", of="plain", description="a big widget", defaults={"n_experts": 12})
    reg.variant("fixed", of="plain", description="two experts, always", fixed={"n_experts": 2})
    return reg


def test_variants_are_configurations_of_one_entry():
    reg = _toy_registry()
    assert reg.entry("big").target is reg.entry("plain").target is dict
    assert reg.entry("big").resolve({}) == {"n_experts": 12, "size": 1}
    assert reg.entry("fixed").resolve({"size": 3}) == {"size": 3, "n_experts": 2}
    with pytest.raises(ConfigError, match="'fixed' has no setting"):
        reg.entry("fixed").resolve({"n_experts": 4}, "widget")
    with pytest.raises(ConfigError, match="Did you mean 'plain'"):
        reg.entry("plian")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("plain", dict, "again")
    with pytest.raises(ValueError, match="redeclares common"):
        reg.add("other", dict, "clash", params=(Int("size", 2, "size"),))


def test_registries_find_every_module_of_their_package():
    from mtlkit.datasets import DATASETS
    from mtlkit.models import MODELS
    from mtlkit.reporting.plots import PLOTS
    from mtlkit.training.strategies import STRATEGIES

    assert {"single_task", "mmoe", "omoe", "sparse_mmoe", "cgc", "ple", "esmm"} <= set(
        MODELS.names()
    )
    assert {"joint", "alternating", "uncertainty", "pcgrad"} <= set(STRATEGIES.names())
    assert {"synthetic", "census-income"} <= set(DATASETS.names())
    assert {"loss", "accuracy", "auc", "pr", "metric", "time"} <= set(PLOTS.names())
