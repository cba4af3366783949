"""``t:md5`` and ``t:sha1``: the raw (binary) digest, not hex."""

from __future__ import annotations

import hashlib

from waf.transformations import register


@register("md5")
def md5(value: bytes) -> bytes:
    return hashlib.md5(value, usedforsecurity=False).digest()


@register("sha1")
def sha1(value: bytes) -> bytes:
    return hashlib.sha1(value, usedforsecurity=False).digest()
