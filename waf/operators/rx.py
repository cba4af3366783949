"""``@rx``: an RE2 search over the raw bytes of a value.

The pattern is compiled once, as UTF-8 bytes read with Latin-1 semantics: one
byte is one character, so ``\\x{e2}\\x80\\x98`` matches the three UTF-8 bytes
of U+2018 the way ModSecurity's byte-oriented PCRE does. Dot matches newline
(ModSecurity compiles with DOTALL) and ``^``/``$`` anchor at the ends of the
value only (no multiline). RE2 runs in linear time, so no value can make a CRS
pattern backtrack.
"""

from __future__ import annotations

from typing import Any

import re2

from waf.operators import OperatorContext, OperatorTx, register
from waf.operators._arguments import text_to_bytes

# TX:0 is the whole match, TX:1..TX:9 the first nine groups.
_MAX_GROUP = 9

# RE2's memory budget per regex (program plus lazily built DFA states).
# CRS's largest pattern (12 KiB of text) compiles in well under 1 MiB; the
# rest is room for the DFA cache, so big alternations stay on the fast path.
_MAX_MEM = 32 << 20


def regex_options() -> Any:
    """RE2 options every ``@rx`` (and any ``re2.Set`` grouping them) must share."""
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.dot_nl = True
    options.log_errors = False
    options.max_mem = _MAX_MEM
    return options


def compile_pattern(pattern: str) -> Any:
    """Compile ``pattern`` for byte matching; ValueError if RE2 rejects it."""
    try:
        return re2.compile(text_to_bytes(pattern), regex_options())
    except re2.error as err:
        detail = err.args[0] if err.args else err
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(f"@rx: invalid pattern {pattern!r}: {detail}") from None


class Rx:
    __slots__ = ("_groups", "pattern", "regex")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        # A compiled re2 regex (re2 ships no type information).
        self.regex: Any = compile_pattern(pattern)
        self._groups: int = min(self.regex.groups, _MAX_GROUP)

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        match = self.regex.search(value)
        if match is None:
            return False
        if tx.capturing:
            tx.set_captures([match.group(i) or b"" for i in range(self._groups + 1)])
        return True


@register("rx")
def rx(argument: str, ctx: OperatorContext) -> Rx:
    return Rx(argument)
