"""Encrypted, authenticated cookies: the OIDC session and the pending-login state.

A cookie value is ``1.`` followed by base64url(nonce || ciphertext || tag):
AES-GCM with a random 96-bit nonce, so the content is both secret and
tamper-evident (GCM is authenticated encryption; a flipped bit fails the tag).
The *purpose* (e.g. ``session|<issuer>|<client>``) is bound in as associated
data, so a cookie sealed for one purpose never opens for another: a login-state
cookie cannot stand in for a session, nor a session of one identity provider
for another that shares the keys.

Keys rotate through a list: the first key seals, every key opens. To rotate,
put the new key first and keep the old one until the longest-lived cookie it
sealed has expired; then remove it, and its cookies stop opening.

Every payload carries its own absolute expiry (``exp``), checked on opening,
so a cookie replayed after its ``Max-Age`` is refused too.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from Crypto.Cipher import AES

__all__ = ["SessionCodec", "clear_cookie_header", "parse_key", "set_cookie_header"]

_VERSION = "1."
_NONCE = 12
_TAG = 16
_KEY_SIZES = (16, 24, 32)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# Cookie values longer than this are refused when opening (browsers cap a
# cookie near 4 KiB anyway): a huge forged value costs no decryption.
MAX_COOKIE_CHARS = 8192

SameSite = Literal["Lax", "Strict", "None"]


def parse_key(text: str) -> bytes:
    """Decode a configured session key: ``hex:...``, ``base64:...``, or either bare.

    A bare value of 32, 48 or 64 hexadecimal digits is read as hex; anything
    else as base64 (standard or URL-safe alphabet, padding optional). The
    result must be 16, 24 or 32 bytes (AES-128/192/256).
    """
    value = text.strip()
    kind: str | None = None
    for prefix in ("hex:", "base64:"):
        if value.startswith(prefix):
            kind, value = prefix[:-1], value[len(prefix):]
    if kind is None:
        kind = "hex" if _HEX.match(value) and len(value) in (32, 48, 64) else "base64"
    try:
        if kind == "hex":
            key = bytes.fromhex(value)
        else:
            padded = value + "=" * (-len(value) % 4)
            key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"a session key must be base64 or hex ({kind} did not decode)") from None
    if len(key) not in _KEY_SIZES:
        raise ValueError(f"a session key must decode to 16, 24 or 32 bytes, not {len(key)} "
                         "(make one with: openssl rand -base64 32)")
    return key


class SessionCodec:
    """Seal and open JSON payloads with a rotating list of AES keys."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one session key is needed")
        for key in keys:
            if len(key) not in _KEY_SIZES:
                raise ValueError("session keys are 16, 24 or 32 bytes")
        self._keys = tuple(keys)

    def seal(self, payload: Mapping[str, Any], purpose: str, ttl: float,
             now: float | None = None) -> str:
        """The cookie value for ``payload``, valid for ``ttl`` seconds from ``now``."""
        issued = time.time() if now is None else now
        body = dict(payload)
        body["exp"] = int(issued + ttl)
        plain = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        nonce = os.urandom(_NONCE)
        cipher = AES.new(self._keys[0], AES.MODE_GCM, nonce=nonce, mac_len=_TAG)
        cipher.update(_aad(purpose))
        ciphertext, tag = cipher.encrypt_and_digest(plain)
        token = base64.urlsafe_b64encode(nonce + ciphertext + tag).rstrip(b"=").decode()
        return _VERSION + token

    def open(self, value: str, purpose: str, now: float | None = None) -> dict[str, Any] | None:
        """The payload of a cookie this codec sealed for ``purpose``; None if it does not verify.

        None for anything wrong: another format, a bad tag (tampered, another
        purpose, a key no longer listed), or an expired payload.
        """
        if not value.startswith(_VERSION) or len(value) > MAX_COOKIE_CHARS:
            return None
        token = value[len(_VERSION):]
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, binascii.Error):
            return None
        if len(raw) < _NONCE + _TAG + 2:
            return None
        nonce, ciphertext, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
        aad = _aad(purpose)
        for key in self._keys:
            cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG)
            cipher.update(aad)
            try:
                plain = cipher.decrypt_and_verify(ciphertext, tag)
            except ValueError:
                continue
            try:
                data = json.loads(plain)
            except ValueError:
                return None
            if not isinstance(data, dict):
                return None
            exp = data.get("exp")
            current = time.time() if now is None else now
            if not isinstance(exp, int) or current >= exp:
                return None
            return data
        return None


def _aad(purpose: str) -> bytes:
    return b"bastion-cookie:1:" + purpose.encode()


def set_cookie_header(name: str, value: str, *, max_age: int, path: str = "/",
                      secure: bool = True, samesite: SameSite = "Lax",
                      domain: str | None = None) -> str:
    """A ``Set-Cookie`` value: always HttpOnly (no script ever needs these cookies)."""
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max(0, max_age)}", "HttpOnly",
             f"SameSite={samesite}"]
    if domain:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie_header(name: str, *, path: str = "/", secure: bool = True,
                        samesite: SameSite = "Lax", domain: str | None = None) -> str:
    """A ``Set-Cookie`` value that makes the browser drop the cookie now."""
    value = set_cookie_header(name, "", max_age=0, path=path, secure=secure,
                              samesite=samesite, domain=domain)
    return value + "; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
