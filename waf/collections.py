"""Transaction collections: what SecLang variables select from.

Values are bytes (request data is inspected byte for byte); keys are text.
Keys compare case-insensitively, as in ModSecurity. Derived collections are
views over the real ones (``ARGS`` over ``ARGS_GET`` and ``ARGS_POST``,
``*_NAMES`` over their collection), never copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol


class Collection(Protocol):
    def items(self) -> Iterable[tuple[str, bytes]]:
        """Every (key, value); key is "" for a single-valued variable."""
        ...

    def get(self, key: str) -> list[bytes]:
        """Values under ``key`` (case-insensitive)."""
        ...


class MapCollection:
    """An ordered multi-map: repeated keys keep every value."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, bytes]] = ()) -> None:
        self._items: list[tuple[str, bytes]] = []
        self._index: dict[str, list[bytes]] = {}
        for k, v in items:
            self.add(k, v)

    def add(self, key: str, value: bytes) -> None:
        self._items.append((key, value))
        self._index.setdefault(key.lower(), []).append(value)

    def set(self, key: str, value: bytes) -> None:
        """Replace every value under ``key`` with one."""
        self.remove(key)
        self.add(key, value)

    def remove(self, key: str) -> None:
        lower = key.lower()
        if lower in self._index:
            del self._index[lower]
            self._items = [(k, v) for k, v in self._items if k.lower() != lower]

    def items(self) -> list[tuple[str, bytes]]:
        return self._items

    def get(self, key: str) -> list[bytes]:
        return self._index.get(key.lower(), [])

    def first(self, key: str) -> bytes | None:
        values = self._index.get(key.lower())
        return values[0] if values else None

    def __len__(self) -> int:
        return len(self._items)


class TxCollection:
    """TX and other variable collections: one value per lower-cased key."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    @property
    def data(self) -> dict[str, bytes]:
        """The values by lower-cased key (read-only by convention)."""
        return self._data

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(self._data.items())

    def get(self, key: str) -> list[bytes]:
        value = self._data.get(key.lower())
        return [] if value is None else [value]

    def first(self, key: str) -> bytes | None:
        return self._data.get(key.lower())

    def set(self, key: str, value: bytes) -> None:
        self._data[key.lower()] = value

    def remove(self, key: str) -> None:
        self._data.pop(key.lower(), None)

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._data


class Single:
    """A single-valued variable (REQUEST_METHOD, REQUEST_BODY, ...)."""

    __slots__ = ("value",)

    def __init__(self, value: bytes | None = None) -> None:
        self.value = value

    def items(self) -> list[tuple[str, bytes]]:
        return [] if self.value is None else [("", self.value)]

    def get(self, key: str) -> list[bytes]:
        return [] if self.value is None else [self.value]


class Concat:
    """A view joining several collections (ARGS = ARGS_GET + ARGS_POST)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def items(self) -> Iterator[tuple[str, bytes]]:
        for part in self.parts:
            yield from part.items()

    def get(self, key: str) -> list[bytes]:
        out: list[bytes] = []
        for part in self.parts:
            out.extend(part.get(key))
        return out


class Names:
    """A view of a collection's keys as values (ARGS_NAMES and friends)."""

    __slots__ = ("source",)

    def __init__(self, source: Any) -> None:
        self.source = source

    def items(self) -> Iterator[tuple[str, bytes]]:
        for k, _ in self.source.items():
            yield k, k.encode("utf-8", "surrogateescape")

    def get(self, key: str) -> list[bytes]:
        lower = key.lower()
        return [k.encode("utf-8", "surrogateescape") for k, _ in self.source.items()
                if k.lower() == lower]
