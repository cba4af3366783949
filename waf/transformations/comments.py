"""Comment transformations: ``replaceComments``, ``removeComments``, ``removeCommentsChar``."""

from __future__ import annotations

import re

from waf.transformations import register

# A C comment, or an unterminated one running to the end of the value.
_C_COMMENT = re.compile(rb"/\*.*?(?:\*/|\Z)", re.DOTALL)


@register("replaceComments")
def replace_comments(value: bytes) -> bytes:
    """Replace each ``/* ... */`` (terminated or not) with one space."""
    if b"/*" not in value:
        return value
    return _C_COMMENT.sub(b" ", value)


_COMMENT_OPEN_OR_LINE = re.compile(rb"/\*|<!--|--|#")
_COMMENT_CLOSE = re.compile(rb"\*/|-->")


@register("removeComments")
def remove_comments(value: bytes) -> bytes:
    """Remove ``/* */`` and ``<!-- -->`` comments; ``--`` or ``#`` ends the value.

    An unterminated block comment leaves one space. As in ModSecurity (and
    Coraza), the byte right after a closing ``*/`` or ``-->`` is copied without
    being examined, and when the value ends right there a NUL byte is
    emitted in its place.
    """
    if _COMMENT_OPEN_OR_LINE.search(value) is None:
        return value
    out: list[bytes] = []
    pos = 0
    while True:
        opening = _COMMENT_OPEN_OR_LINE.search(value, pos)
        if opening is None:
            out.append(value[pos:])
            break
        out.append(value[pos : opening.start()])
        if opening.group() in (b"--", b"#"):
            break
        closing = _COMMENT_CLOSE.search(value, opening.end())
        if closing is None:
            out.append(b" ")
            break
        after = closing.end()
        out.append(value[after : after + 1] or b"\x00")
        pos = after + 1
    return b"".join(out)


_COMMENT_MARKERS = re.compile(rb"/\*|\*/|<!--|-->|--|#")


@register("removeCommentsChar")
def remove_comments_char(value: bytes) -> bytes:
    """Delete the comment markers ``/*``, ``*/``, ``<!--``, ``-->``, ``--`` and ``#``."""
    out, count = _COMMENT_MARKERS.subn(b"", value)
    return value if count == 0 else out
