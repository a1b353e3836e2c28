import pytest

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.errors import ConfigError
from mtlkit.models import available, create, hyperparameters

SCHEMA = Schema((4,), 3, (TaskSpec("a", "binary"), TaskSpec("b", "binary")))


def test_available_lists_names_with_descriptions():
    zoo = available()
    assert {"single_task", "shared_bottom", "mmoe"} <= set(zoo)
    assert all(isinstance(d, str) and d for d in zoo.values())


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(ConfigError, match="Did you mean 'mmoe'"):
        create("mmoee", SCHEMA)


def test_unknown_hyperparameter_lists_valid_ones():
    with pytest.raises(ConfigError, match="n_experts"):
        create("mmoe", SCHEMA, n_expert=3)


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("mmoe", {"n_experts": 0}, "n_experts"),
        ("mmoe", {"expert_hidden": []}, "expert_hidden"),
        ("shared_bottom", {"bottom_hidden": [16, -2]}, "bottom_hidden"),
        ("single_task", {"dropout": 1.5}, "dropout"),
        ("mmoe", {"activation": "rellu"}, "relu"),
    ],
)
def test_invalid_hyperparameters_are_rejected_clearly(name, params, fragment):
    with pytest.raises(ConfigError, match=fragment):
        create(name, SCHEMA, **params)


def test_hyperparameters_include_common_and_own():
    hp = hyperparameters("mmoe")
    assert hp["n_experts"] == 8
    assert "embedding_dim" in hp and "dropout" in hp
