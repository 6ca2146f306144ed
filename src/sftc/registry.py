"""The one shape of sftc's registries (methods, models, datasets, presets): names to entries.

Every registry is fed three ways, and reads alike: sftc's own ``@register_*`` decorators, the
entry points of installed packages (``group``, loaded on first use) and ``--plugin`` modules
(:mod:`sftc.plugins`). A registry may also accept *specs*, names that are not registered but say
how to build the entry (``resolve``; models: ``module.path:callable``, ``timm:NAME``).
"""
from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import ModuleType
from typing import TypeVar

from .errors import NameTaken, SftcError

T = TypeVar("T")


class Registry(Mapping[str, T]):
    """Entries by name, with aliases; a read-only mapping over the canonical names.

    ``kind`` names an entry in messages (``unknown model 'vgg'; choose one of: ...``); ``sort``
    lists names alphabetically instead of in registration order; ``ignore_case`` looks names and
    aliases up in lower case. Registering a name again replaces its entry.

    Plugins: ``group`` is the entry-point group loaded the first time the registry is listed or
    asked for a name; ``adopt(name, obj)`` registers an entry point's object that is not a module
    (a module registers itself by being imported). Specs: ``resolve(text)`` returns the entry
    that a spec such as ``my_pkg.models:make_net`` names, or None when ``text`` is no spec;
    ``spec_help`` says in the unknown-name message what specs look like.
    """

    def __init__(self, kind: str, *, sort: bool = False, ignore_case: bool = False,
                 group: str | None = None, adopt: Callable[[str, object], object] | None = None,
                 resolve: Callable[[str], T | None] | None = None, spec_help: str = ""):
        self.kind = kind
        self.sort = sort
        self.ignore_case = ignore_case
        self.group = group
        self.adopt = adopt
        self.resolve = resolve
        self.spec_help = spec_help
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._specs: dict[str, T] = {}
        self._sources: dict[str, str | None] = {}
        self._plugins_loaded = group is None
        self._loading = False

    def _key(self, name: str) -> str:
        return name.lower() if self.ignore_case else name

    def add(self, name: str, entry: T, aliases: Iterable[str] = ()) -> T:
        """Register ``entry`` as ``name`` (and ``aliases``); returns the entry (for decorators).

        A name (or alias) already registered from another module is refused in one line naming
        both: a plugin never silently replaces sftc's own entry or another plugin's. The same
        module registering a name again (imported twice, a class redefined) replaces its entry.
        """
        if not name:
            raise ValueError(f"a {self.kind} needs a name")
        name = self._key(name)
        source = source_of(entry)
        for key in (name, *(self._key(alias) for alias in aliases)):
            owner = self._aliases.get(key, key)
            if owner in self._entries and self._sources.get(owner) != source:
                taken = "" if key == owner else f" (an alias of {owner!r})"
                raise NameTaken(f"{describe_source(source)} registers the {self.kind} {key!r}, "
                                f"already registered by {describe_source(self._sources.get(owner))}"
                                f"{taken}; give yours another name (a plugin cannot replace "
                                f"another's {self.kind}, nor sftc's own)")
        self._entries[name] = entry
        self._sources[name] = source
        for alias in aliases:
            self._aliases[self._key(alias)] = name
        return entry

    def load_plugins(self) -> None:
        """Load the entry points of ``group`` (once; a failing one is a one-line SftcError)."""
        if self._plugins_loaded or self._loading:
            return
        from .plugins import entry_points, load_entry_point

        self._loading = True
        try:
            known = list(self._entries.values())
            for ep in entry_points(self.group):
                obj = load_entry_point(ep)
                if isinstance(obj, ModuleType) or any(obj is e for e in known):
                    continue    # a module registered its entries when imported
                if self.adopt is None:
                    raise SftcError(f"plugin entry point {ep.name!r} in group {self.group} names "
                                    f"{ep.value!r}, which is not a module; name the module that "
                                    f"registers the {self.kind}")
                self.adopt(ep.name, obj)
            self._plugins_loaded = True
        finally:
            self._loading = False

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._entries) if self.sort else list(self._entries)

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases, or ``name`` itself when it is a
        spec the registry resolves; a one-line error if unknown."""
        self.load_plugins()
        if not isinstance(name, str):
            raise SftcError(f"a {self.kind} is named by a string, got {type(name).__name__}")
        key = self._key(name)
        key = self._aliases.get(key, key)
        if key in self._entries:
            return key
        spec = name.strip()
        if self.resolve is not None:
            if spec not in self._specs:
                entry = self.resolve(spec)
                if entry is not None:
                    self._specs[spec] = entry
            if spec in self._specs:
                return spec
        more = f" (or {self.spec_help})" if self.spec_help else ""
        raise SftcError(f"unknown {self.kind} {name!r}; choose one of: "
                        f"{', '.join(self.names())}{more}")

    def find(self, name: str) -> T:
        """The entry for ``name`` (an alias, or a spec); a one-line SftcError if unknown."""
        key = self.canonical(name)
        return self._entries[key] if key in self._entries else self._specs[key]

    def is_spec(self, name: str) -> bool:
        """Whether ``name`` is resolved as a spec rather than registered."""
        return self.canonical(name) in self._specs and self.canonical(name) not in self._entries

    def __getitem__(self, name: str) -> T:
        try:
            return self.find(name)
        except SftcError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load_plugins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


def source_of(entry) -> str | None:
    """The module an entry comes from: a class's or function's own module (a dataset's loader),
    else the module that called the registering function (a preset object)."""
    for obj in (entry, getattr(entry, "loader", None), getattr(entry, "compute", None)):
        if isinstance(obj, type) or inspect.isfunction(obj) or inspect.ismethod(obj):
            return obj.__module__
    frame = inspect.currentframe()
    try:
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module != __name__ and not frame.f_code.co_name.startswith(
                    ("register", "add", "_adopt", "wrap", "declare")):
                return module
            frame = frame.f_back
    finally:
        del frame
    return None


def describe_source(module: str | None) -> str:
    """``sftc.methods.finetune (sftc's own)``, ``plugin /path/a.py``, or the module's name."""
    if not module:
        return "another module"
    if module == "sftc" or module.startswith("sftc."):
        return f"sftc's own {module}"
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None)
    return f"the plugin {path}" if path else f"the module {module}"
