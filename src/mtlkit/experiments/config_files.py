"""Reading config files and YAML settings: YAML (``.yaml``/``.yml``) or TOML (``.toml``), UTF-8,
bounded in size before they are parsed and, for YAML, in the number of values their aliases
expand to; every problem is one :class:`~mtlkit.errors.ConfigError` line naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
import yaml

from mtlkit.errors import ConfigError

#: The most values a YAML text may expand to through its aliases (``*name``): a few
#: hundred bytes of nested aliases can otherwise stand for billions of values.
MAX_YAML_VALUES = 100_000
#: The largest config file or YAML setting read: settings, never data (a grid's file is a few
#: kB); a larger one is refused before it is parsed.
MAX_CONFIG_BYTES = 1 << 20


def load_config_file(path: str | Path) -> dict:
    """The raw settings of a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file; relative data
    paths are made relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"config file {str(path)!r} must end in .yaml, .yml or .toml.")
    _check_size(path.stat().st_size, repr(str(path)))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ConfigError(
            f"config file {str(path)!r} is not UTF-8 text: byte 0x{raw[err.start]:02x} at offset "
            f"{err.start} (line {line}); save it as UTF-8."
        ) from None
    if suffix == ".toml":
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"cannot parse {str(path)!r}: {str(exc)[:200]}") from None
        except RecursionError:
            raise ConfigError(_too_deep(repr(str(path)))) from None
    else:
        values = read_yaml(text, repr(str(path)))
    if not isinstance(values, dict):
        raise ConfigError(f"{str(path)!r} must hold a mapping of settings (key: value).")
    data = values.get("data")
    if isinstance(data, (str, list)):
        items = [data] if isinstance(data, str) else list(data)
        values["data"] = [_relative_to(path.parent, str(d)) for d in items]
    return values


def read_yaml(text: str, where: str) -> Any:
    """``text`` read as YAML (safe types only), refusing texts whose aliases expand to more
    than :data:`MAX_YAML_VALUES` values (texts over :data:`MAX_CONFIG_BYTES` before they are
    parsed); errors are one :class:`ConfigError` line naming ``where``."""
    _check_size(len(text.encode()), where)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        if _expanded_size(node, sizes) > MAX_YAML_VALUES:
            through = (
                "through its YAML aliases (*name); write the values out instead of nesting aliases"
                if _has_alias(node, set())
                else "(settings, not data)"
            )
            raise ConfigError(f"{where} holds more than {MAX_YAML_VALUES:,} values {through}.")
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"cannot parse {where}: {exc.problem or exc.context}{at}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse {where}: {str(exc)[:200]}.") from None
    except RecursionError:
        raise ConfigError(_too_deep(where)) from None
    finally:
        loader.dispose()


def _check_size(size: int, where: str) -> None:
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{where} is {size / 2**20:.1f} MiB; a config holds settings, at most "
            f"{MAX_CONFIG_BYTES / 2**20:.0f} MiB: give data as files (the 'data' setting)."
        )


def _too_deep(where: str) -> str:
    return f"cannot parse {where}: its values are nested too deeply."


def _has_alias(node: yaml.Node, seen: set[int]) -> bool:
    """Whether a node is used twice under ``node`` (what a YAML alias ``*name`` does)."""
    if id(node) in seen:
        return True
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        return False
    return any(_has_alias(child, seen) for child in children)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for once its aliases are expanded (each shared node
    counted once per use; a recursive alias counts as too many)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    sizes[key] = MAX_YAML_VALUES + 1  # while being counted: a node inside itself is refused
    children: list = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    total = 1
    for child in children:
        total += _expanded_size(child, sizes)
        if total > MAX_YAML_VALUES:
            break
    sizes[key] = total
    return total


def _relative_to(folder: Path, item: str) -> str:
    if looks_like_name(item) or Path(item).is_absolute():
        return item
    return str(folder / item)


def looks_like_name(text: str) -> bool:
    """A bare word such as ``synthetic`` or ``census-income`` that is not an existing path."""
    return (
        not Path(text).exists()
        and "/" not in text
        and "." not in text
        and not any(c in text for c in "*?[")
    )
