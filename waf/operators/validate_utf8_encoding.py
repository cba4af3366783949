"""``@validateUtf8Encoding``: matches when the value is not valid UTF-8.

ModSecurity rejects truncated and malformed sequences, overlong forms,
surrogates (U+D800..U+DFFF) and lead bytes F5..FF, exactly as Python's strict
decoder does, with one difference: it checks only the lead byte for the upper
limit, so the four-byte forms F4 90..BF xx xx (U+110000..U+13FFFF) pass.
"""

from __future__ import annotations

import re

from waf.operators import OperatorContext, OperatorTx, register

# F4 is never a continuation byte, so each such sequence starts a character
# wherever ModSecurity's scan is still valid; replacing it with an ASCII byte
# leaves every other verdict unchanged.
_ABOVE_UNICODE = re.compile(rb"\xf4[\x90-\xbf][\x80-\xbf][\x80-\xbf]")


def is_valid_utf8(value: bytes) -> bool:
    """ModSecurity's notion of valid UTF-8."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return True
    if b"\xf4" not in value:
        return False
    try:
        _ABOVE_UNICODE.sub(b"?", value).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class ValidateUtf8Encoding:
    __slots__ = ()

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        return not is_valid_utf8(value)


@register("validateUtf8Encoding")
def validate_utf8_encoding(argument: str, ctx: OperatorContext) -> ValidateUtf8Encoding:
    return ValidateUtf8Encoding()
