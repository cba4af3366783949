"""Byte-string comparisons whose argument may hold macros.

``@streq`` (equal), ``@contains`` / ``@strmatch`` (argument occurs in value),
``@containsWord`` (occurs with word boundaries), ``@beginsWith``,
``@endsWith`` and ``@within`` (value occurs in argument). All are
case-sensitive, as in ModSecurity v3.
"""

from __future__ import annotations

from collections.abc import Callable

from waf.operators import OperatorContext, OperatorTx, register
from waf.operators._arguments import MacroBytes


def _contains_word(value: bytes, word: bytes) -> bool:
    # ModSecurity v3: an empty word always matches, and only ASCII letters
    # count as word characters (digits and "_" are boundaries).
    if not word:
        return True
    start = value.find(word)
    while start != -1:
        end = start + len(word)
        before_ok = start == 0 or not value[start - 1 : start].isalpha()
        after_ok = end == len(value) or not value[end : end + 1].isalpha()
        if before_ok and after_ok:
            return True
        start = value.find(word, start + 1)
    return False


def _within(value: bytes, argument: bytes) -> bool:
    # An empty value is "within" anything: ModSecurity v3 returns true for it
    # explicitly, and Coraza's strings.Contains agrees.
    return value in argument


# Each test takes (value, expanded argument).
_TESTS: dict[str, Callable[[bytes, bytes], bool]] = {
    "streq": bytes.__eq__,
    "contains": bytes.__contains__,
    "strmatch": bytes.__contains__,
    "containsWord": _contains_word,
    "beginsWith": bytes.startswith,
    "endsWith": bytes.endswith,
    "within": _within,
}


class StringCompare:
    __slots__ = ("_argument", "_test")

    def __init__(self, argument: str, test: Callable[[bytes, bytes], bool]) -> None:
        self._argument = MacroBytes(argument)
        self._test = test

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        return self._test(value, self._argument.resolve(tx))


def _register(name: str, test: Callable[[bytes, bytes], bool]) -> None:
    @register(name)
    def factory(argument: str, ctx: OperatorContext) -> StringCompare:
        return StringCompare(argument, test)


for _name, _test in _TESTS.items():
    _register(_name, _test)
