"""``t:length`` and the 7-bit parity transformations."""

from __future__ import annotations

from waf.transformations import register


@register("length")
def length(value: bytes) -> bytes:
    """The value's length in bytes, as decimal digits."""
    return b"%d" % len(value)


def _odd_parity(x: int) -> bool:
    return bin(x).count("1") % 2 == 1


# ModSecurity computes parity over all eight bits of the input byte (including
# its original high bit) and then sets or clears bit 7; the tables reproduce
# that exactly rather than recomputing parity over the low seven bits.
_PARITY_EVEN = bytes((x | 0x80) if _odd_parity(x) else (x & 0x7F) for x in range(256))
_PARITY_ODD = bytes((x & 0x7F) if _odd_parity(x) else (x | 0x80) for x in range(256))
_PARITY_ZERO = bytes(x & 0x7F for x in range(256))


@register("parityEven7bit")
def parity_even_7bit(value: bytes) -> bytes:
    return value.translate(_PARITY_EVEN)


@register("parityOdd7bit")
def parity_odd_7bit(value: bytes) -> bytes:
    return value.translate(_PARITY_ODD)


@register("parityZero7bit")
def parity_zero_7bit(value: bytes) -> bytes:
    return value.translate(_PARITY_ZERO)
