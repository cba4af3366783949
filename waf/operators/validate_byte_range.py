"""``@validateByteRange``: matches when the value holds a byte outside the
allowed set, given as comma-separated bytes and ranges (``9,10,13,32-126``).
"""

from __future__ import annotations

from waf.operators import OperatorContext, OperatorTx, register


def _parse_byte(text: str, argument: str) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) > 255:
        raise ValueError(f"@validateByteRange: {text!r} in {argument!r} is not a byte value 0-255")
    return int(text)


def parse_byte_ranges(argument: str) -> bytes:
    """The allowed bytes named by ``argument``; ValueError if it is malformed."""
    allowed = bytearray()
    for part in argument.split(","):
        low_text, dash, high_text = part.partition("-")
        low = _parse_byte(low_text, argument)
        high = _parse_byte(high_text, argument) if dash else low
        if low > high:
            raise ValueError(f"@validateByteRange: empty range {part.strip()!r} in {argument!r}")
        allowed.extend(range(low, high + 1))
    return bytes(allowed)


class ValidateByteRange:
    __slots__ = ("_allowed",)

    def __init__(self, allowed: bytes) -> None:
        self._allowed = allowed

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        # Deleting every allowed byte leaves exactly the offending ones.
        return bool(value.translate(None, self._allowed))


@register("validateByteRange")
def validate_byte_range(argument: str, ctx: OperatorContext) -> ValidateByteRange:
    return ValidateByteRange(parse_byte_ranges(argument))
