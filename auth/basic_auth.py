"""basic-auth: RFC 7617 user and password, checked against Argon2id hashes.

    consumers:
      - name: bob
        credentials:
          - id: bob-basic
            type: basic-auth
            username: bob
            password_hash: "$argon2id$v=19$m=65536,t=3,p=4$..."   # bastion hash-password
    ...
          auth:
            any_of: [basic-auth]
            basic-auth: {realm: staff}

Passwords are never stored or compared in clear: the config holds Argon2id
hashes (``bastion hash-password`` makes one). Argon2 is slow on purpose
(tens of milliseconds), so it runs off the event loop, and a password that
verified is remembered for a while under a keyed digest (never the password
itself) so a busy client does not pay the hash on every request. An unknown
user costs a verification against a dummy hash, like a known one, so timing
does not tell which user names exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from auth.base import MISSING, Authenticator, Credential, CredentialModel, Outcome
from proxy.config import ConfigPath
from proxy.flow import Flow
from proxy.plugin import PluginContext

# New hashes use OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane): about a
# tenth of argon2-cffi's default cost, still far beyond any fast hash. A hash
# made with other parameters verifies with its own.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# At most this many verifications at once per route config: each takes the hash's
# memory and a core; a password-spraying client waits instead of exhausting both.
_VERIFY_SLOTS = 2
_DUMMY_HASH = _hasher.hash(os.urandom(16).hex())


def hash_password(password: str) -> str:
    """An Argon2id hash for a basic-auth credential's ``password_hash``."""
    return _hasher.hash(password)


class BasicCredential(CredentialModel):
    username: str = Field(min_length=1)
    password_hash: str

    @field_validator("username")
    @classmethod
    def _username(cls, v: str) -> str:
        if ":" in v:
            raise ValueError("a basic-auth user name cannot contain ':' (RFC 7617)")
        return v

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        if not v.startswith("$argon2"):
            raise ValueError("an Argon2 hash is expected (make one with `bastion hash-password`);"
                             " plain passwords are not accepted")
        try:
            _hasher.check_needs_rehash(v)
        except (InvalidHashError, ValueError) as exc:
            raise ValueError(f"not a valid Argon2 hash: {exc}") from None
        return v


class BasicAuthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    realm: str = "bastion"
    # How long a verified password is remembered (0: hash every request).
    cache_seconds: float = Field(default=300.0, ge=0)

    @field_validator("realm")
    @classmethod
    def _realm(cls, v: str) -> str:
        if '"' in v or "\\" in v or any(ord(ch) < 0x20 for ch in v):
            raise ValueError("the realm is a quoted string: no quotes, backslashes or controls")
        return v


class _VerifiedCache:
    """Keyed digests of (credential, password) pairs that verified recently."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._key = os.urandom(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def _digest(self, credential_id: str, password: bytes) -> bytes:
        return hmac.new(self._key, credential_id.encode() + b"\0" + password,
                        hashlib.sha256).digest()

    def hit(self, credential_id: str, password: bytes) -> bool:
        if self.ttl <= 0:
            return False
        digest = self._digest(credential_id, password)
        expires = self._entries.get(digest)
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._entries[digest]
            return False
        return True

    def add(self, credential_id: str, password: bytes) -> None:
        if self.ttl <= 0:
            return
        self._entries[self._digest(credential_id, password)] = time.monotonic() + self.ttl
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def _verify(password_hash: str, password: bytes) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class BasicAuth(Authenticator[BasicAuthOptions]):
    name = "basic-auth"
    config_model = BasicAuthOptions
    credential_model = BasicCredential

    def __init__(self, config: BasicAuthOptions, credentials: Sequence[Credential],
                 ctx: PluginContext) -> None:
        super().__init__(config, credentials, ctx)
        self._by_user = {c.config.username: c for c in credentials}
        self._cache = _VerifiedCache(config.cache_seconds)
        self._slots = asyncio.Semaphore(_VERIFY_SLOTS)

    @classmethod
    def check_credentials(cls, credentials: Sequence[Credential]) -> list[tuple[ConfigPath, str]]:
        issues: list[tuple[ConfigPath, str]] = []
        seen: dict[str, str] = {}
        for c in credentials:
            if c.config.username in seen:
                issues.append(((*c.where, "username"),
                               f"user name {c.config.username!r} is already credential "
                               f"{seen[c.config.username]!r}'s"))
            seen.setdefault(c.config.username, c.id)
        return issues

    async def authenticate(self, flow: Flow, body: bytes | None) -> Outcome:
        values = flow.request_headers.getall("Authorization", ())
        basic = [v for v in values if v.split(" ", 1)[0].lower() == "basic"]
        if not basic:
            return MISSING
        if len(values) > 1:
            return Outcome.invalid("more than one Authorization header")
        try:
            decoded = base64.b64decode(basic[0][5:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return Outcome.invalid("malformed Basic credentials")
        user_bytes, sep, password = decoded.partition(b":")
        if not sep:
            return Outcome.invalid("malformed Basic credentials")
        try:
            user = user_bytes.decode()
        except UnicodeDecodeError:
            return Outcome.invalid("user name is not UTF-8")
        credential = self._by_user.get(user)
        if credential is not None and self._cache.hit(credential.id, password):
            return Outcome.ok(credential)
        password_hash = credential.config.password_hash if credential else _DUMMY_HASH
        async with self._slots:
            verified = await asyncio.to_thread(_verify, password_hash, password)
        if credential is None or not verified:
            return Outcome.invalid("wrong user name or password")
        self._cache.add(credential.id, password)
        return Outcome.ok(credential)

    def challenge(self) -> str:
        return f'Basic realm="{self.config.realm}", charset="UTF-8"'

    def hide_credentials(self, flow: Flow) -> None:
        flow.request_headers.popall("Authorization", None)
