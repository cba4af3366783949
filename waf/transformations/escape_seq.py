"""``t:escapeSeqDecode``: ANSI C escape sequences, as ModSecurity decodes them.

``\\a \\b \\f \\n \\r \\t \\v \\\\ \\? \\' \\"`` are the C escapes, ``\\xHH`` or
``\\XHH`` is one byte, ``\\O`` to ``\\OOO`` is an octal number truncated to one
byte (``\\666`` is 0xB6). A backslash before anything else is dropped (so an
invalid ``\\xZZ`` becomes ``xZZ``); a trailing lone backslash stays.
"""

from __future__ import annotations

import re
from functools import lru_cache

from waf.transformations import register
from waf.transformations._escape_helpers import BYTE
from waf.transformations._escape_helpers import C_CONTROLS as _CONTROLS
from waf.transformations._escape_helpers import OCTAL_DIGITS as _OCTAL_DIGITS

_C_ESCAPE = re.compile(rb"\\(?:[xX][0-9A-Fa-f]{2}|[0-7]{1,3}|.)", re.DOTALL)



@lru_cache(maxsize=4096)
def _decode_escape(escape: bytes) -> bytes:
    kind = escape[1]
    if kind in _OCTAL_DIGITS:
        return BYTE[int(escape[1:], 8) & 0xFF]
    if len(escape) == 4:  # \xHH
        return BYTE[int(escape[2:], 16)]
    return _CONTROLS.get(kind, escape[1:])


def _replace_escape(match: re.Match[bytes]) -> bytes:
    return _decode_escape(match.group())


@register("escapeSeqDecode")
def escape_seq_decode(value: bytes) -> bytes:
    if b"\\" not in value:
        return value
    return _C_ESCAPE.sub(_replace_escape, value)
