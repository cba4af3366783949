"""hmac-auth: requests signed with a shared secret, each accepted once.

    consumers:
      - name: partner
        credentials:
          - {id: partner-hmac, type: hmac-auth, key_id: partner, secret: "${PARTNER_SECRET}"}
    ...
        plugins:
          auth:
            any_of: [hmac-auth]
            hmac-auth: {clock_skew: 300, validate_request_body: true}

Two wire formats are read, both as their gateways define them:

- ``x-ca``: Alibaba Cloud API gateway / Higress ``hmac-auth`` headers
  (``X-Ca-Key``, ``X-Ca-Signature``, ``X-Ca-Signature-Method``,
  ``X-Ca-Signature-Headers``, ``X-Ca-Timestamp``, ``X-Ca-Nonce``,
  ``Content-MD5``), string to sign in :func:`ca_string_to_sign`;
- ``signature``: APISIX 3.x ``Authorization: Signature keyId=...,
  algorithm=...,headers="@request-target date",signature=...`` (also Higress
  ``hmac-auth-apisix``), signing string in :func:`signature_signing_string`.

Where both gateways are lenient this one is not: a request must carry a
signed time (``Date``, or an ``X-Ca-Timestamp`` listed among the signed
headers) within ``clock_skew`` of now, and it is accepted once. The nonce (a
signed ``X-Ca-Nonce``, else the signature itself) is remembered per
credential in the shared store for the whole window, so a captured request
cannot be sent again, to this node or another. A body digest that is
checked must be signed too (``Content-MD5`` always is; ``Digest`` must be
listed in ``headers=``), or changing the body and its digest together would
go unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

from multidict import MultiMapping
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from auth.base import MISSING, Authenticator, Credential, CredentialModel, Outcome
from proxy.config import ConfigPath
from proxy.flow import Flow
from proxy.gateway import origin_form
from proxy.plugin import PluginContext
from proxy.store import StoreError

__all__ = [
    "HmacAuth",
    "HmacAuthOptions",
    "HmacCredential",
    "SignatureParams",
    "ca_params",
    "ca_string_to_sign",
    "is_signature_header",
    "parse_signature_header",
    "sign",
    "signature_signing_string",
]

log = logging.getLogger("bastion.auth")

Algorithm = Literal["hmac-sha1", "hmac-sha256", "hmac-sha512"]
Scheme = Literal["x-ca", "signature"]

_DIGESTS: Mapping[str, Callable[[], Any]] = {
    "hmac-sha1": hashlib.sha1,
    "hmac-sha256": hashlib.sha256,
    "hmac-sha512": hashlib.sha512,
}
_ALGORITHMS: Mapping[str, Algorithm] = {a: a for a in get_args(Algorithm)}
_SCHEMES: tuple[Scheme, ...] = get_args(Scheme)
# X-Ca-Signature-Method values; absent means HmacSHA256.
_CA_METHODS: Mapping[str, Algorithm] = {"HmacSHA256": "hmac-sha256", "HmacSHA1": "hmac-sha1"}

# Wall clock, read through the module so tests can pin it.
_clock: Callable[[], float] = time.time


def sign(secret: str | bytes, message: str, algorithm: Algorithm) -> str:
    """base64(HMAC(secret, message)), as both formats carry it."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, message.encode(), _DIGESTS[algorithm]).digest()
    return base64.b64encode(mac).decode("ascii")


def _header(headers: MultiMapping[str], name: str) -> str | None:
    values = headers.getall(name, ())
    return ",".join(values) if values else None


# --------------------------------------------------------------------------
# x-ca: Alibaba Cloud API gateway / Higress hmac-auth

# The five fixed lines: the method, then these headers (empty when absent).
_CA_FIXED = ("accept", "content-md5", "content-type", "date")
# Never among the listed lines: the fixed ones and the signature itself.
_CA_NOT_LISTED = frozenset({"x-ca-signature", "x-ca-signature-headers", *_CA_FIXED})
_FORM = "application/x-www-form-urlencoded"


