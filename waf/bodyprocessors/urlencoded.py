"""``application/x-www-form-urlencoded`` bodies (and query strings) -> ARGS.

Splitting and decoding follow ModSecurity's ``extractArguments``: pairs are
separated by ``&``, the first ``=`` separates name from value (a pair without
``=`` is a name with an empty value), ``+`` is a space and ``%XX`` is decoded
while an invalid escape is kept as it is. ``URLENCODED_ERROR`` is 1 when a
*value* had an invalid escape (ModSecurity v3 ignores names there). Unlike
ModSecurity v3 (but like v2 and Coraza) an empty pair (``a&&b``) yields no
argument. Checked against libmodsecurity 3.0.15.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from waf.bodyprocessors.result import BodyResult

_PAIR = re.compile(rb"[^&]+")
_INVALID_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def url_decode(raw: bytes) -> bytes:
    """ModSecurity's non-strict URL decoding: ``+`` -> space, valid ``%XX`` -> byte."""
    if b"+" in raw:
        raw = raw.replace(b"+", b" ")
    if b"%" not in raw:
        return raw
    # unquote_to_bytes leaves an invalid escape ("%zz", a trailing "%") untouched.
    return unquote_to_bytes(raw)


def parse_urlencoded(body: bytes, *, max_args: int = 1000) -> BodyResult:
    """Split ``a=1&b=2`` into raw-byte (name, value) pairs.

    More than ``max_args`` pairs is an error (``REQBODY_ERROR``); the first
    ``max_args`` pairs are still returned.
    """
    result = BodyResult()
    invalid = False
    args = result.args
    for match in _PAIR.finditer(body):
        if len(args) >= max_args:
            result.error = (
                f"URLENCODED parsing error: more than {max_args} arguments "
                f"(argument limit exceeded)"
            )
            break
        name, _, value = match.group().partition(b"=")
        if not invalid and b"%" in value and _INVALID_ESCAPE.search(value):
            invalid = True
        args.append((url_decode(name), url_decode(value)))
    result.flags["URLENCODED_ERROR"] = int(invalid)
    return result
