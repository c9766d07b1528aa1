"""A name registry with aliases and did-you-mean errors, used by every labsched registry
(baselines, queue schedulers, selectors, objectives)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Names (case-insensitive, surrounding blanks ignored) mapped to entries, with aliases.

    Args:
        kind: what the entries are, for error messages (``"baseline"``, ``"selector"``).

    Lookups of unknown names raise ``ValueError`` listing the known names and the closest ones;
    non-strings raise ``TypeError``. Iteration, ``len`` and ``in`` see canonical names only.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    @staticmethod
    def normalize(name: str) -> str:
        """The lookup key of ``name``: stripped and lower-cased."""
        return name.strip().lower()

    def add(self, name: str, entry: T, *, aliases: tuple[str, ...] = (), replace: bool = True) -> T:
        """Register ``entry`` under ``name`` and its ``aliases``; returns the entry."""
        key = self.normalize(name)
        if not key:
            raise ValueError(f"a {self.kind} needs a non-empty name")
        if not replace and key in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[key] = entry
        for alias in aliases:
            self._aliases[self.normalize(alias)] = key
        return entry

    def decorator(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""

        def wrap(entry: T) -> T:
            return self.add(name, entry, aliases=aliases)

        return wrap

    def canonical(self, name: str) -> str:
        """The canonical name of ``name`` (an alias resolves to its target)."""
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a string, got {type(name).__name__}")
        key = self.normalize(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            known = sorted(self._entries)
            close = difflib.get_close_matches(key, known + sorted(self._aliases), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(known)}{hint}")
        return key

    def get(self, name: str) -> T:
        """The entry registered under ``name`` or one of its aliases."""
        return self._entries[self.canonical(name)]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self.normalize(name)
        return key in self._entries or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Sorted canonical names."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """Sorted ``(name, entry)`` pairs."""
        return sorted(self._entries.items())

    def values(self) -> list[T]:
        """Entries in name order."""
        return [v for _, v in self.items()]

    def keys(self) -> list[str]:
        """Sorted canonical names (``dict``-like)."""
        return self.names()
