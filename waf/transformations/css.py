"""``t:cssDecode``: CSS 2 backslash escapes, as ModSecurity decodes them.

One to six hex digits after a backslash give one byte: the single digit's
value, or else the last two digits; with four digits (or five or six with
leading zeros) full-width ASCII ``ff01``..``ff5e`` is folded back to ASCII.
One whitespace byte after a hex escape is swallowed. A backslash before a
newline, or at the very end, is dropped together with the newline; before
any other byte, only the backslash is dropped.
"""

from __future__ import annotations

import re
from functools import lru_cache

from waf.transformations import register
from waf.transformations._escape_helpers import BYTE, fold_fullwidth, is_ff

_CSS_ESCAPE = re.compile(rb"\\(?:([0-9A-Fa-f]{1,6})[ \t\n\r\x0b\x0c]?|(.)?)", re.DOTALL)


@lru_cache(maxsize=4096)
def _decode_hex(digits: bytes) -> bytes:
    count = len(digits)
    if count == 1:
        return BYTE[int(digits, 16)]
    low = int(digits[-2:], 16)
    full_width_candidate = (
        count == 4
        or (count == 5 and digits[:1] == b"0")
        or (count == 6 and digits[:2] == b"00")
    )
    if full_width_candidate:
        low = fold_fullwidth(is_ff(digits[-4:-2]), low)
    return BYTE[low]


def _replace_escape(match: re.Match[bytes]) -> bytes:
    digits, other = match.groups()
    if digits is not None:
        return _decode_hex(digits)
    if other is None or other == b"\n":
        return b""
    return other


@register("cssDecode")
def css_decode(value: bytes) -> bytes:
    if b"\\" not in value:
        return value
    return _CSS_ESCAPE.sub(_replace_escape, value)
