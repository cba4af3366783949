"""``t:jsDecode``: JavaScript string escapes, as ModSecurity decodes them.

``\\uHHHH`` keeps the low byte (full-width ASCII folded back to ASCII),
``\\xHH`` is one byte, ``\\OOO`` takes up to three octal digits but never more
than fit one byte (``\\400`` is ``\\40`` then ``0``), ``\\a \\b \\f \\n \\r \\t \\v``
are the C controls, and a backslash before any other byte is dropped. Only
lower-case ``u`` and ``x`` start escapes. A trailing lone backslash stays.
"""

from __future__ import annotations

import re
from functools import lru_cache

from waf.transformations import register
from waf.transformations._escape_helpers import (
    BYTE,
    fold_fullwidth,
    is_ff,
)
from waf.transformations._escape_helpers import (
    C_CONTROLS as _CONTROLS,
)
from waf.transformations._escape_helpers import (
    OCTAL_DIGITS as _OCTAL_DIGITS,
)

_JS_ESCAPE = re.compile(rb"\\(?:u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|[0-7]{1,3}|.)", re.DOTALL)



@lru_cache(maxsize=4096)
def _decode_escape(escape: bytes) -> bytes:
    kind = escape[1]
    if kind in _OCTAL_DIGITS:
        digits = escape[1:]
        if len(digits) == 3 and digits[0] > ord("3"):
            # Three digits would overflow a byte: use two, keep the third.
            return BYTE[int(digits[:2], 8)] + digits[2:]
        return BYTE[int(digits, 8)]
    if len(escape) == 6:  # \uHHHH
        return BYTE[fold_fullwidth(is_ff(escape[2:4]), int(escape[4:], 16))]
    if len(escape) == 4:  # \xHH
        return BYTE[int(escape[2:], 16)]
    return _CONTROLS.get(kind, escape[1:])


def _replace_escape(match: re.Match[bytes]) -> bytes:
    return _decode_escape(match.group())


@register("jsDecode")
def js_decode(value: bytes) -> bytes:
    if b"\\" not in value:
        return value
    return _JS_ESCAPE.sub(_replace_escape, value)