def ca_signed_header_names(value: str | None) -> list[str]:
    """The X-Ca-Signature-Headers entries that make lines: lowercased, sorted."""
    if not value:
        return []
    names = (n.strip().lower() for n in value.split(","))
    return sorted(n for n in names if n and n not in _CA_NOT_LISTED)


def ca_params(query: str, form: str | None = None) -> list[tuple[str, str]]:
    """Query parameters and form fields, decoded, first value per key, sorted by key."""
    merged: dict[str, str] = {}
    for source in (query, form or ""):
        for key, value in parse_qsl(source, keep_blank_values=True):
            merged.setdefault(key, value)
    return sorted(merged.items())


def ca_string_to_sign(method: str, headers: MultiMapping[str], path: str,
                      params: Sequence[tuple[str, str]] = ()) -> str:
    """The X-Ca string to sign.

    ``METHOD``, ``Accept``, ``Content-MD5``, ``Content-Type`` and ``Date``,
    each on its own line (empty when absent); then ``name:value`` for every
    header in X-Ca-Signature-Headers (lowercased, sorted, the fixed ones
    left out); then the path, with ``?k=v&...`` when ``params`` (see
    :func:`ca_params`) has any, a key with an empty value written alone.
    """
    lines = [method]
    lines.extend(_header(headers, name) or "" for name in _CA_FIXED)
    for name in ca_signed_header_names(_header(headers, "x-ca-signature-headers")):
        lines.append(f"{name}:{_header(headers, name) or ''}")
    query = "&".join(f"{k}={v}" if v else k for k, v in params)
    lines.append(f"{path}?{query}" if query else path)
    return "\n".join(lines)


# --------------------------------------------------------------------------
# signature: APISIX hmac-auth (3.x) / Higress hmac-auth-apisix

def is_signature_header(value: str) -> bool:
    """Whether an Authorization value is of the Signature scheme."""
    return value.strip().partition(" ")[0].lower() == "signature"


_FIELD = re.compile(r'\s*([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class SignatureParams:
    key_id: str
    algorithm: str
    headers: tuple[str, ...]
    signature: str


def parse_signature_header(value: str) -> SignatureParams:
    """Read ``Signature keyId="..",algorithm="..",headers="..",signature=".."``.

    ValueError (with a short reason) when it is not that.
    """
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "signature":
        raise ValueError("not a Signature credential")
    rest = rest.strip()
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _FIELD.match(rest, pos)
        if m is None or m.end() == pos:
            raise ValueError("malformed Signature header")
        if m.group(1) in fields:
            raise ValueError("repeated field in Signature header")
        fields[m.group(1)] = m.group(2)
        pos = m.end()
    key_id, algorithm, signature = (fields.get(k, "") for k in
                                    ("keyId", "algorithm", "signature"))
    if not (key_id and algorithm and signature):
        raise ValueError("Signature header lacks keyId, algorithm or signature")
    return SignatureParams(key_id, algorithm, tuple(fields.get("headers", "").split()),
                           signature)


def signature_signing_string(key_id: str, signed: Sequence[str], method: str, target: str,
                             headers: MultiMapping[str]) -> str:
    """The APISIX signing string.

    ``keyId``, then per entry of ``headers=`` in the client's order:
    ``METHOD target`` for ``@request-target``, else ``name: value`` (an
    absent header is left out); each line ends with a newline.
    """
    lines = [key_id]
    for name in signed:
        if name == "@request-target":
            lines.append(f"{method} {target}")
        else:
            value = _header(headers, name)
            if value is not None:
                lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Config


_KEY_ID = re.compile(r'^[!#-+\--~]+$')  # printable ASCII, no space, quote or comma


class HmacCredential(CredentialModel):
    # X-Ca-Key / keyId: not secret, it names the credential.
    key_id: str = Field(min_length=1, max_length=256)
    secret: SecretStr

    @field_validator("key_id")
    @classmethod
    def _key_id(cls, v: str) -> str:
        if not _KEY_ID.match(v):
            raise ValueError("a key id is printable ASCII without spaces, quotes or commas")
        return v

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 8:
            raise ValueError("an HMAC secret needs at least 8 characters (use a long random one)")
        return v


class HmacAuthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Wire formats accepted: "x-ca" (X-Ca-* headers), "signature" (Authorization: Signature).
    schemes: list[Scheme] = Field(default_factory=lambda: list(_SCHEMES), min_length=1)
    # HMAC hashes accepted (x-ca knows only HmacSHA1 and HmacSHA256).
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(_ALGORITHMS.values()),
                                        min_length=1)
    # Seconds a request's Date / X-Ca-Timestamp may be from now; also how
    # long (twice that) a nonce is remembered.
    clock_skew: float = Field(default=300, ge=1, le=3600)
    # signature: what headers= must list besides "date" (always required).
    signed_headers: list[str] = Field(default_factory=lambda: ["@request-target"])
    # A request with a body must carry a signed digest of it: Content-MD5
    # (x-ca) or Digest: SHA-256=... listed in headers= (signature).
    validate_request_body: bool = False
    # Bytes of body buffered to check a digest or signed form fields (413 past it).
    body_limit: int = Field(default=8 * 1024 * 1024, ge=1)
    # When the replay store fails: refuse (false) or accept unchecked (true).
    fail_open: bool = False
    realm: str = "bastion"

    @field_validator("schemes", "algorithms")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("an entry is listed twice")
        return v

    @field_validator("signed_headers")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if any(not n or any(c.isspace() for c in n) for n in v):
            raise ValueError("header names cannot be empty or contain spaces")
        return [n.lower() for n in v]

    @field_validator("realm")
    @classmethod
    def _realm(cls, v: str) -> str:
        if '"' in v or "\\" in v or any(ord(ch) < 0x20 for ch in v):
            raise ValueError("the realm is a quoted string: no quotes, backslashes or controls")
        return v


