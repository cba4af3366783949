"""JSON Web Key Sets (RFC 7517): parse one, fetch one over HTTP, keep it fresh.

Shared by everything that verifies tokens against an identity provider's keys
(``auth.jwt_auth``, and the OIDC authenticator for its ID tokens).

:class:`KeySet` is a parsed set. ``keys_for(kid, alg)`` gives the keys a
token with that ``kid`` and ``alg`` may be checked with. The algorithm is
bound to each key at lookup; the caller must already have checked the alg
against its own configured list, and must never take the list from the
token. A JWK that names another ``alg``, or whose type cannot serve that
algorithm, never matches, so an RSA public key can never act as an HMAC
secret. A token without a ``kid`` can use the set's key only when the set
holds exactly one.

:class:`JwksCache` fetches a set from a URL with aiohttp and keeps it:

- The set is refetched in the background once it is older than ``lifespan``.
  Requests meanwhile go on with the cached set.
- An unknown ``kid`` (the provider rotated its keys) triggers one refetch,
  which concurrent requests share. After that, further refetches for unknown
  kids wait ``cooldown`` seconds, so a flood of made-up kids costs the
  provider at most one fetch per cooldown.
- A failed fetch (timeout, connection error, bad status, bad document) keeps
  the cached set. With no cached set, lookups fail at once
  (:class:`KeysUnavailable`): fail closed, never hang. Another attempt is
  made once ``cooldown`` has passed.
- Each fetch is bounded by ``timeout`` and ``max_bytes`` and does not follow
  redirects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from jwt import PyJWK
from jwt.exceptions import PyJWTError

__all__ = [
    "AmbiguousKey",
    "JwksCache",
    "JwksError",
    "KeyAlgorithmMismatch",
    "KeyLookupError",
    "KeySet",
    "KeysUnavailable",
    "UnknownKeyId",
]

log = logging.getLogger("bastion.auth.jwks")

# Private members of asymmetric JWKs: only the public half is needed to verify.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")


class JwksError(ValueError):
    """A JWKS document that cannot be used."""


class KeyLookupError(Exception):
    """No key to check a token with. ``reason`` is short and safe to log."""

    reason = "no usable key"

    def __init__(self, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        super().__init__(self.reason)


class UnknownKeyId(KeyLookupError):
    reason = "unknown key id"


class AmbiguousKey(KeyLookupError):
    reason = "token has no kid and the key set has several keys"


class KeyAlgorithmMismatch(KeyLookupError):
    reason = "the key does not fit the token's algorithm"


class KeysUnavailable(KeyLookupError):
    reason = "signing keys unavailable"


@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    jwk: dict[str, Any]
    kid: str | None
    alg: str | None


def _entry(index: int, jwk: Any) -> _Entry | None:
    """The JWK as a verification key, or None when it is not one."""
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kty"), str):
        return None
    kid, alg = jwk.get("kid"), jwk.get("alg")
    if (kid is not None and not isinstance(kid, str)) or (
            alg is not None and not isinstance(alg, str)):
        return None
    use = jwk.get("use")
    if use is not None and use != "sig":
        return None
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    if jwk["kty"] != "oct":
        jwk = {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}
    try:
        PyJWK(jwk)  # a key type and algorithm PyJWT can use at all
    except PyJWTError:
        return None
    return _Entry(index, jwk, kid, alg)


class KeySet:
    """A parsed JWKS: ``{"keys": [...]}``. Keys that cannot verify signatures are left out."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        keys = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(keys, list):
            raise JwksError("a JWKS is an object with a 'keys' list")
        entries = [e for i, jwk in enumerate(keys) if (e := _entry(i, jwk)) is not None]
        if not entries:
            raise JwksError("the JWKS holds no usable signature-verification key")
        self._entries = tuple(entries)
        self._by_kid: dict[str, list[_Entry]] = {}
        for e in entries:
            if e.kid is not None:
                self._by_kid.setdefault(e.kid, []).append(e)
        self._built: dict[tuple[int, str], PyJWK | None] = {}

    @classmethod
    def from_json(cls, data: str | bytes) -> KeySet:
        try:
            document = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise JwksError(f"the JWKS is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise JwksError("a JWKS is an object with a 'keys' list")
        return cls(document)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._by_kid)

    def keys_for(self, kid: str | None, alg: str) -> list[PyJWK]:
        """The keys to check a token whose header has this ``kid`` and ``alg``.

        Raises :class:`UnknownKeyId`, :class:`AmbiguousKey` (no kid, several
        keys) or :class:`KeyAlgorithmMismatch`.
        """
        if kid is None:
            if len(self._entries) != 1:
                raise AmbiguousKey()
            candidates: list[_Entry] | tuple[_Entry, ...] = self._entries
        else:
            candidates = self._by_kid.get(kid, [])
            if not candidates:
                raise UnknownKeyId()
        keys = [k for e in candidates if (k := self._build(e, alg)) is not None]
        if not keys:
            raise KeyAlgorithmMismatch()
        return keys

    def _build(self, entry: _Entry, alg: str) -> PyJWK | None:
        memo = (entry.index, alg)
        if memo in self._built:
            return self._built[memo]
        key: PyJWK | None = None
        if entry.alg is None or entry.alg == alg:
            try:
                key = PyJWK(entry.jwk, algorithm=alg)
            except PyJWTError:
                key = None
        self._built[memo] = key
        return key


