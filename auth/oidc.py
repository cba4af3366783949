"""oidc: OpenID Connect login for browsers, and bearer tokens for APIs.

    routes:
      - name: app
        match: {path_prefix: /}
        service: app
        plugins:
          auth:
            any_of: [oidc]
            allow_groups: [staff]
            oidc:
              discovery: https://id.example.com/.well-known/openid-configuration
              client_id: bastion
              client_secret: "${OIDC_CLIENT_SECRET}"
              session_keys: ["${OIDC_SESSION_KEY}", "${OIDC_OLD_SESSION_KEY}"]
              groups_claim: groups
              claims_to_headers: {email: X-User-Email}

A browser without a session is sent to the identity provider (authorization
code flow with PKCE S256, ``state`` and ``nonce``); the pending login travels
in its own short-lived encrypted cookie. The provider sends the browser back
to ``callback_path``, where the code is exchanged, the id_token verified
(JWKS from discovery, pinned algorithms, iss, aud, exp, iat, nonce) and an
encrypted session cookie set (``auth.session``). The access token's expiry
is tracked; past it (minus ``refresh_leeway``) the refresh token renews the
session and the refreshed cookie rides on the response. ``logout_path``
clears the cookie and sends the browser to the provider's end_session_endpoint.

Requests with ``Authorization: Bearer`` are API calls: the token is checked
as a JWT against the provider's keys, or by RFC 7662 introspection. API-ish
requests (not a GET, no ``text/html`` in Accept, XHR, or ``bearer_only``)
never get a redirect: a 401.

Identity: the consumer name comes from ``consumer_claim`` (falling back to
``sub``); a configured consumer of that name is used with its groups, any
other user becomes a consumer of that name with the groups of
``groups_claim``. Who may pass is ``auth.plugin``'s decision (allow lists).

The provider's discovery document is fetched in ``start()``; if the provider
is unreachable then, the config still loads and discovery is retried on
demand (at most every ``retry_interval``), requests failing closed (401)
meanwhile. Tokens, codes and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import aiohttp
import jwt
from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from auth.base import MISSING, Authenticator, Credential, Outcome
from auth.jwks import JwksCache, KeyLookupError
from auth.session import SessionCodec, clear_cookie_header, parse_key, set_cookie_header
from auth.util import cookie_value, remove_cookie
from proxy.config import ConsumerConfig, Duration
from proxy.flow import Flow
from proxy.forwarding import IDENTITY_HEADERS
from proxy.plugin import PluginContext

log = logging.getLogger("bastion.auth.oidc")

# Asymmetric algorithms only: an identity provider signs with its private
# key and publishes the public one. `none` and HMAC (a shared secret) are
# never accepted, whatever discovery advertises.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA")
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_RESERVED_HEADERS = IDENTITY_HEADERS | {
    "host", "cookie", "authorization", "content-length", "transfer-encoding", "connection",
    "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "x-request-id"}
# Bodies from the provider are small JSON documents; anything larger is refused.
_MAX_IDP_BODY = 1024 * 1024
_CACHE_ENTRIES = 10_000
# A refresh is shared for this long by requests that still carry the old cookie.
_REFRESH_REUSE = 60.0
# Value bytes left for the session cookie under browsers' 4096 (name and attributes).
_MAX_SESSION_COOKIE = 3800


class OidcOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where the provider describes itself: <issuer>/.well-known/openid-configuration.
    discovery: str
    # The issuer expected in the discovery document and in every token;
    # defaults to the discovery URL without its /.well-known/... suffix.
    issuer: str | None = None
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    # How the gateway authenticates to the token and introspection endpoints.
    client_auth: Literal["client_secret_basic", "client_secret_post", "none"] = (
        "client_secret_basic")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    # Signature algorithms accepted on id_tokens and JWT access tokens.
    algorithms: list[str] = Field(default_factory=lambda: list(ALGORITHMS))
    clock_skew: Duration = 60.0
    # Timeout of each call to the provider (discovery, JWKS, token, introspection).
    timeout: Duration = 5.0
    # How long a failed discovery waits before it is tried again.
    retry_interval: Duration = 10.0
    jwks_cache: Duration = 600.0

    # The gateway's external origin (https://app.example.com), used to build
    # the redirect URI; by default taken from the request (X-Forwarded-Proto /
    # -Host when the peer is a trusted proxy, else the request's own).
    public_url: str | None = None
    callback_path: str = "/oidc/callback"
    logout_path: str = "/oidc/logout"
    # Where the provider sends the browser after logout (absolute, or a path
    # on public_url); must be registered with the provider.
    post_logout_redirect_uri: str | None = None

    # AES keys (base64 or hex, 16/24/32 bytes): the first seals, all open.
    # Needed for browser logins; a bearer_only config may go without.
    session_keys: list[SecretStr] = Field(default_factory=list)
    cookie_name: str = "bastion_oidc"
    cookie_secure: bool = True
    cookie_samesite: Literal["Lax", "Strict", "None"] = "Lax"
    cookie_domain: str | None = None
    # Absolute lifetime of a session: past it, log in again whatever the tokens say.
    session_lifetime: Duration = 8 * 3600.0
    # How long a started login may take (the pending-login cookie's lifetime).
    login_timeout: Duration = 600.0
    # Renew the access token this long before it expires (not before half its life).
    refresh_leeway: Duration = 30.0

    # Claim naming the consumer (falls back to `sub`), optional groups claim.
    consumer_claim: str = "preferred_username"
    groups_claim: str | None = None
    # Claim -> upstream header, e.g. {email: X-User-Email}.
    claims_to_headers: dict[str, str] = Field(default_factory=dict)
    # Send the user's access token upstream in this header (browser sessions).
    access_token_header: str | None = None

    # Never redirect to the provider: requests without a valid token get 401.
    bearer_only: bool = False
    # How `Authorization: Bearer` tokens are checked.
    bearer: Literal["jwt", "introspection", "off"] = "jwt"
    # Audiences a bearer token may carry (default: client_id).
    bearer_audiences: list[str] = Field(default_factory=list)
    # How long an introspection answer is reused (never past the token's exp).
    introspection_cache: Duration = 30.0

    @field_validator("discovery")
    @classmethod
    def _discovery_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", v):
            raise ValueError(f"discovery must be an http(s) URL, got {v!r}")
        return v

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s?#]+/?$", v):
            raise ValueError("public_url is an origin like https://app.example.com")
        return v.rstrip("/") if v else v

    @field_validator("callback_path", "logout_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/") or v.startswith("//") or "?" in v or "#" in v:
            raise ValueError("a path starting with a single '/', without query")
        return v

    @field_validator("post_logout_redirect_uri")
    @classmethod
    def _post_logout(cls, v: str | None) -> str | None:
        if v is not None and not (re.match(r"^https?://[^/\s]+(/\S*)?$", v)
                                  or (v.startswith("/") and not v.startswith("//"))):
            raise ValueError("an http(s) URL or a path starting with '/'")
        return v

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one algorithm")
        for alg in v:
            if alg.lower() == "none":
                raise ValueError("'none' is never accepted: tokens must be signed")
            if alg not in ALGORITHMS:
                raise ValueError(f"unsupported algorithm {alg!r} "
                                 f"(asymmetric only: {', '.join(ALGORITHMS)})")
        return v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("scopes must include 'openid'")
        if any(not s or " " in s for s in v):
            raise ValueError("scopes are single words")
        return v

    @field_validator("cookie_name")
    @classmethod
    def _cookie_name(cls, v: str) -> str:
        if not _TOKEN_CHARS.match(v):
            raise ValueError(f"not a valid cookie name: {v!r}")
        return v

    @field_validator("session_keys")
    @classmethod
    def _keys(cls, v: list[SecretStr]) -> list[SecretStr]:
        for i, key in enumerate(v):
            try:
                parse_key(key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"session key {i}: {exc}") from None
        return v

    @field_validator("claims_to_headers")
    @classmethod
    def _claim_headers(cls, v: dict[str, str]) -> dict[str, str]:
        for header in v.values():
            _check_header_name(header)
        return v

    @field_validator("access_token_header")
    @classmethod
    def _token_header(cls, v: str | None) -> str | None:
        if v is not None:
            _check_header_name(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> OidcOptions:
        if self.client_auth != "none" and self.client_secret is None:
            raise ValueError(f"client_auth {self.client_auth} needs a client_secret")
        if not self.session_keys and not self.bearer_only:
            raise ValueError("session_keys are needed for browser logins "
                             "(or set bearer_only: true)")
        if self.callback_path == self.logout_path:
            raise ValueError("callback_path and logout_path must differ")
        if self.cookie_samesite == "None" and not self.cookie_secure:
            raise ValueError("cookie_samesite None needs cookie_secure (browsers require it)")
        for name in ("session_lifetime", "login_timeout", "timeout", "jwks_cache"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than zero")
        return self


def _check_header_name(name: str) -> None:
    if not _TOKEN_CHARS.match(name):
        raise ValueError(f"not a valid header name: {name!r}")
    if name.lower() in _RESERVED_HEADERS:
        raise ValueError(f"{name} is set by the gateway itself and cannot come from a claim")


class OidcError(Exception):
    """Something about the provider or a token was wrong; the message is safe to log."""


@dataclass(frozen=True, slots=True)
class Provider:
    """What discovery told us (only what is used)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None
    introspection_endpoint: str | None = None


