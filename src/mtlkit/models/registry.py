"""One name -> one constructor: ``create("mmoe", schema, n_experts=8)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from mtlkit.data.schema import Schema
from mtlkit.errors import ConfigError
from mtlkit.models.base import MTLModel
from mtlkit.validation import check_choice


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[MTLModel]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, description: str) -> Callable[[type[MTLModel]], type[MTLModel]]:
    """Class decorator adding a model to the registry under ``name``."""

    def wrap(cls: type[MTLModel]) -> type[MTLModel]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, cls, description)
        return cls

    return wrap


def available() -> dict[str, str]:
    """Registered model names with a one-line description each."""
    return {name: entry.description for name, entry in _REGISTRY.items()}


def hyperparameters(name: str) -> dict[str, object]:
    """The hyperparameters a model takes, with their defaults."""
    entry = _entry(name)
    params: dict[str, object] = {}
    for klass in reversed(entry.cls.__mro__):
        if issubclass(klass, MTLModel):
            sig = inspect.signature(klass.__init__)
            for p in sig.parameters.values():
                if p.kind == p.KEYWORD_ONLY:
                    params[p.name] = p.default
    return params


def create(name: str, schema: Schema, **hparams: object) -> MTLModel:
    """Build the model registered as ``name`` for ``schema``.

    Unknown names and unknown or invalid hyperparameters raise :class:`ConfigError`.
    """
    check_hyperparameter_names(name, hparams)
    return _entry(name).cls(schema, **hparams)


def check_hyperparameter_names(name: str, hparams: dict) -> None:
    """Refuse an unknown model name or hyperparameter names it does not take (values are
    checked when the model is built)."""
    valid = hyperparameters(name)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no hyperparameter(s) {unknown}; it takes {sorted(valid)}."
        )


def _entry(name: str) -> ModelEntry:
    check_choice("model name", name, list(_REGISTRY))
    return _REGISTRY[name]
