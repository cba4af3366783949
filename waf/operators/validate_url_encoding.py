"""``@validateUrlEncoding``: matches when a ``%`` is not followed by two hex digits."""

from __future__ import annotations

import re

from waf.operators import OperatorContext, OperatorTx, register

# Scanning left to right and skipping each valid %XX finds the same first
# offender as this search: a valid escape's hex digits are never "%".
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class ValidateUrlEncoding:
    __slots__ = ()

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        return b"%" in value and _BAD_ESCAPE.search(value) is not None


@register("validateUrlEncoding")
def validate_url_encoding(argument: str, ctx: OperatorContext) -> ValidateUrlEncoding:
    return ValidateUrlEncoding()
