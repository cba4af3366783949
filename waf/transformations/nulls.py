"""``t:removeNulls`` and ``t:replaceNulls`` (NUL becomes a space)."""

from __future__ import annotations

from waf.transformations import register


@register("removeNulls")
def remove_nulls(value: bytes) -> bytes:
    if b"\x00" not in value:
        return value
    return value.replace(b"\x00", b"")


@register("replaceNulls")
def replace_nulls(value: bytes) -> bytes:
    if b"\x00" not in value:
        return value
    return value.replace(b"\x00", b" ")
