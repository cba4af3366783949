"""``t:utf8toUnicode``: UTF-8 sequences become ``%uHHHH`` (lower-case hex).

ModSecurity's decoder, reproduced byte for byte:

* ASCII bytes (NUL included) pass through.
* A well-formed two-, three- or four-byte sequence becomes ``%u`` and at least
  four hex digits. An overlong form or a surrogate (U+D800..U+DFFF) is still
  converted, and its lead byte is then appended once per defect.
* A lead byte 0xC0..0xF7 without enough continuation bytes is dropped; for
  0xF5..0xF7 (beyond U+10FFFF) the lead byte is kept raw in front instead.
* Stray continuation bytes 0x80..0xBF and bytes 0xF8..0xFF are kept raw.
"""

from __future__ import annotations

import re
from functools import lru_cache

from waf.transformations import register

# A lead byte and the continuation bytes after it; _encode splits off those
# the lead byte does not use (they are stray, and kept raw).
_LEAD_AND_CONTINUATION = re.compile(rb"[\xc0-\xf7][\x80-\xbf]{0,3}")
_SEQUENCE_LENGTH = {0xC: 2, 0xD: 2, 0xE: 3, 0xF: 4}


@lru_cache(maxsize=4096)
def _encode(run: bytes) -> bytes:
    lead = run[0]
    lead_byte = run[:1]
    needed = _SEQUENCE_LENGTH[lead >> 4]
    if len(run) < needed:
        # Truncated: the lead byte goes (0xF5..0xF7 stay raw), the rest is stray.
        return (lead_byte if lead >= 0xF5 else b"") + run[1:]
    sequence = run[:needed]
    if len(sequence) == 2:
        code = ((lead & 0x1F) << 6) | (sequence[1] & 0x3F)
        overlong = code < 0x80
    elif len(sequence) == 3:
        code = ((lead & 0x0F) << 12) | ((sequence[1] & 0x3F) << 6) | (sequence[2] & 0x3F)
        overlong = code < 0x800
    else:
        code = (
            ((lead & 0x07) << 18)
            | ((sequence[1] & 0x3F) << 12)
            | ((sequence[2] & 0x3F) << 6)
            | (sequence[3] & 0x3F)
        )
        overlong = code < 0x10000
    out = b"%%u%04x" % code
    if lead >= 0xF5:
        out = lead_byte + out
    if 0xD800 <= code <= 0xDFFF:
        out += lead_byte
    if overlong:
        out += lead_byte
    return out + run[needed:]


def _replace_sequence(match: re.Match[bytes]) -> bytes:
    return _encode(match.group())


@register("utf8toUnicode")
def utf8_to_unicode(value: bytes) -> bytes:
    if value.isascii():
        return value
    return _LEAD_AND_CONTINUATION.sub(_replace_sequence, value)
