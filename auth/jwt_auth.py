"""jwt-auth: a signed JSON Web Token (RFC 7519) that a consumer's credential verifies.

    consumers:
      - name: billing
        credentials:
          - id: billing-idp
            type: jwt-auth
            jwks_uri: https://idp.example.com/.well-known/jwks.json
            issuer: https://idp.example.com/
            audience: billing-api
            algorithms: [RS256]
            claims_to_headers: {sub: X-User-Id}
      - name: cron
        credentials:
          - {id: cron-hs, type: jwt-auth, secret: "${CRON_JWT_SECRET}",
             algorithms: [HS256], key: cron}
    ...
          auth:
            any_of: [jwt-auth]
            jwt-auth: {cookies: [session_jwt]}

A credential holds the keys (an inline ``jwks``, a ``jwks_uri`` fetched and
cached by ``auth.jwks``, or HS ``secret``\\s), the algorithms it accepts
(required; the token's ``alg`` never chooses them) and the claims checked
(``issuer``, ``audience``, ``exp``/``nbf``/``iat`` within
``clock_skew_seconds``, ``required_claims``).

Which credential a token is checked against comes from its unverified
claims, and is only believed once the signature verifies:

- a credential with a ``key`` is picked when the token's ``key_claim`` claim
  (default ``key``) has that value, as APISIX does;
- otherwise the candidates are the credentials without a ``key`` whose
  ``issuer`` lists the token's ``iss``, plus those with no ``issuer``; a
  JWKS candidate also needs a key with the token's ``kid``.

A token that verifies under two credentials is refused: who it is would
depend on config order. The token may come from a header (default
``Authorization: Bearer``), a query parameter (default ``access_token``) or a
cookie; a request carrying more than one token is refused.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK
from jwt.types import Options
from jwt.utils import base64url_decode
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from auth.base import MISSING, Authenticator, Credential, CredentialModel, Outcome
from auth.jwks import JwksCache, JwksError, KeyLookupError, KeySet
from auth.util import cookie_value, lookup_digest, query_values, remove_cookie, remove_query_params
from proxy.config import ConfigPath
from proxy.flow import Flow
from proxy.forwarding import HOP_BY_HOP, IDENTITY_HEADERS
from proxy.plugin import PluginContext

# How long (at most; never past its exp) a verified token is taken on trust,
# and how many are remembered per authenticator.
_VERIFIED_SECONDS = 60.0
_VERIFIED_MAX = 10_000

JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                       "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

# HS algorithms and the least secret length RFC 7518 §3.2 allows for each.
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_SUPPORTED: frozenset[str] = frozenset(get_args(JwtAlgorithm))

# Longer than any token an identity provider issues; parsing stops here.
MAX_TOKEN_CHARS = 16_384

_TOKEN_CHARS = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers a claim may not be copied into: the gateway's own and the framing ones.
_RESERVED_HEADERS = (IDENTITY_HEADERS | HOP_BY_HOP
                     | {"host", "content-length", "content-encoding", "content-type", "cookie",
                        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                        "x-real-ip", "x-request-id", "forwarded"})
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _header_name(name: str) -> str:
    if not _TOKEN_CHARS.match(name):
        raise ValueError(f"{name!r} is not a valid header name")
    return name


def _one_or_many(v: str | list[str] | None, what: str) -> str | list[str] | None:
    if isinstance(v, list):
        if not v:
            raise ValueError(f"an empty {what} list accepts nothing; leave it out instead")
        if any(not x for x in v):
            raise ValueError(f"{what} values cannot be empty")
    elif v is not None and not v:
        raise ValueError(f"{what} cannot be empty")
    return v


class JwtCredential(CredentialModel):
    # The algorithms this credential accepts, whatever a token's header says.
    algorithms: list[JwtAlgorithm] = Field(min_length=1)
    # Exactly one key source.
    secret: SecretStr | list[SecretStr] | None = None
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    issuer: str | list[str] | None = None
    audience: str | list[str] | None = None
    # Pick this credential when the token's `key_claim` claim equals `key`.
    key: str | None = Field(default=None, min_length=1)
    key_claim: str = Field(default="key", min_length=1)
    required_claims: list[str] = Field(default_factory=lambda: ["exp"])
    clock_skew_seconds: float = Field(default=60.0, ge=0, le=3600)
    # claim name -> upstream header
    claims_to_headers: dict[str, str] = Field(default_factory=dict)
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    jwks_refresh_cooldown_seconds: float = Field(default=30.0, ge=0)
    jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Keys over plain http can be swapped by anyone on the path: opt in.
    jwks_allow_http: bool = False

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str | list[str] | None) -> str | list[str] | None:
        return _one_or_many(v, "issuer")

    @field_validator("audience")
    @classmethod
    def _audience(cls, v: str | list[str] | None) -> str | list[str] | None:
        return _one_or_many(v, "audience")

    @field_validator("claims_to_headers")
    @classmethod
    def _claim_headers(cls, v: dict[str, str]) -> dict[str, str]:
        for claim, header in v.items():
            if not claim:
                raise ValueError("claim names cannot be empty")
            _header_name(header)
            if header.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{header} is set by the gateway; copy the claim elsewhere")
        return v

    @model_validator(mode="after")
    def _keys(self) -> JwtCredential:
        given = [n for n in ("secret", "jwks", "jwks_uri") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of secret, jwks or jwks_uri")
        hmac_algs = [a for a in self.algorithms if a in _HMAC_MIN_BYTES]
        if hmac_algs and len(hmac_algs) != len(self.algorithms):
            raise ValueError("HS algorithms (a shared secret) cannot be mixed with public-key "
                             "algorithms in one credential; use two credentials")
        if self.secret is not None:
            if not hmac_algs:
                raise ValueError("a secret verifies HS256/HS384/HS512 only; list those in "
                                 "algorithms (public keys go in jwks or jwks_uri)")
            if not self.secrets:
                raise ValueError("secret: give at least one")
            need = max(_HMAC_MIN_BYTES[a] for a in hmac_algs)
            if any(len(s) < need for s in self.secrets):
                raise ValueError(f"a secret for {', '.join(hmac_algs)} needs at least {need} "
                                 "bytes (RFC 7518 3.2); use a long random one")
        if self.jwks is not None:
            try:
                KeySet(self.jwks)
            except JwksError as exc:
                raise ValueError(f"jwks: {exc}") from None
        if self.jwks_uri is not None:
            if hmac_algs:
                raise ValueError("HS algorithms need a shared secret, not keys from a URL")
            url = urlsplit(self.jwks_uri)
            if url.scheme not in ("https", "http") or not url.hostname:
                raise ValueError("jwks_uri must be an absolute http(s) URL")
            if url.scheme == "http" and url.hostname not in _LOOPBACK_HOSTS \
                    and not self.jwks_allow_http:
                raise ValueError("jwks_uri over plain http lets anyone on the path replace the "
                                 "keys; use https (or set jwks_allow_http: true)")
        return self

    @property
    def secrets(self) -> tuple[bytes, ...]:
        if self.secret is None:
            return ()
        items = self.secret if isinstance(self.secret, list) else [self.secret]
        return tuple(s.get_secret_value().encode() for s in items)

    @property
    def issuers(self) -> tuple[str, ...] | None:
        if self.issuer is None:
            return None
        return tuple(self.issuer) if isinstance(self.issuer, list) else (self.issuer,)

    @property
    def audiences(self) -> tuple[str, ...] | None:
        if self.audience is None:
            return None
        return tuple(self.audience) if isinstance(self.audience, list) else (self.audience,)


class TokenHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    # Text before the token, matched without regard to case ("Bearer ").
    prefix: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _header_name(v)


class JwtAuthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where a token may be: ["X-Token"] or [{name: Authorization, prefix: "Bearer "}].
    headers: list[TokenHeader] = Field(
        default_factory=lambda: [TokenHeader(name="Authorization", prefix="Bearer ")])
    query: list[str] = Field(default_factory=lambda: ["access_token"])
    cookies: list[str] = Field(default_factory=list)
    realm: str = "bastion"

    @field_validator("headers", mode="before")
    @classmethod
    def _plain_names(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("query", "cookies")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if any(not name for name in v):
            raise ValueError("names cannot be empty")
        return v

    @field_validator("realm")
    @classmethod
    def _realm(cls, v: str) -> str:
        if '"' in v or "\\" in v or any(ord(ch) < 0x20 for ch in v):
            raise ValueError("the realm is a quoted string: no quotes, backslashes or controls")
        return v

    @model_validator(mode="after")
    def _some_source(self) -> JwtAuthOptions:
        if not (self.headers or self.query or self.cookies):
            raise ValueError("jwt-auth needs at least one header, query parameter or cookie "
                             "to read the token from")
        return self


@dataclass(frozen=True, slots=True)
class _Verifier:
    """One credential, ready to check tokens with."""

    credential: Credential
    config: JwtCredential
    secrets: tuple[bytes, ...]
    key_set: KeySet | None
    cache: JwksCache | None
    options: Options


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    # Higher wins when several credentials fail: a claim that failed after
    # the signature verified says more than a key that did not fit.
    rank: int


_CLAIM_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuedAtError, "malformed iat claim"),
)


def _failure(exc: jwt.PyJWTError) -> _Failure:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return _Failure(f"missing claim {exc.claim}", 3)
    for kind, reason in _CLAIM_FAILURES:
        if isinstance(exc, kind):
            return _Failure(reason, 3)
    if isinstance(exc, jwt.InvalidSignatureError):
        return _Failure("bad signature", 2)
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return _Failure("algorithm not allowed", 2)
    if isinstance(exc, jwt.InvalidKeyError):
        return _Failure("unusable key", 1)
    return _Failure("malformed token", 2)


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The header and claims of a compact JWS, unverified; None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(base64url_decode(parts[0]))
        claims = json.loads(base64url_decode(parts[1]))
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


def _header_value(value: Any) -> str | None:
    """A claim as one header line; None when it cannot be one safely."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, list) and all(isinstance(x, str | int | float) and
                                         not isinstance(x, bool) for x in value):
        text = ",".join(str(x) for x in value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        return None
    return text


class JwtAuth(Authenticator[JwtAuthOptions]):
    name = "jwt-auth"
    config_model = JwtAuthOptions
    credential_model = JwtCredential

    def __init__(self, config: JwtAuthOptions, credentials: Sequence[Credential],
                 ctx: PluginContext) -> None:
        super().__init__(config, credentials, ctx)
        caches: dict[tuple[str, float, float, float], JwksCache] = {}
        self._keyed: dict[str, dict[str, list[_Verifier]]] = {}
        self._by_issuer: dict[str, list[_Verifier]] = {}
        self._any_issuer: list[_Verifier] = []
        for c in credentials:
            cfg: JwtCredential = c.config
            cache = None
            if cfg.jwks_uri is not None:
                cache_key = (cfg.jwks_uri, cfg.jwks_cache_seconds,
                             cfg.jwks_refresh_cooldown_seconds, cfg.jwks_timeout_seconds)
                cache = caches.get(cache_key)
                if cache is None:
                    cache = caches[cache_key] = JwksCache(
                        cfg.jwks_uri, lifespan=cfg.jwks_cache_seconds,
                        cooldown=cfg.jwks_refresh_cooldown_seconds,
                        timeout=cfg.jwks_timeout_seconds)
            options: Options = {"require": list(cfg.required_claims),
                                "enforce_minimum_key_length": True}
            v = _Verifier(c, cfg, cfg.secrets, KeySet(cfg.jwks) if cfg.jwks else None,
                          cache, options)
            if cfg.key is not None:
                self._keyed.setdefault(cfg.key_claim, {}).setdefault(cfg.key, []).append(v)
            elif cfg.issuers is None:
                self._any_issuer.append(v)
            else:
                for iss in cfg.issuers:
                    self._by_issuer.setdefault(iss, []).append(v)
        self._caches = tuple(caches.values())
        # Tokens that verified, under a keyed digest, until min(exp, a minute
        # from now): a client reuses its token, and the signature check and
        # claim parsing are most of the cost (see bench/RESULTS.md).
        self._verified_key = os.urandom(32)
        self._verified: OrderedDict[bytes, tuple[Outcome, float, int]] = OrderedDict()
        self._header_names = tuple(dict.fromkeys(
            h for c in credentials for h in c.config.claims_to_headers.values()))
        sources = {h.name.lower() for h in config.headers}
        clash = [h for h in self._header_names if h.lower() in sources]
        if clash:
            raise ValueError(f"claims_to_headers writes {clash[0]}, which jwt-auth reads "
                             "tokens from on this route")

    @classmethod
    def check_credentials(cls, credentials: Sequence[Credential]) -> list[tuple[ConfigPath, str]]:
        issues: list[tuple[ConfigPath, str]] = []
        keyed: dict[tuple[str, str], str] = {}
        unkeyed: list[Credential] = []
        for c in credentials:
            cfg: JwtCredential = c.config
            if cfg.key is None:
                unkeyed.append(c)
                continue
            slot = (cfg.key_claim, cfg.key)
            if slot in keyed:
                issues.append(((*c.where, "key"),
                               f"{cfg.key_claim}={cfg.key!r} already picks credential "
                               f"{keyed[slot]!r}"))
            keyed.setdefault(slot, c.id)
        # Two credentials that could both accept one token make the identity
        # depend on config order: same keys, overlapping issuer and audience.
        for i, a in enumerate(unkeyed):
            for b in unkeyed[:i]:
                if _could_overlap(a.config, b.config):
                    issues.append((a.where,
                                   f"a token for credential {b.id!r} would also verify here "
                                   "(same keys, issuer and audience); tell them apart with "
                                   "key/key_claim, issuer or audience"))
                    break
        return issues

    async def start(self) -> None:
        await asyncio.gather(*(c.start() for c in self._caches))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._caches))

    # -- requests

    def _find_tokens(self, flow: Flow) -> list[str] | Outcome:
        found: list[str] = []
        for source in self.config.headers:
            values = flow.request_headers.getall(source.name, ())
            prefix = source.prefix.lower()
            ours = [v for v in values if v.lower().startswith(prefix)]
            if not ours:
                continue  # absent, or another scheme (Basic) that another type reads
            if len(values) > 1:
                return Outcome.invalid(f"more than one {source.name} header")
            found.append(ours[0][len(prefix):].strip())
        for name in self.config.query:
            found.extend(query_values(flow, name))
        for name in self.config.cookies:
            found.extend(cookie_value(flow, name))
        return found

    async def authenticate(self, flow: Flow, body: bytes | None) -> Outcome:
        found = self._find_tokens(flow)
        if isinstance(found, Outcome):
            return found
        if not found:
            return MISSING
        if len(found) > 1:
            return Outcome.invalid("more than one token in the request")
        token = found[0]
        if not token:
            return Outcome.invalid("empty token")
        if len(token) > MAX_TOKEN_CHARS:
            return Outcome.invalid("token too large")
        digest = hmac.new(self._verified_key, token.encode("utf-8", "surrogateescape"),
                          hashlib.sha256).digest()
        remembered = self._verified.get(digest)
        if remembered is not None:
            # Not past its time, and no key set has been fetched anew since
            # (a key the provider withdrew stops working at once).
            if remembered[1] > time.time() and remembered[2] == self._key_generation():
                return remembered[0]
            del self._verified[digest]
        peeked = _peek(token)
        if peeked is None:
            return Outcome.invalid("malformed token")
        header, claims = peeked
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in _SUPPORTED:
            return Outcome.invalid("algorithm not allowed")
        if kid is not None and not isinstance(kid, str):
            return Outcome.invalid("malformed token")
        candidates = self._candidates(claims)
        if not candidates:
            return Outcome.invalid("no credential matches the token")
        # The algorithm is pinned per credential, checked before any key is touched.
        candidates = [v for v in candidates if alg in v.config.algorithms]
        if not candidates:
            return Outcome.invalid("algorithm not allowed")

        verified: list[tuple[_Verifier, dict[str, Any]]] = []
        worst: _Failure | None = None
        for v in candidates:
            result = await self._verify(v, token, alg, kid)
            if isinstance(result, _Failure):
                if worst is None or result.rank > worst.rank:
                    worst = result
            else:
                verified.append((v, result))
        if len(verified) > 1:
            self.ctx.logger.warning(
                "jwt-auth: a token verified under credentials %s; refused as ambiguous",
                ", ".join(repr(v.credential.id) for v, _ in verified))
            return Outcome.invalid("token matches more than one credential")
        if not verified:
            assert worst is not None
            return Outcome.invalid(worst.reason)
        v, payload = verified[0]
        outcome = Outcome.ok(v.credential, headers=self._claim_headers(v.config, payload))
        until = time.time() + _VERIFIED_SECONDS
        exp = payload.get("exp")
        if isinstance(exp, int | float):
            until = min(until, float(exp))
        self._verified[digest] = (outcome, until, self._key_generation())
        while len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return outcome

    def _key_generation(self) -> int:
        """Changes whenever a JWKS is fetched again."""
        return sum(c.fetches for c in self._caches)

    def _candidates(self, claims: dict[str, Any]) -> list[_Verifier]:
        out: list[_Verifier] = []
        for claim, by_value in self._keyed.items():
            value = claims.get(claim)
            if isinstance(value, str):
                out.extend(by_value.get(value, ()))
        if out:
            return out
        iss = claims.get("iss")
        if isinstance(iss, str):
            out.extend(self._by_issuer.get(iss, ()))
        out.extend(self._any_issuer)
        return out

    async def _verify(self, v: _Verifier, token: str, alg: str,
                      kid: str | None) -> dict[str, Any] | _Failure:
        keys: Sequence[PyJWK | bytes]
        try:
            if v.secrets:
                keys = v.secrets
            elif v.key_set is not None:
                keys = v.key_set.keys_for(kid, alg)
            else:
                assert v.cache is not None
                keys = await v.cache.keys_for(kid, alg)
        except KeyLookupError as exc:
            return _Failure(exc.reason, 1)
        cfg = v.config
        failure = _Failure("bad signature", 2)
        for key in keys:
            try:
                return jwt.decode(token, key, algorithms=list(cfg.algorithms),
                                  options=v.options, issuer=cfg.issuers,
                                  audience=cfg.audiences, leeway=cfg.clock_skew_seconds)
            except jwt.InvalidSignatureError:
                continue  # the next secret or same-kid key may be the one
            except jwt.PyJWTError as exc:
                return _failure(exc)
        return failure

    def _claim_headers(self, cfg: JwtCredential, payload: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for claim, header in cfg.claims_to_headers.items():
            if claim not in payload or payload[claim] is None:
                continue
            text = _header_value(payload[claim])
            if text is not None:
                out[header] = text
        return out

    def challenge(self) -> str:
        return f'Bearer realm="{self.config.realm}"'

    def hide_credentials(self, flow: Flow) -> None:
        headers = flow.request_headers
        for source in self.config.headers:
            prefix = source.prefix.lower()
            values = headers.popall(source.name, [])
            for value in values:
                if not value.lower().startswith(prefix):
                    headers.add(source.name, value)
        if self.config.query:
            remove_query_params(flow, self.config.query)
        for name in self.config.cookies:
            remove_cookie(flow, name)

    def upstream_header_names(self) -> Sequence[str]:
        return self._header_names


def _key_material(cfg: JwtCredential) -> set[Any]:
    if cfg.jwks_uri is not None:
        return {("uri", cfg.jwks_uri)}
    if cfg.jwks is not None:
        keys = cfg.jwks.get("keys", [])
        return {("jwk", json.dumps(k, sort_keys=True)) for k in keys}
    return {("secret", lookup_digest(s)) for s in cfg.secrets}


def _could_overlap(a: JwtCredential, b: JwtCredential) -> bool:
    # No issuer accepts any iss; no audience accepts only tokens without aud.
    issuers = a.issuers is None or b.issuers is None or not set(a.issuers).isdisjoint(b.issuers)
    audiences = (a.audiences is None and b.audiences is None) or (
        a.audiences is not None and b.audiences is not None
        and not set(a.audiences).isdisjoint(b.audiences))
    return (issuers and audiences and not set(a.algorithms).isdisjoint(b.algorithms)
            and not _key_material(a).isdisjoint(_key_material(b)))
