"""``t:htmlEntityDecode``, with ModSecurity's rules rather than HTML5's.

* ``&#DDD;`` and ``&#xHH;`` (or ``&#XHH;``) decode to one byte: the low byte
  of the number, or 0xFF when it overflows a C ``long`` (``strtol``).
* Only ``&quot; &amp; &lt; &gt; &nbsp;`` are known names (case-insensitive);
  ``&nbsp;`` gives the Latin-1 byte 0xA0.
* The semicolon is optional, but a name is the whole run of ASCII letters and
  digits after ``&``: ``&ltx`` is left alone.
* Anything else is copied unchanged.
"""

from __future__ import annotations

import re

from waf.transformations import register
from waf.transformations._escape_helpers import BYTE

_ENTITY = re.compile(rb"&(?:#[xX]([0-9A-Fa-f]+)|#([0-9]+)|([A-Za-z0-9]+));?")

_NAMED: dict[bytes, bytes] = {
    b"quot": b'"',
    b"amp": b"&",
    b"lt": b"<",
    b"gt": b">",
    b"nbsp": b"\xa0",
}

_LONG_MAX = 2**63 - 1


def _numeric_byte(digits: bytes, base: int, max_digits: int) -> bytes:
    significant = digits.lstrip(b"0")
    # More digits than a 64-bit long can hold: strtol saturates to LONG_MAX.
    # (Checking the length first also keeps int() away from huge strings.)
    if len(significant) > max_digits:
        return b"\xff"
    number = int(significant or b"0", base)
    return b"\xff" if number > _LONG_MAX else BYTE[number & 0xFF]


def _replace_entity(match: re.Match[bytes]) -> bytes:
    hex_digits, dec_digits, name = match.groups()
    if hex_digits is not None:
        return _numeric_byte(hex_digits, 16, 16)
    if dec_digits is not None:
        return _numeric_byte(dec_digits, 10, 19)
    return _NAMED.get(name.lower(), match.group())


@register("htmlEntityDecode")
def html_entity_decode(value: bytes) -> bytes:
    if b"&" not in value:
        return value
    return _ENTITY.sub(_replace_entity, value)
