"""The ``NAME:key=value:key=value`` form of a model or strategy choice on the command line
and in config files (``mmoe:n_experts=4``, ``alternating:order=proportional``)."""

from __future__ import annotations

from mtlkit.errors import ConfigError
from mtlkit.experiments.config_files import read_yaml
from mtlkit.params import shown


def parse_choice(value: str, what: str, example: str) -> tuple[str, dict]:
    """``"NAME:key=value:key=value"`` -> ``(NAME, {key: value})``, values read as YAML
    (numbers, lists, booleans)."""
    name, *settings = value.split(":")
    params = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"bad {what} setting {shown(item)} in {shown(value)}; write NAME:key=value, e.g. "
                f"{example}."
            )
        params[key] = read_yaml(raw, f"the {what} setting {item!r:.60}")
    return name, params


def parse_strategy(value: str) -> tuple[str, dict]:
    """``"alternating:order=proportional"`` -> ``("alternating", {"order": "proportional"})``."""
    return parse_choice(value, "strategy", "alternating:order=proportional")
