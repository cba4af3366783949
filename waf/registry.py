"""The one registry shape behind operators, transformations and actions.

Entries register themselves with a decorator from the module that defines
them; the registry imports every module of its package the first time it is
asked for anything, so adding an entry is adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, package: str, path: Iterable[str]) -> None:
        self._package = package
        self._path = list(path)
        self._entries: dict[str, T] = {}
        # A flag, not "is it empty": importing one module directly (for its
        # class, say) must not stop the others from loading.
        self._loaded = False

    def register(self, *names: str) -> Callable[[T], T]:
        def deco(entry: T) -> T:
            for name in names:
                self._entries[name.lower()] = entry
            return entry

        return deco

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for info in pkgutil.iter_modules(self._path):
            importlib.import_module(f"{self._package}.{info.name}")

    def get(self, name: str) -> T:
        """KeyError for an unknown name (names are case-insensitive)."""
        self._load()
        return self._entries[name.lower()]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)
