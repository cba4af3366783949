"""Shared argument handling: macro-bearing text as bytes, and data files.

Operator arguments arrive as rule text (``str``); values are bytes. Text is
turned into bytes as UTF-8 with ``surrogateescape``, so a literal U+2019 in a
rule matches its three UTF-8 bytes in a request, and text that a
transaction decoded with ``surrogateescape`` round-trips to its raw bytes.
"""

from __future__ import annotations

from pathlib import Path

from waf.macros import Macro, MacroSource
from waf.operators import OperatorContext


def text_to_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A surrogate outside the escape range: not representable, never fatal.
        return text.encode("utf-8", "replace")


class MacroBytes:
    """An operator argument that may hold ``%{...}``: compiled once, bytes per use."""

    __slots__ = ("_constant", "_macro")

    def __init__(self, text: str) -> None:
        macro = Macro.compile(text)
        self._macro: Macro | None = None if macro.is_constant else macro
        self._constant = text_to_bytes(macro.constant) if macro.is_constant else b""

    @property
    def is_constant(self) -> bool:
        return self._macro is None

    @property
    def constant(self) -> bytes:
        """The argument's bytes; only meaningful when ``is_constant``."""
        return self._constant

    def resolve(self, tx: MacroSource) -> bytes:
        if self._macro is None:
            return self._constant
        return text_to_bytes(self._macro.expand(tx))


def read_data_lines(operator: str, argument: str, ctx: OperatorContext) -> list[bytes]:
    """Non-blank, non-``#`` lines (stripped) of the space-separated files in ``argument``.

    Relative names resolve against ``ctx.base_dir``, the rule file's directory.
    """
    names = argument.split()
    if not names:
        raise ValueError(f"@{operator} needs at least one data file name")
    lines: list[bytes] = []
    for name in names:
        path = Path(name)
        if not path.is_absolute():
            path = ctx.base_dir / path
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ValueError(f"@{operator}: cannot read data file {str(path)!r}: {err}") from err
        for raw in data.splitlines():
            line = raw.strip()
            if line and not line.startswith(b"#"):
                lines.append(line)
    return lines
