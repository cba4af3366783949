"""Base64 and hex transformations.

* ``base64Decode`` decodes up to the first byte outside the Base64 alphabet
  (``=`` included) and skips CR and LF; a trailing partial group yields the
  bytes it completes.
* ``base64DecodeExt`` is ModSecurity's forgiving decoder: it also accepts the
  URL-safe ``-`` and ``_``, skips every other byte, and yields nothing at all
  when a ``=`` not followed by another ``=`` comes right after the first
  character of a four-character group.
* ``hexDecode`` decodes pairs (a trailing odd character is dropped); invalid
  digits give the same bytes as ModSecurity's unchecked arithmetic.
* ``sqlHexDecode`` decodes ``0x`` hex literals (``0x414243`` -> ``ABC``),
  pair by pair, leaving an odd trailing digit in place.
"""

from __future__ import annotations

import binascii
import re

from waf.transformations import register
from waf.transformations._escape_helpers import lenient_hex_pairs

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_STOP = re.compile(rb"[^A-Za-z0-9+/\r\n]")
_B64_EXT_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_B64_EXT_NOT_ALPHABET = bytes(c for c in range(256) if c not in _B64_ALPHABET + b"-_")


def _decode_base64_groups(data: bytes) -> bytes:
    """Decode alphabet-only ``data``; a trailing lone character is dropped."""
    remainder = len(data) % 4
    if remainder == 1:
        data = data[:-1]
    elif remainder:
        data += b"=" * (4 - remainder)
    return binascii.a2b_base64(data)


@register("base64Decode")
def base64_decode(value: bytes) -> bytes:
    stop = _B64_STOP.search(value)
    if stop is not None:
        value = value[: stop.start()]
    return _decode_base64_groups(value.translate(None, b"\r\n"))


def _has_misplaced_padding(value: bytes) -> bool:
    # True when some "=" not followed by "=" comes after 4n+1 alphabet bytes.
    pieces = value.split(b"=")
    last = len(pieces) - 1
    decoded = 0
    for index in range(last):
        decoded += len(pieces[index].translate(None, _B64_EXT_NOT_ALPHABET))
        followed_by_pad = index + 1 < last and not pieces[index + 1]
        if not followed_by_pad and decoded % 4 == 1:
            return True
    return False


@register("base64DecodeExt")
def base64_decode_ext(value: bytes) -> bytes:
    if b"=" in value and _has_misplaced_padding(value):
        return b""
    return _decode_base64_groups(value.translate(_B64_EXT_TO_STANDARD, _B64_EXT_NOT_ALPHABET))


@register("base64Encode")
def base64_encode(value: bytes) -> bytes:
    return binascii.b2a_base64(value, newline=False)


@register("hexEncode")
def hex_encode(value: bytes) -> bytes:
    return value.hex().encode("ascii")


@register("hexDecode")
def hex_decode(value: bytes) -> bytes:
    even = value[: len(value) & ~1]
    try:
        return binascii.unhexlify(even)
    except binascii.Error:
        return lenient_hex_pairs(even)


_SQL_HEX = re.compile(rb"0[xX]((?:[0-9A-Fa-f]{2})+)")


def _replace_sql_hex(match: re.Match[bytes]) -> bytes:
    return binascii.unhexlify(match.group(1))


@register("sqlHexDecode")
def sql_hex_decode(value: bytes) -> bytes:
    if b"0x" not in value and b"0X" not in value:
        return value
    return _SQL_HEX.sub(_replace_sql_hex, value)