class OidcAuth(Authenticator[OidcOptions]):
    name = "oidc"
    config_model = OidcOptions
    credential_model = None

    def __init__(self, config: OidcOptions, credentials: Sequence[Credential],
                 ctx: PluginContext) -> None:
        super().__init__(config, credentials, ctx)
        # Without configured keys (bearer_only) no session is ever made; a
        # throwaway key keeps the code paths uniform and opens nothing.
        self.codec = SessionCodec([parse_key(k.get_secret_value())
                                   for k in config.session_keys] or [os.urandom(32)])
        self.expected_issuer = (config.issuer or config.discovery.split("/.well-known/")[0])
        # Bind cookies to this provider and client: a cookie sealed for another
        # oidc config that happens to share the keys does not open here.
        binding = f"{self.expected_issuer.rstrip('/')}|{config.client_id}"
        self._session_purpose = "session|" + binding
        self._login_purpose = "login|" + binding
        self._login_cookie = config.cookie_name + "_login"
        self._audiences = config.bearer_audiences or [config.client_id]
        self._consumers = {c.name: c for c in ctx.consumers}
        # Claims a session keeps: what identity and headers need, nothing else.
        kept = {"sub", config.consumer_claim, *config.claims_to_headers}
        if config.groups_claim:
            kept.add(config.groups_claim)
        self._kept_claims = frozenset(kept)
        self._http: aiohttp.ClientSession | None = None
        self._provider: Provider | None = None
        self._next_discovery = 0.0
        self._discovery_lock = asyncio.Lock()
        self._jwks: JwksCache | None = None
        self._introspected: OrderedDict[bytes, tuple[float, dict[str, Any] | None]] = (
            OrderedDict())
        self._refreshing: dict[bytes, asyncio.Task[dict[str, Any] | None]] = {}
        self._refreshed: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()

    # -- lifecycle

    async def start(self) -> None:
        try:
            provider = await self._discover()
        except OidcError:
            return  # logged; retried on demand, failing closed meanwhile
        await self._key_cache(provider).start()

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        if self._jwks is not None:
            await self._jwks.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- the authenticator contract

    # Each entry point fails closed: an unexpected error is logged and the
    # request refused (401), never answered with a 500.

    async def intercept(self, flow: Flow) -> bool:
        if flow.path not in (self.config.callback_path, self.config.logout_path):
            return False
        try:
            if flow.path == self.config.callback_path:
                await self._callback(flow)
            else:
                await self._logout(flow)
        except Exception:
            log.exception("oidc: %s failed", flow.path)
            flow.respond_error(401, "login failed")
        return True

    async def authenticate(self, flow: Flow, body: bytes | None) -> Outcome:
        try:
            bearer = self._bearer_token(flow)
            if isinstance(bearer, Outcome):
                return bearer
            if bearer is not None:
                return await self._authenticate_bearer(bearer)
            return await self._authenticate_session(flow)
        except Exception:
            log.exception("oidc: authentication failed unexpectedly")
            return Outcome.invalid("internal error in oidc")

    async def respond_unauthenticated(self, flow: Flow) -> bool:
        if self.config.bearer_only or not _browser_navigation(flow):
            return False
        try:
            return await self._start_login(flow)
        except Exception:
            log.exception("oidc: could not start a login")
            return False

    async def _start_login(self, flow: Flow) -> bool:
        provider = await self._provider_or_none()
        base = self._base_url(flow)
        if provider is None or base is None:
            return False
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        redirect_uri = base + self.config.callback_path
        pending = {"state": state, "nonce": nonce, "verifier": verifier,
                   "url": _original_url(flow), "redirect_uri": redirect_uri}
        sealed = self.codec.seal(pending, self._login_purpose, self.config.login_timeout)
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        }
        location = _with_query(provider.authorization_endpoint, params)
        headers = [("Location", location), ("Cache-Control", "no-store"),
                   ("Set-Cookie", self._login_cookie_header(sealed))]
        if cookie_value(flow, self.config.cookie_name):
            # Whatever session cookie came with this request did not work: drop it.
            headers.append(("Set-Cookie", self._clear_session_header()))
        flow.respond(302, b"", _multi(headers))
        return True

    def challenge(self) -> str | None:
        if self.config.bearer == "off":
            return None
        return 'Bearer realm="bastion"'

    def hide_credentials(self, flow: Flow) -> None:
        remove_cookie(flow, self.config.cookie_name)
        remove_cookie(flow, self._login_cookie)
        if self.config.bearer != "off":
            values = flow.request_headers.getall("Authorization", [])
            if any(v.lower().startswith("bearer ") for v in values):
                flow.request_headers.popall("Authorization", None)

    def upstream_header_names(self) -> Sequence[str]:
        names = list(self.config.claims_to_headers.values())
        if self.config.access_token_header:
            names.append(self.config.access_token_header)
        return names

    # -- sessions

    async def _authenticate_session(self, flow: Flow) -> Outcome:
        values = cookie_value(flow, self.config.cookie_name)
        if not values:
            return MISSING
        session = next((s for v in values
                        if (s := self.codec.open(v, self._session_purpose)) is not None), None)
        if (session is None or not isinstance(session.get("claims"), dict)
                or not isinstance(session.get("sx"), int)):
            return self._session_over("session cookie does not verify or has expired")
        set_cookie: dict[str, str] = {}
        renew_at = session.get("renew")
        if isinstance(renew_at, int | float) and time.time() >= renew_at:
            renewed = await self._refresh(session)
            if renewed is None:
                return self._session_over("access token expired and could not be refreshed")
            session = renewed
            set_cookie["Set-Cookie"] = self._session_cookie_header(session)
        try:
            consumer, credential_id, headers = self._identity(session["claims"])
        except OidcError as exc:
            return self._session_over(str(exc))
        token = session.get("at")
        if self.config.access_token_header and isinstance(token, str):
            headers[self.config.access_token_header] = token
        return Outcome("ok", None, headers=headers, consumer=consumer,
                       credential_id=credential_id,
                       response_headers=tuple(set_cookie.items()))

    def _session_over(self, reason: str) -> Outcome:
        # A stale session is no credential: the browser gets a fresh login
        # (respond_unauthenticated), an API client a 401; the cookie goes.
        return Outcome("missing", reason=reason,
                       response_headers=(("Set-Cookie", self._clear_session_header()),))

    def _new_session(self, claims: Mapping[str, Any], tokens: Mapping[str, Any],
                     now: float) -> dict[str, Any]:
        session: dict[str, Any] = {
            "claims": {k: v for k, v in claims.items() if k in self._kept_claims},
            "sx": int(now + self.config.session_lifetime),
            "rt": tokens.get("refresh_token") if isinstance(tokens.get("refresh_token"),
                                                            str) else None,
            "idt": tokens.get("id_token"),
            "renew": self._renew_at(tokens, now),
        }
        if self.config.access_token_header:
            session["at"] = tokens.get("access_token")
        return session

    def _renew_at(self, tokens: Mapping[str, Any], now: float) -> float | None:
        """When to refresh: refresh_leeway before the access token expires, but
        not before half its life (short-lived tokens would otherwise be renewed
        on every request). None when the provider gave no expiry."""
        lifetime = _expires_in(tokens)
        if lifetime is None:
            return None
        return now + max(lifetime - self.config.refresh_leeway, lifetime / 2)

    def _session_cookie_header(self, session: Mapping[str, Any]) -> str:
        ttl = max(1.0, float(session["sx"]) - time.time())
        sealed = self.codec.seal(session, self._session_purpose, ttl)
        # Browsers drop a cookie past 4 KiB, which would mean a login loop:
        # shed what the session can live without (the logout hint, then the
        # access token for upstream) rather than send one that is lost.
        trimmed = dict(session)
        for optional in ("idt", "at"):
            if len(sealed) <= _MAX_SESSION_COOKIE or trimmed.get(optional) is None:
                continue
            log.warning("oidc: session cookie too large; dropping %s from sessions",
                        "the id_token (logout hint)" if optional == "idt" else "the access token")
            trimmed[optional] = None
            sealed = self.codec.seal(trimmed, self._session_purpose, ttl)
        return set_cookie_header(self.config.cookie_name, sealed, max_age=int(ttl),
                                 secure=self.config.cookie_secure,
                                 samesite=self.config.cookie_samesite,
                                 domain=self.config.cookie_domain)

    def _clear_session_header(self) -> str:
        return clear_cookie_header(self.config.cookie_name, secure=self.config.cookie_secure,
                                   samesite=self.config.cookie_samesite,
                                   domain=self.config.cookie_domain)

    def _login_cookie_header(self, sealed: str) -> str:
        # Lax at least: the provider sends the browser back with a cross-site
        # top-level GET, which Strict cookies do not follow.
        return set_cookie_header(self._login_cookie, sealed,
                                 max_age=int(self.config.login_timeout),
                                 path=self.config.callback_path,
                                 secure=self.config.cookie_secure,
                                 samesite=("None" if self.config.cookie_samesite == "None"
                                           else "Lax"),
                                 domain=self.config.cookie_domain)

    def _clear_login_header(self) -> str:
        return clear_cookie_header(self._login_cookie, path=self.config.callback_path,
                                   secure=self.config.cookie_secure,
                                   samesite=("None" if self.config.cookie_samesite == "None"
                                             else "Lax"),
                                   domain=self.config.cookie_domain)

    async def _refresh(self, session: dict[str, Any]) -> dict[str, Any] | None:
        """The session with renewed tokens; None when it cannot be renewed.

        Requests that arrive together with the same expired cookie share one
        refresh (providers that rotate refresh tokens accept each only once).
        """
        refresh_token = session.get("rt")
        if not isinstance(refresh_token, str) or not refresh_token:
            return None
        digest = hashlib.sha256(refresh_token.encode()).digest()
        done = self._refreshed.get(digest)
        if done is not None and done[0] > time.monotonic():
            return done[1]
        running = self._refreshing.get(digest)
        if running is None:
            # Its own task: a client that hangs up mid-refresh must not cancel
            # it (the provider may already have spent the old refresh token).
            running = asyncio.get_running_loop().create_task(
                self._refresh_once(digest, session, refresh_token))
            self._refreshing[digest] = running
        return await asyncio.shield(running)

    async def _refresh_once(self, digest: bytes, session: dict[str, Any],
                            refresh_token: str) -> dict[str, Any] | None:
        try:
            result = await self._do_refresh(session, refresh_token)
        except OidcError as exc:
            log.info("oidc: refresh failed: %s", exc)
            return None
        except Exception:
            log.exception("oidc: refresh failed unexpectedly")
            return None
        finally:
            self._refreshing.pop(digest, None)
        _remember(self._refreshed, digest, (time.monotonic() + _REFRESH_REUSE, result))
        return result

    async def _do_refresh(self, session: dict[str, Any], refresh_token: str) -> dict[str, Any]:
        provider = await self._discover()
        now = time.time()
        tokens = await self._token_request(provider, {"grant_type": "refresh_token",
                                                      "refresh_token": refresh_token})
        renewed = dict(session)
        renewed["renew"] = self._renew_at(tokens, now)
        if isinstance(tokens.get("refresh_token"), str):
            renewed["rt"] = tokens["refresh_token"]
        if self.config.access_token_header:
            renewed["at"] = tokens["access_token"]
        id_token = tokens.get("id_token")
        if isinstance(id_token, str):
            claims = await self._verify_jwt(provider, id_token, [self.config.client_id])
            _check_azp(claims, self.config.client_id)
            if claims.get("sub") != session["claims"].get("sub"):
                raise OidcError("refreshed id_token names another subject")
            renewed["claims"] = {k: v for k, v in claims.items() if k in self._kept_claims}
            renewed["idt"] = id_token
        return renewed

    # -- the callback and logout

    async def _callback(self, flow: Flow) -> None:
        clear_login = [("Set-Cookie", self._clear_login_header())]
        if flow.method != "GET":
            flow.respond_error(405, "the login callback takes GET", _multi(clear_login))
            return
        query = _query(flow)
        pending = next((p for v in cookie_value(flow, self._login_cookie)
                        if (p := self.codec.open(v, self._login_purpose)) is not None), None)
        state = query.get("state")
        if pending is not None and not all(
                isinstance(pending.get(k), str) for k in ("state", "nonce", "verifier",
                                                          "redirect_uri", "url")):
            pending = None
        if (pending is None or not isinstance(pending.get("state"), str) or state is None
                or not hmac.compare_digest(state.encode(), str(pending["state"]).encode())):
            flow.decide("auth", "login-failed", authenticator=self.name,
                        reason="state missing or mismatched")
            flow.respond_error(400, "login state is missing, expired or does not match; "
                                    "start again from the page you wanted",
                               _multi(clear_login))
            return
        error = query.get("error")
        if error is not None:
            said = error if _ERROR_CODE.match(error) else "invalid"
            flow.decide("auth", "login-failed", authenticator=self.name,
                        reason=f"provider said {said}")
            flow.respond_error(401, f"login failed at the identity provider ({said})",
                               _multi(clear_login))
            return
        try:
            provider = await self._discover()
            if "iss" in query and query["iss"].rstrip("/") != provider.issuer.rstrip("/"):
                raise OidcError("the iss parameter names another issuer")
            code = query.get("code")
            if not code:
                raise OidcError("no code in the callback")
            now = time.time()
            tokens = await self._token_request(provider, {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": str(pending["redirect_uri"]),
                "code_verifier": str(pending["verifier"]),
            })
            id_token = tokens.get("id_token")
            if not isinstance(id_token, str):
                raise OidcError("the token response has no id_token")
            claims = await self._verify_jwt(provider, id_token, [self.config.client_id])
            _check_azp(claims, self.config.client_id)
            nonce = claims.get("nonce")
            if not isinstance(nonce, str) or not hmac.compare_digest(
                    nonce.encode(), str(pending["nonce"]).encode()):
                raise OidcError("id_token nonce does not match the login")
            iat = claims.get("iat")
            if not isinstance(iat, int | float) or (
                    iat < now - self.config.login_timeout - self.config.clock_skew):
                raise OidcError("id_token was issued too long ago")
            consumer, _, _ = self._identity(claims)
        except OidcError as exc:
            log.info("oidc: login failed: %s", exc)
            flow.decide("auth", "login-failed", authenticator=self.name, reason=str(exc))
            flow.respond_error(401, "login failed", _multi(clear_login))
            return
        session = self._new_session(claims, tokens, now)
        flow.decide("auth", "login", authenticator=self.name, consumer=consumer.name)
        flow.respond(302, b"", _multi([
            ("Location", _safe_relative(str(pending.get("url", "/")))),
            ("Cache-Control", "no-store"),
            ("Set-Cookie", self._session_cookie_header(session)),
            *clear_login,
        ]))

    async def _logout(self, flow: Flow) -> None:
        session = next((s for v in cookie_value(flow, self.config.cookie_name)
                        if (s := self.codec.open(v, self._session_purpose)) is not None), None)
        base = self._base_url(flow)
        after = self.config.post_logout_redirect_uri
        if after is not None and after.startswith("/"):
            after = base + after if base is not None else None
        provider = await self._provider_or_none()
        if provider is not None and provider.end_session_endpoint:
            params = {"client_id": self.config.client_id}
            if session is not None and isinstance(session.get("idt"), str):
                params["id_token_hint"] = session["idt"]
            if after is not None:
                params["post_logout_redirect_uri"] = after
            location = _with_query(provider.end_session_endpoint, params)
        else:
            location = after or "/"
        flow.decide("auth", "logout", authenticator=self.name)
        flow.respond(302, b"", _multi([
            ("Location", location),
            ("Cache-Control", "no-store"),
            ("Set-Cookie", self._clear_session_header()),
        ]))

    def _base_url(self, flow: Flow) -> str | None:
        """The gateway's external origin as the browser sees it."""
        if self.config.public_url:
            return self.config.public_url
        headers = flow.request_headers
        proto = headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        host = headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        proto = proto or flow.request.scheme
        host = host or headers.get("Host", "")
        if proto not in ("http", "https") or not _HOST.match(host):
            return None
        return f"{proto}://{host}"

    # -- bearer tokens

    def _bearer_token(self, flow: Flow) -> str | Outcome | None:
        if self.config.bearer == "off":
            return None
        values = flow.request_headers.getall("Authorization", [])
        bearers = [v for v in values if v[:7].lower() == "bearer "]
        if not bearers:
            return None
        if len(values) > 1:
            return Outcome.invalid("more than one Authorization header")
        token = bearers[0][7:].strip()
        if not token or len(token) > 16384:
            return Outcome.invalid("empty or oversized bearer token")
        return token

    async def _authenticate_bearer(self, token: str) -> Outcome:
        try:
            provider = await self._discover()
            if self.config.bearer == "jwt":
                claims = await self._verify_jwt(provider, token, self._audiences)
            else:
                claims = await self._introspect(provider, token)
            consumer, credential_id, headers = self._identity(claims)
        except OidcError as exc:
            return Outcome.invalid(str(exc))
        return Outcome.identity(consumer, credential_id, headers=headers)

    async def _introspect(self, provider: Provider, token: str) -> dict[str, Any]:
        endpoint = provider.introspection_endpoint
        if not endpoint:
            raise OidcError("the provider offers no introspection endpoint")
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        cached = self._introspected.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            if cached[1] is None:
                raise OidcError("token is not active")
            exp = cached[1].get("exp")
            if not isinstance(exp, int | float) or now < exp + self.config.clock_skew:
                return cached[1]
        status, data = await self._post(endpoint, {"token": token,
                                                   "token_type_hint": "access_token"})
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("active"),
                                                                           bool):
            raise OidcError(f"introspection answered {status}")
        claims: dict[str, Any] | None = data if data["active"] else None
        if claims is not None:
            try:
                self._check_introspected(claims, now)
            except OidcError:
                claims = None
        ttl = self.config.introspection_cache
        if claims is not None and isinstance(claims.get("exp"), int | float):
            ttl = min(ttl, float(claims["exp"]) - now + self.config.clock_skew)
        if ttl > 0:
            _remember(self._introspected, digest, (time.monotonic() + ttl, claims))
        if claims is None:
            raise OidcError("token is not active")
        return claims

    def _check_introspected(self, claims: dict[str, Any], now: float) -> None:
        exp = claims.get("exp")
        if isinstance(exp, int | float) and now >= exp + self.config.clock_skew:
            raise OidcError("token has expired")
        iss = claims.get("iss")
        if iss is not None and str(iss).rstrip("/") != self.expected_issuer.rstrip("/"):
            raise OidcError("token from another issuer")
        aud = claims.get("aud")
        if aud is not None:
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not set(self._audiences).intersection(a for a in auds if isinstance(a, str)):
                raise OidcError("token is for another audience")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise OidcError("token names no subject")

    # -- identity

    def _identity(self, claims: Mapping[str, Any]) -> tuple[ConsumerConfig, str, dict[str, str]]:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not _clean(sub):
            raise OidcError("no subject in the claims")
        named = claims.get(self.config.consumer_claim)
        name = _clean(named) if isinstance(named, str) and _clean(named) else _clean(sub)
        consumer = self._consumers.get(name)
        if consumer is None:
            groups: list[str] = []
            if self.config.groups_claim:
                groups = _groups(claims.get(self.config.groups_claim))
            consumer = ConsumerConfig(name=name, groups=groups)
        headers: dict[str, str] = {}
        for claim, header in self.config.claims_to_headers.items():
            value = claims.get(claim)
            if value is not None:
                headers[header] = _header_value(value)
        return consumer, f"oidc:{_clean(sub)}", headers

    # -- the provider

    async def _provider_or_none(self) -> Provider | None:
        try:
            return await self._discover()
        except OidcError:
            return None

    async def _discover(self) -> Provider:
        if self._provider is not None:
            return self._provider
        async with self._discovery_lock:
            if self._provider is not None:
                return self._provider
            if time.monotonic() < self._next_discovery:
                raise OidcError("discovery failed recently; waiting before trying again")
            try:
                provider = await self._load_discovery()
            except OidcError as exc:
                log.warning("oidc: discovery from %s failed (%s); next try in %gs",
                            self.config.discovery, exc, self.config.retry_interval)
                self._next_discovery = time.monotonic() + self.config.retry_interval
                raise
            self._provider = provider
            return provider

    async def _load_discovery(self) -> Provider:
        status, doc = await self._get(self.config.discovery)
        if status != 200 or not isinstance(doc, dict):
            raise OidcError(f"discovery answered {status}")
        issuer = doc.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.expected_issuer.rstrip("/"):
            raise OidcError(f"discovery names issuer {issuer!r}, expected "
                            f"{self.expected_issuer!r} (set `issuer` if that is right)")
        urls: dict[str, str | None] = {}
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri",
                    "end_session_endpoint", "introspection_endpoint"):
            value = doc.get(key)
            if value is not None and not (isinstance(value, str)
                                          and re.match(r"^https?://[^/\s]+", value)):
                raise OidcError(f"discovery gives no usable {key}")
            urls[key] = value
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if urls[key] is None:
                raise OidcError(f"discovery has no {key}")
        if self.config.bearer == "introspection" and urls["introspection_endpoint"] is None:
            raise OidcError("bearer: introspection, but discovery has no introspection_endpoint")
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            log.warning("oidc: %s does not advertise PKCE S256; logins may fail", issuer)
        return Provider(issuer=issuer,
                        authorization_endpoint=str(urls["authorization_endpoint"]),
                        token_endpoint=str(urls["token_endpoint"]),
                        jwks_uri=str(urls["jwks_uri"]),
                        end_session_endpoint=urls["end_session_endpoint"],
                        introspection_endpoint=urls["introspection_endpoint"])

    async def _verify_jwt(self, provider: Provider, token: str,
                          audiences: Sequence[str]) -> dict[str, Any]:
        """The claims of a JWT signed by the provider, for one of ``audiences``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcError("not a JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise OidcError(f"token algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        try:
            keys = await self._key_cache(provider).keys_for(
                kid if isinstance(kid, str) else None, alg)
        except KeyLookupError as exc:
            raise OidcError(exc.reason) from None
        for i, key in enumerate(keys):
            try:
                claims = jwt.decode(
                    token, key, algorithms=[alg], audience=list(audiences),
                    issuer=provider.issuer, leeway=self.config.clock_skew,
                    options={"require": ["exp", "iat", "iss", "aud", "sub"]})
            except jwt.InvalidSignatureError:
                if i + 1 < len(keys):
                    continue  # several keys share that kid: try the next
                raise OidcError("token rejected: InvalidSignatureError") from None
            except jwt.PyJWTError as exc:
                raise OidcError(f"token rejected: {type(exc).__name__}") from None
            return claims
        raise OidcError("no provider key matches the token")

    def _key_cache(self, provider: Provider) -> JwksCache:
        if self._jwks is None:
            self._jwks = JwksCache(provider.jwks_uri, lifespan=self.config.jwks_cache,
                                   timeout=self.config.timeout, max_bytes=_MAX_IDP_BODY,
                                   session=self._client())
        return self._jwks

    # -- HTTP to the provider

    async def _token_request(self, provider: Provider, form: dict[str, str]) -> dict[str, Any]:
        status, data = await self._post(provider.token_endpoint, form)
        if status != 200 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            code = error if isinstance(error, str) and _ERROR_CODE.match(error) else "-"
            raise OidcError(f"token endpoint answered {status} ({code})")
        if not isinstance(data.get("access_token"), str):
            raise OidcError("the token response has no access_token")
        if str(data.get("token_type", "")).lower() != "bearer":
            raise OidcError("the token response is not a bearer token")
        return data

    async def _post(self, url: str, form: dict[str, str]) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        body = dict(form)
        secret = self.config.client_secret.get_secret_value() if self.config.client_secret else ""
        if self.config.client_auth == "client_secret_basic":
            # RFC 6749 2.3.1: both parts form-urlencoded before base64.
            pair = f"{quote(self.config.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            body["client_id"] = self.config.client_id
            if self.config.client_auth == "client_secret_post":
                body["client_secret"] = secret
        return await self._call("POST", url, headers, body)

    async def _get(self, url: str) -> tuple[int, Any]:
        return await self._call("GET", url, {"Accept": "application/json"}, None)

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # No cookie jar: this one client speaks for every user, and a
            # cookie the provider sets for one must never ride along for another.
            self._http = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout))
        return self._http

    async def _call(self, method: str, url: str, headers: dict[str, str],
                    form: dict[str, str] | None) -> tuple[int, Any]:
        where = urlsplit(url).netloc
        try:
            async with self._client().request(method, url, headers=headers, data=form,
                                              allow_redirects=False) as resp:
                raw = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    raw += chunk
                    if len(raw) > _MAX_IDP_BODY:
                        raise OidcError(f"{where} answered more than {_MAX_IDP_BODY} bytes")
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    data = None
                return resp.status, data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OidcError(f"cannot reach {where}: {type(exc).__name__}") from None


# --------------------------------------------------------------------------
# Helpers


def _multi(pairs: Sequence[tuple[str, str]]) -> CIMultiDict[str]:
    """Response headers that may repeat (two Set-Cookie)."""
    return CIMultiDict(pairs)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _with_query(url: str, params: Mapping[str, str]) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + urlencode(params)


def _query(flow: Flow) -> dict[str, str]:
    """Query parameters (first value of each)."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(flow.query_string, keep_blank_values=True):
        out.setdefault(key, value)
    return out


