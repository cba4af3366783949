"""``t:lowercase`` and ``t:uppercase``: ASCII case mapping, as C ``tolower`` in the C locale."""

from __future__ import annotations

from waf.transformations import register


@register("lowercase")
def lowercase(value: bytes) -> bytes:
    return value.lower()


@register("uppercase")
def uppercase(value: bytes) -> bytes:
    return value.upper()
