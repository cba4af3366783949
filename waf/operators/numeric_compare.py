"""``@eq`` ``@ge`` ``@gt`` ``@le`` ``@lt``: integer comparison of value to argument.

Both sides are read as ModSecurity v3 reads them, with C++ ``std::stoi``:
leading whitespace, an optional sign, then decimal digits; anything after
them is ignored. No digits, or a number outside a 32-bit ``int``, reads as 0.
The argument may hold macros (``@ge %{tx.inbound_anomaly_score_threshold}``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

from waf.operators import OperatorContext, OperatorTx, register
from waf.operators._arguments import MacroBytes

_LEADING_INT = re.compile(rb"[ \t\n\v\f\r]*([+-]?)0*([0-9]+)")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


# Short inputs' results: rules compare the same few TX values (scores,
# levels, limits) many times a request. Bounded: emptied when full.
_PARSED: dict[bytes, int] = {}
_PARSED_MAX = 4096


def parse_int(data: bytes) -> int:
    """``std::stoi`` with its exceptions read as 0."""
    found = _PARSED.get(data)
    if found is not None:
        return found
    match = _LEADING_INT.match(data)
    if match is None:
        number = 0
    else:
        sign, digits = match.groups()
        if len(digits) > 10:  # beyond any int, and too long for int() to be cheap
            number = 0
        else:
            number = -int(digits) if sign == b"-" else int(digits)
            number = number if _INT_MIN <= number <= _INT_MAX else 0
    if len(data) <= 32:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[data] = number
    return number


class NumericCompare:
    __slots__ = ("_argument", "_compare", "_constant")

    def __init__(self, name: str, argument: str, compare: Callable[[int, int], bool]) -> None:
        self._argument = MacroBytes(argument)
        self._compare = compare
        self._constant: int | None = None
        if self._argument.is_constant:
            if _LEADING_INT.match(self._argument.constant) is None:
                raise ValueError(f"@{name} needs an integer or a macro, got {argument!r}")
            self._constant = parse_int(self._argument.constant)

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        target = self._constant
        if target is None:
            target = parse_int(self._argument.resolve(tx))
        return self._compare(parse_int(value), target)


def _register(name: str, compare: Callable[[int, int], bool]) -> None:
    @register(name)
    def factory(argument: str, ctx: OperatorContext) -> NumericCompare:
        return NumericCompare(name, argument, compare)


_register("eq", operator.eq)
_register("ge", operator.ge)
_register("gt", operator.gt)
_register("le", operator.le)
_register("lt", operator.lt)