def _browser_navigation(flow: Flow) -> bool:
    """Whether a redirect to a login page makes sense for this request."""
    if flow.method != "GET":
        return False
    headers = flow.request_headers
    if "text/html" not in ",".join(headers.getall("Accept", [])).lower():
        return False
    if headers.get("X-Requested-With", "").lower() == "xmlhttprequest":
        return False
    mode = headers.get("Sec-Fetch-Mode")
    return mode is None or mode.lower() == "navigate"


def _original_url(flow: Flow) -> str:
    target = flow.request.raw_path
    if not target.startswith("/"):
        parts = urlsplit(target)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target = _safe_relative(target)
    # Kept in a cookie: a very long URL falls back to its path, or the root.
    if len(target) > 2048:
        target = target.split("?", 1)[0]
    return target if len(target) <= 2048 else "/"


def _safe_relative(url: str) -> str:
    """A same-origin path, never a URL that sends the browser elsewhere."""
    if (not url.startswith("/") or url.startswith("//") or url.startswith("/\\")
            or any(c in url for c in "\r\n\t\\")):
        return "/"
    return url


def _expires_in(tokens: Mapping[str, Any]) -> float | None:
    value = tokens.get("expires_in")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str) and value.isdigit():
        return float(value)
    return None


def _check_azp(claims: Mapping[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    azp = claims.get("azp")
    if azp is not None and azp != client_id:
        raise OidcError("id_token azp names another client")
    if isinstance(aud, list) and len(aud) > 1 and azp is None:
        raise OidcError("id_token has several audiences and no azp")


def _clean(value: str) -> str:
    """Without control characters (they cannot go in a header), at most 256 characters."""
    return "".join(c for c in value if c >= " " and c != "\x7f")[:256]


def _groups(value: Any) -> list[str]:
    if isinstance(value, str):
        items: list[Any] = re.split(r"[,\s]+", value)
    elif isinstance(value, list):
        items = value
    else:
        return []
    return [g for g in (_clean(i) for i in items if isinstance(i, str)) if g]


def _header_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = ",".join(value)
    else:
        text = json.dumps(value, separators=(",", ":"))
    return "".join(c for c in text if c >= " " and c != "\x7f")[:4096]


def _remember(cache: OrderedDict[bytes, Any], key: bytes, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_ENTRIES:
        cache.popitem(last=False)


__all__ = ["OidcAuth", "OidcOptions"]