# --------------------------------------------------------------------------
# The authenticator


class _Refused(Exception):
    """A presented credential that does not verify; the message is the (safe) reason."""


@dataclass(frozen=True, slots=True)
class _Verified:
    credential: Credential
    # What identifies this request among the credential's: nonce or signature.
    token: bytes


_SINGLE_CA = ("x-ca-key", "x-ca-signature", "x-ca-signature-method", "x-ca-signature-headers",
              "x-ca-timestamp", "x-ca-nonce", "content-md5", "date")
_HIDDEN_CA = ("X-Ca-Key", "X-Ca-Signature", "X-Ca-Signature-Method", "X-Ca-Signature-Headers")
_WARN_EVERY = 10.0


class HmacAuth(Authenticator[HmacAuthOptions]):
    name = "hmac-auth"
    config_model = HmacAuthOptions
    credential_model = HmacCredential

    def __init__(self, config: HmacAuthOptions, credentials: Sequence[Credential],
                 ctx: PluginContext) -> None:
        super().__init__(config, credentials, ctx)
        self.body_limit = config.body_limit
        self._by_key = {c.config.key_id: c for c in credentials}
        self._allowed = frozenset(config.algorithms)
        self._required = frozenset({"date", *config.signed_headers})
        self._last_warning = float("-inf")

    @classmethod
    def check_credentials(cls, credentials: Sequence[Credential]) -> list[tuple[ConfigPath, str]]:
        issues: list[tuple[ConfigPath, str]] = []
        seen: dict[str, str] = {}
        for c in credentials:
            key_id = c.config.key_id
            if key_id in seen:
                issues.append(((*c.where, "key_id"),
                               f"key id {key_id!r} is already credential {seen[key_id]!r}'s"))
            seen.setdefault(key_id, c.id)
        return issues

    # -- which format a request carries

    def _presented(self, flow: Flow) -> list[Scheme]:
        headers = flow.request.headers
        found: list[Scheme] = []
        if "x-ca" in self.config.schemes and (
                "X-Ca-Signature" in headers or "X-Ca-Key" in headers):
            found.append("x-ca")
        if "signature" in self.config.schemes and any(
                is_signature_header(v) for v in headers.getall("Authorization", ())):
            found.append("signature")
        return found

    def needs_body(self, flow: Flow) -> bool:
        presented = self._presented(flow)
        if not presented:
            return False
        headers = flow.request.headers
        if self.config.validate_request_body or "Content-MD5" in headers or "Digest" in headers:
            return True
        return "x-ca" in presented and _FORM in headers.get("Content-Type", "").lower()

    async def authenticate(self, flow: Flow, body: bytes | None) -> Outcome:
        presented = self._presented(flow)
        if not presented:
            return MISSING
        if len(presented) > 1:
            return Outcome.invalid("more than one signature in the request")
        if body is None and flow.request.body_exists and self.needs_body(flow):
            return Outcome.invalid("request body not available for its signature")
        try:
            if presented[0] == "x-ca":
                verified = self._verify_ca(flow, body or b"")
            else:
                verified = self._verify_signature(flow, body or b"")
        except _Refused as exc:
            return Outcome.invalid(str(exc))
        return await self._once(verified)

    # -- x-ca

    def _verify_ca(self, flow: Flow, body: bytes) -> _Verified:
        headers = flow.request.headers
        for name in _SINGLE_CA:
            if len(headers.getall(name, ())) > 1:
                raise _Refused(f"repeated {name} header")
        key_id, given = headers.get("X-Ca-Key"), headers.get("X-Ca-Signature")
        if not key_id or not given:
            raise _Refused("X-Ca-Key and X-Ca-Signature are both required")
        credential = self._credential(key_id)
        method = headers.get("X-Ca-Signature-Method", "HmacSHA256")
        algorithm = _CA_METHODS.get(method)
        if algorithm is None:
            raise _Refused("unsupported X-Ca-Signature-Method")
        self._check_algorithm(algorithm)

        listed = ca_signed_header_names(headers.get("X-Ca-Signature-Headers"))
        date = headers.get("Date")
        if date is not None:  # a fixed line: always signed
            self._check_time(_http_date(date))
        elif "X-Ca-Timestamp" in headers:
            if "x-ca-timestamp" not in listed:
                raise _Refused("X-Ca-Timestamp is not among the signed headers")
            self._check_time(_ca_timestamp(headers["X-Ca-Timestamp"]))
        else:
            raise _Refused("a signed Date or X-Ca-Timestamp is required")

        md5 = headers.get("Content-MD5")
        if md5 is not None:
            actual = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest())
            if not hmac.compare_digest(actual, md5.strip().encode("utf-8", "replace")):
                raise _Refused("Content-MD5 does not match the body")
        elif self.config.validate_request_body and flow.request.body_exists:
            raise _Refused("Content-MD5 is required for a request body")

        target = _target(flow)
        path, _, query = target.partition("?")
        form = None
        if _FORM in headers.get("Content-Type", "").lower():
            form = body.decode("utf-8", "replace")
        sts = ca_string_to_sign(flow.method, headers, path, ca_params(query, form))
        expected = self._expect(credential, sts, algorithm, given)
        nonce = headers.get("X-Ca-Nonce")
        if nonce and "x-ca-nonce" in listed:
            return _Verified(credential, b"n:" + nonce.encode())
        return _Verified(credential, b"s:" + expected)

    # -- signature

    def _verify_signature(self, flow: Flow, body: bytes) -> _Verified:
        headers = flow.request.headers
        values = headers.getall("Authorization", [])
        if len(values) > 1:
            raise _Refused("more than one Authorization header")
        try:
            params = parse_signature_header(values[0])
        except ValueError as exc:
            raise _Refused(str(exc)) from None
        credential = self._credential(params.key_id)
        algorithm = _ALGORITHMS.get(params.algorithm)
        if algorithm is None:
            raise _Refused("unsupported algorithm")
        self._check_algorithm(algorithm)
        signed = {h.lower() for h in params.headers}
        missing = sorted(self._required - signed)
        if missing:
            raise _Refused(f"the signature must cover {missing[0]}")
        for name in ("date", "digest"):
            if len(headers.getall(name, ())) > 1:
                raise _Refused(f"repeated {name} header")
        date = headers.get("Date")
        if date is None:
            raise _Refused("a Date header is required")
        self._check_time(_http_date(date))

        digest = headers.get("Digest")
        if digest is not None:
            _check_digest(digest, body)
            if self.config.validate_request_body and "digest" not in signed:
                raise _Refused("the signature must cover digest")
        elif self.config.validate_request_body and flow.request.body_exists:
            raise _Refused("a Digest header is required for a request body")

        sts = signature_signing_string(params.key_id, params.headers, flow.method,
                                       _target(flow), headers)
        expected = self._expect(credential, sts, algorithm, params.signature)
        return _Verified(credential, b"s:" + expected)

    # -- shared steps

    def _credential(self, key_id: str) -> Credential:
        credential = self._by_key.get(key_id)
        if credential is None:
            raise _Refused("unknown key")
        return credential

    def _check_algorithm(self, algorithm: Algorithm) -> None:
        if algorithm not in self._allowed:
            raise _Refused(f"algorithm {algorithm} is not allowed")

    def _check_time(self, when: float) -> None:
        if abs(_clock() - when) > self.config.clock_skew:
            raise _Refused("request time is outside the allowed clock skew")

    def _expect(self, credential: Credential, message: str, algorithm: Algorithm,
                given: str) -> bytes:
        expected = sign(credential.config.secret.get_secret_value(), message, algorithm).encode()
        # The canonical encoding only: a second spelling of the same bytes
        # would otherwise be a second "signature" for the replay cache.
        if not hmac.compare_digest(expected, given.strip().encode("utf-8", "replace")):
            raise _Refused("signature does not match")
        return expected

    async def _once(self, verified: _Verified) -> Outcome:
        credential = verified.credential
        key = (f"hmac-auth:seen:{credential.id}:"
               f"{hashlib.sha256(verified.token).hexdigest()}")
        try:
            fresh = await self.ctx.store.set_if_absent(key, b"1", 2 * self.config.clock_skew)
        except StoreError as exc:
            self._warn_store(exc)
            if self.config.fail_open:
                return Outcome.ok(credential)
            return Outcome.invalid("replay cache unavailable")
        if not fresh:
            return Outcome.invalid("replayed request")
        return Outcome.ok(credential)

    def _warn_store(self, exc: StoreError) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            action = "accepting unchecked" if self.config.fail_open else "refusing"
            log.warning("hmac-auth: replay store failed, %s signed requests: %s", action, exc)

    # -- 401 and hiding

    def challenge(self) -> str:
        return f'hmac realm="{self.config.realm}"'

    def hide_credentials(self, flow: Flow) -> None:
        headers = flow.request_headers
        if "x-ca" in self.config.schemes:
            for name in _HIDDEN_CA:
                headers.popall(name, None)
        if "signature" in self.config.schemes:
            values = headers.popall("Authorization", [])
            for value in values:
                if not is_signature_header(value):
                    headers.add("Authorization", value)


