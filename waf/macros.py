"""``%{collection.key}`` macros, compiled once and expanded per transaction.

SecLang expands macros in action arguments (``msg``, ``logdata``,
``setvar``) and in some operator arguments (``@within %{tx.allowed_methods}``).
A macro is compiled when the rule set loads; expansion only looks values up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_MACRO_RE = re.compile(r"%\{([^}]+)\}")


class MacroSource(Protocol):
    """What expansion needs from a transaction: one variable's first value as text."""

    def macro_value(self, collection: str, key: str | None) -> str: ...


@dataclass(frozen=True, slots=True)
class Macro:
    """Literal text with ``%{...}`` references, split at compile time."""

    # Alternating literal text and (collection, key) references.
    parts: tuple[str | tuple[str, str | None], ...]

    @classmethod
    def compile(cls, text: str) -> Macro:
        parts: list[str | tuple[str, str | None]] = []
        pos = 0
        for m in _MACRO_RE.finditer(text):
            if m.start() > pos:
                parts.append(text[pos:m.start()])
            ref = m.group(1).strip()
            # %{tx.foo} and %{TX:foo} both name TX's key "foo".
            name, sep, key = ref.replace(":", ".", 1).partition(".")
            parts.append((name.upper(), key.lower() if sep else None))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        return cls(tuple(parts))

    @property
    def is_constant(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    @property
    def constant(self) -> str:
        """The text of a macro with no references."""
        return "".join(p for p in self.parts if isinstance(p, str))

    def expand(self, tx: MacroSource) -> str:
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(tx.macro_value(part[0], part[1]))
        return "".join(out)