class JwksCache:
    """One JWKS URL, fetched with aiohttp and cached (see the module docstring)."""

    def __init__(self, uri: str, *, lifespan: float = 300.0, cooldown: float = 30.0,
                 timeout: float = 5.0, max_bytes: int = 1 << 20,
                 session: aiohttp.ClientSession | None = None) -> None:
        if lifespan <= 0 or cooldown < 0 or timeout <= 0 or max_bytes <= 0:
            raise ValueError("lifespan, timeout and max_bytes must be positive, cooldown >= 0")
        self.uri = uri
        self.lifespan = lifespan
        self.cooldown = cooldown
        self.timeout = timeout
        self.max_bytes = max_bytes
        # Fetch attempts made, successful or not.
        self.fetches = 0
        self._session = session
        self._owns_session = session is None
        self._keys: KeySet | None = None
        self._fetched_at = -math.inf
        self._failed_at = -math.inf
        self._forced_at = -math.inf
        self._task: asyncio.Task[bool] | None = None
        self._closed = False

    @property
    def key_set(self) -> KeySet | None:
        """The cached set, however old; None before the first successful fetch."""
        return self._keys

    async def start(self) -> None:
        """Fetch the set once (failures are logged; lookups then fail closed)."""
        if self._keys is None:
            await self._refresh()

    async def current(self) -> KeySet:
        """The set to verify with now: the cached one (a stale one is refreshed in the
        background), else a fresh fetch. Raises :class:`KeysUnavailable`."""
        now = time.monotonic()
        if self._keys is not None:
            if now - self._fetched_at >= self.lifespan and self._task is None \
                    and self._may_retry(now):
                self._spawn()
            return self._keys
        if self._task is not None or self._may_retry(now):
            await self._refresh()
        if self._keys is None:
            raise KeysUnavailable()
        return self._keys

    async def keys_for(self, kid: str | None, alg: str) -> list[PyJWK]:
        """Like :meth:`KeySet.keys_for`, refetching once for an unknown ``kid``."""
        key_set = await self.current()
        try:
            return key_set.keys_for(kid, alg)
        except UnknownKeyId:
            if not await self._refresh_for_unknown_kid() or self._keys is None:
                raise
        return self._keys.keys_for(kid, alg)

    async def refresh(self) -> bool:
        """Fetch now (or join the fetch under way); True when a set was stored."""
        return await self._refresh()

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    # -- internals

    def _may_retry(self, now: float) -> bool:
        return now - self._failed_at >= self.cooldown

    async def _refresh_for_unknown_kid(self) -> bool:
        if self._task is None:
            now = time.monotonic()
            if now - self._forced_at < self.cooldown or not self._may_retry(now):
                return False
            self._forced_at = now
        return await self._refresh()

    def _spawn(self) -> asyncio.Task[bool]:
        if self._task is None:
            self._task = asyncio.create_task(self._fetch_and_store(),
                                             name=f"jwks-fetch {self.uri}")
        return self._task

    async def _refresh(self) -> bool:
        if self._closed:
            return False
        # Shielded: a request that gives up does not cancel the fetch others wait on.
        return await asyncio.shield(self._spawn())

    async def _fetch_and_store(self) -> bool:
        try:
            self.fetches += 1
            try:
                async with asyncio.timeout(self.timeout):
                    key_set = await self._fetch()
            except Exception as exc:  # whatever went wrong: keep the cached set
                self._failed_at = time.monotonic()
                what = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(
                    exc).__name__
                if self._keys is None:
                    log.warning("JWKS %s: fetch failed (%s); no keys yet, tokens are refused",
                                self.uri, what)
                else:
                    log.warning("JWKS %s: fetch failed (%s); keeping the cached keys",
                                self.uri, what)
                return False
            self._keys = key_set
            self._fetched_at = time.monotonic()
            return True
        finally:
            self._task = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def _fetch(self) -> KeySet:
        headers = {"Accept": "application/jwk-set+json, application/json"}
        async with self._client().get(self.uri, headers=headers, allow_redirects=False,
                                      timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
            if resp.status != 200:
                raise JwksError(f"HTTP status {resp.status}")
            if resp.content_length is not None and resp.content_length > self.max_bytes:
                raise JwksError(f"document larger than {self.max_bytes} bytes")
            body = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                body += chunk
                if len(body) > self.max_bytes:
                    raise JwksError(f"document larger than {self.max_bytes} bytes")
        return KeySet.from_json(bytes(body))
