"""URL transformations: ``urlDecode``, ``urlDecodeUni`` and ``urlEncode``.

Decoding follows ModSecurity's non-strict decoder: ``+`` becomes a space, a
``%`` not followed by two hex digits is kept literally, and nothing is
decoded twice. ``urlDecodeUni`` also decodes IIS ``%uXXXX`` escapes to one
byte: the code point's best-fit US-ASCII byte when code page 20127 has one
(the ``SecUnicodeMapFile unicode.mapping 20127`` setting CRS deployments
use), otherwise its low byte, with full-width ASCII folded back to ASCII.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from waf.transformations import register
from waf.transformations._bestfit_20127 import BESTFIT_20127
from waf.transformations._escape_helpers import BYTE, fold_fullwidth, is_ff

# One pass over both escape forms, so "%u0025" yields "%" and not a new escape.
_UNI_OR_HEX = re.compile(rb"%(?:[uU]([0-9A-Fa-f]{4})|([0-9A-Fa-f]{2}))")

_HEX_PAIR: dict[bytes, bytes] = {
    b"%02x" % i: BYTE[i] for i in range(256)
} | {b"%02X" % i: BYTE[i] for i in range(256)}


def _decode_unicode_escape(digits: bytes) -> bytes:
    code = int(digits, 16)
    mapped = BESTFIT_20127.get(code)
    if mapped is not None:
        return BYTE[mapped]
    return BYTE[fold_fullwidth(is_ff(digits[:2]), code & 0xFF)]


def _replace_escape(match: re.Match[bytes]) -> bytes:
    unicode_digits, hex_digits = match.groups()
    if unicode_digits is not None:
        return _decode_unicode_escape(unicode_digits)
    # Mixed-case pairs such as "aF" are not in the table; int() covers them.
    return _HEX_PAIR.get(hex_digits) or BYTE[int(hex_digits, 16)]


@register("urlDecode")
def url_decode(value: bytes) -> bytes:
    if b"%" not in value:
        return value.replace(b"+", b" ") if b"+" in value else value
    # Every literal "+" becomes a space (a "%2B" stays "+"), so replace first.
    return unquote_to_bytes(value.replace(b"+", b" "))


@register("urlDecodeUni")
def url_decode_uni(value: bytes) -> bytes:
    if b"%u" not in value and b"%U" not in value:
        return url_decode(value)
    return _UNI_OR_HEX.sub(_replace_escape, value.replace(b"+", b" "))


_URL_SAFE = frozenset(b"*0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_URL_UNSAFE = re.compile(rb"[^*0-9A-Za-z]")
# str.translate maps one code point to a string in C; Latin-1 is byte-for-byte.
_URL_ENCODE_TABLE: dict[int, str] = {
    i: ("+" if i == 0x20 else f"%{i:02x}") for i in range(256) if i not in _URL_SAFE
}


@register("urlEncode")
def url_encode(value: bytes) -> bytes:
    """Encode all but ``*`` and ASCII alphanumerics as lower-case ``%xx``; space as ``+``."""
    if _URL_UNSAFE.search(value) is None:
        return value
    return value.decode("latin-1").translate(_URL_ENCODE_TABLE).encode("latin-1")
