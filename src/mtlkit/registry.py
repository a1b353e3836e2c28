"""One registry mechanism for every plug-in: models, strategies, data sets and report plots.

A plug-in is one module in its package that decorates its class or function::

    @MODELS.register("mmoe", "multi-gate mixture of experts", params=[Int("n_experts", 8)])
    class MMoE(MTLModel): ...

The registry imports every module of its package the first time it is asked (no hand-kept
import lists), so adding a plug-in is adding one file. A *variant* is a registered
configuration of another entry (other defaults, some settings fixed), not a subclass.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mtlkit.errors import ConfigError
from mtlkit.params import Param, check_names, did_you_mean, resolve, shown

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered plug-in: its name, what it builds, a one-line description, its declared
    parameters, the settings fixed by a variant, and free-form ``info`` (e.g. a data set's
    source)."""

    name: str
    target: T
    description: str
    params: tuple[Param, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, given: Mapping[str, Any], kind: str = "") -> dict[str, Any]:
        """Every parameter with ``given`` values validated and defaults for the rest, plus
        the fixed settings: the keyword arguments to build this entry with."""
        return {**resolve(self.params, given, f"{kind} {self.name!r}".strip()), **self.fixed}

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def check(self, given: Mapping[str, Any], kind: str = "") -> Checked[T]:
        """This entry with ``given`` settings validated (:meth:`resolve`), ready to build."""
        return Checked(self, self.resolve(given, kind))


@dataclass(frozen=True)
class Checked(Generic[T]):
    """A registry entry with its settings validated against its declarations, defaults
    filled in (:meth:`Entry.check`). It is the one check of those settings: whatever
    receives a ``Checked`` builds from it without checking them again."""

    entry: Entry[T]
    params: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.entry.name

    def build(self, *args: Any) -> Any:
        """The entry's target called with ``args`` and the checked settings."""
        return self.entry.target(*args, **self.params)


class Registry(Generic[T]):
    """Name -> :class:`Entry` for one kind of plug-in, filled by the modules of ``package``.

    ``common`` parameters are declared once for every entry (e.g. every model's
    ``embedding_dim``); entries list them after their own.
    """

    def __init__(self, kind: str, package: str, common: Sequence[Param] = ()) -> None:
        self.kind = kind
        self.package = package
        self.common = tuple(common)
        self._entries: dict[str, Entry[T]] = {}
        self._discovered = False

    # ---- registration ------------------------------------------------------------------------
    def register(
        self,
        name: str,
        description: str,
        *,
        params: Sequence[Param] = (),
        **info: Any,
    ) -> Callable[[T], T]:
        """Decorator: register the decorated class or function as ``name``."""

        def wrap(target: T) -> T:
            self.add(name, target, description, params=params, **info)
            return target

        return wrap

    def add(
        self, name: str, target: T, description: str, *, params: Sequence[Param] = (), **info: Any
    ) -> Entry[T]:
        """Register ``target`` as ``name`` (the decorator's non-decorator form, for entries
        made in a loop)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} name {name!r} is registered twice")
        own = tuple(params)
        clash = {p.name for p in own} & {p.name for p in self.common}
        if clash:
            raise ValueError(f"{self.kind} {name!r} redeclares common parameter(s) {clash}")
        entry = Entry(name, target, description, own + self.common, {}, dict(info))
        self._entries[name] = entry
        return entry

    def variant(
        self,
        name: str,
        of: str,
        description: str,
        *,
        defaults: Mapping[str, Any] | None = None,
        fixed: Mapping[str, Any] | None = None,
    ) -> Entry[T]:
        """Register ``name`` as a configuration of entry ``of``: other ``defaults``, and
        ``fixed`` settings that the variant does not expose."""
        base = self._entries[of]
        defaults, fixed = dict(defaults or {}), dict(fixed or {})
        check_names(base.params, [*defaults, *fixed], f"{self.kind} {of!r}")
        params = tuple(
            p.with_default(p.validate(defaults[p.name], name)) if p.name in defaults else p
            for p in base.params
            if p.name not in fixed
        )
        entry = Entry(name, base.target, description, params, {**base.fixed, **fixed}, base.info)
        if name in self._entries:
            raise ValueError(f"{self.kind} name {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    # ---- lookup ------------------------------------------------------------------------------
    def entry(self, name: object) -> Entry[T]:
        """The entry registered as ``name``; a ConfigError with a suggestion otherwise."""
        entries = self.entries()
        if isinstance(name, str) and name in entries:
            return entries[name]
        hint = did_you_mean(name, entries)
        if hint:  # one suggestion reads better than the whole list (dozens of names)
            raise ConfigError(f"unknown {self.kind} {shown(name)}. {hint}")
        names = sorted(entries)
        listed = ", ".join(names)
        if len(listed) > 160:
            listed = ", ".join(names[:12]) + f", ... ({len(names)} in all)"
        raise ConfigError(f"unknown {self.kind} {shown(name)}. Available: {listed}.")

    def entries(self) -> dict[str, Entry[T]]:
        self._discover()
        return dict(self._entries)

    def names(self) -> list[str]:
        return list(self.entries())

    def available(self) -> dict[str, str]:
        """Registered names with a one-line description each."""
        return {name: e.description for name, e in self.entries().items()}

    def __contains__(self, name: object) -> bool:
        return name in self.entries()

    def _discover(self) -> None:
        """Import every module of the package once, so their decorators run."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        # A registry filled by its own module (no package) has nothing more to import.
        for module in pkgutil.iter_modules(getattr(package, "__path__", [])):
            importlib.import_module(f"{self.package}.{module.name}")