# --------------------------------------------------------------------------
# Small readers, each refusing what it cannot read


def _target(flow: Flow) -> str:
    """The request target as the client sent it (path and query, still encoded)."""
    return origin_form(flow.request.raw_path) or "/"


def _http_date(value: str) -> float:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise _Refused("malformed Date header") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _ca_timestamp(value: str) -> float:
    # Epoch milliseconds; fewer than 13 digits means seconds (as Higress reads it).
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 16:
        raise _Refused("malformed X-Ca-Timestamp header")
    number = int(value)
    return number / 1000 if len(value) >= 13 else float(number)


_DIGEST_HASHES: Mapping[str, Callable[[bytes], Any]] = {
    "sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def _check_digest(value: str, body: bytes) -> None:
    """``Digest: SHA-256=<base64>`` (RFC 3230); every known entry must match, one at least."""
    checked = 0
    for entry in value.split(","):
        name, sep, encoded = entry.strip().partition("=")
        make = _DIGEST_HASHES.get(name.lower())
        if not sep or make is None:
            continue
        actual = base64.b64encode(make(body).digest())
        if not hmac.compare_digest(actual, encoded.strip().encode("utf-8", "replace")):
            raise _Refused("Digest does not match the body")
        checked += 1
    if not checked:
        raise _Refused("Digest names no SHA-256 or SHA-512 value")
