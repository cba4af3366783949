"""Whitespace transformations.

``removeWhitespace`` and ``compressWhitespace`` treat C ``isspace()`` bytes
(space, \\t, \\n, \\v, \\f, \\r) and the Latin-1 non-breaking space 0xA0 as
whitespace, as the ModSecurity reference manual documents. The ``trim``
family uses plain ``isspace()`` (no 0xA0), as ModSecurity v3 does.
"""

from __future__ import annotations

import re

from waf.transformations import register

_WHITESPACE = b" \t\n\r\x0b\x0c\xa0"
_WHITESPACE_BUT_SPACE = _WHITESPACE[1:]
_WHITESPACE_RUN = re.compile(rb"[ \t\n\r\x0b\x0c\xa0]+")


@register("removeWhitespace")
def remove_whitespace(value: bytes) -> bytes:
    out = value.translate(None, _WHITESPACE)
    return value if len(out) == len(value) else out


@register("compressWhitespace")
def compress_whitespace(value: bytes) -> bytes:
    if b"  " not in value and len(value.translate(None, _WHITESPACE_BUT_SPACE)) == len(value):
        return value  # only single spaces: nothing to compress
    return _WHITESPACE_RUN.sub(b" ", value)


# bytes.strip() with no argument strips exactly the C-locale isspace() set.
@register("trim")
def trim(value: bytes) -> bytes:
    return value.strip()


@register("trimLeft")
def trim_left(value: bytes) -> bytes:
    return value.lstrip()


@register("trimRight")
def trim_right(value: bytes) -> bytes:
    return value.rstrip()
