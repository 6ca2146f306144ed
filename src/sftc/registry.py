"""The one shape of sftc's registries (methods, models, datasets, presets): names to entries."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

from .errors import SftcError

T = TypeVar("T")


class Registry(Mapping[str, T]):
    """Entries by name, with aliases; a read-only mapping over the canonical names.

    ``kind`` names an entry in messages (``unknown model 'vgg'; choose one of: ...``); ``sort``
    lists names alphabetically instead of in registration order; ``ignore_case`` looks names and
    aliases up in lower case. Registering a name again replaces its entry.
    """

    def __init__(self, kind: str, *, sort: bool = False, ignore_case: bool = False):
        self.kind = kind
        self.sort = sort
        self.ignore_case = ignore_case
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def _key(self, name: str) -> str:
        return name.lower() if self.ignore_case else name

    def add(self, name: str, entry: T, aliases: Iterable[str] = ()) -> T:
        """Register ``entry`` as ``name`` (and ``aliases``); returns the entry (for decorators)."""
        if not name:
            raise ValueError(f"a {self.kind} needs a name")
        name = self._key(name)
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[self._key(alias)] = name
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries) if self.sort else list(self._entries)

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases; a one-line error if unknown."""
        key = self._key(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise SftcError(f"unknown {self.kind} {name!r}; choose one of: "
                            f"{', '.join(self.names())}")
        return key

    def find(self, name: str) -> T:
        """The entry for ``name`` (or an alias); a one-line :class:`SftcError` if unknown."""
        return self._entries[self.canonical(name)]

    def __getitem__(self, name: str) -> T:
        try:
            return self.find(name)
        except SftcError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
