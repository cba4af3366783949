"""``t:cmdLine``: normalise a shell / cmd.exe command line as ModSecurity does.

Deletes ``\\ " ' ^``; turns each run of space, tab, CR, LF, ``,`` and ``;``
into one space; drops a space right before ``/`` or ``(``; lower-cases ASCII.
"""

from __future__ import annotations

import re

from waf.transformations import register

_DELETED = b"\\\"'^"
_SEPARATOR_RUN = re.compile(rb"[ \t\r\n,;]+")
_SPACE_BEFORE_SLASH_OR_PAREN = re.compile(rb" (?=[/(])")


@register("cmdLine")
def cmd_line(value: bytes) -> bytes:
    # Deleted bytes never end a separator run in ModSecurity, so deleting
    # them first and then collapsing runs gives the same result.
    out = _SEPARATOR_RUN.sub(b" ", value.translate(None, _DELETED).lower())
    out = _SPACE_BEFORE_SLASH_OR_PAREN.sub(b"", out)
    return value if out == value else out
