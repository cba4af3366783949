"""jwt-auth through the auth plugin, over real sockets: the echo upstream and a real JWKS server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import yaml
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from yarl import URL

from proxy.config import ConfigError, parse_config
from tests.auth.conftest import AuthGateway, UpstreamFactory, auth_config
from tests.conftest import InProcessGateway, free_tcp_port

ISS = "https://idp.test/"
AUD = "orders-api"
HS_SECRET = "hs-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

RSA1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC1 = ec.generate_private_key(ec.SECP256R1())


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True),
            "kid": kid, "use": "sig", "alg": "RS256"}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now,
                            "exp": now + 300}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def rs256(payload: dict[str, Any] | None = None, kid: str | None = "k1",
          key: rsa.RSAPrivateKey = RSA1, alg: str = "RS256") -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims() if payload is None else payload, key, algorithm=alg,
                      headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


ALICE = {"id": "alice-rs", "type": "jwt-auth", "jwks": {"keys": [rsa_jwk(RSA1, "k1"),
                                                                  rsa_jwk(RSA2, "k2")]},
         "issuer": ISS, "audience": AUD, "algorithms": ["RS256"],
         "claims_to_headers": {"sub": "X-User-Id", "roles": "X-User-Roles"}}
ERIN = {"id": "erin-es", "type": "jwt-auth", "jwks": {"keys": [ec_jwk(EC1, "e1")]},
        "issuer": "https://ec.test/", "algorithms": ["ES256"]}
HUGO = {"id": "hugo-hs", "type": "jwt-auth", "secret": HS_SECRET, "key": "hugo",
        "issuer": "cron", "algorithms": ["HS256"]}

CONSUMERS: list[dict[str, Any]] = [
    {"name": "alice", "credentials": [ALICE]},
    {"name": "erin", "credentials": [ERIN]},
    {"name": "hugo", "credentials": [HUGO]},
    {"name": "guest"},
]
JWT_ONLY: dict[str, Any] = {"any_of": ["jwt-auth"]}


def hs256(**extra: Any) -> str:
    now = int(time.time())
    payload = {"key": "hugo", "iss": "cron", "iat": now, "exp": now + 60, **extra}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, HS_SECRET,
                      algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get(http: aiohttp.ClientSession, url: str | URL, **kwargs: Any
              ) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.get(url, **kwargs) as resp:
        return resp.status, await resp.json(), resp


class Logged:
    """A gateway whose access log goes to a file, to read why a request was refused."""

    def __init__(self, gw: InProcessGateway, path: Path) -> None:
        self.gw, self.path = gw, path
        self.url = gw.url

    async def reason(self, request_id: str) -> str | None:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if self.path.exists():
                for line in self.path.read_text().splitlines():
                    record = json.loads(line)
                    if record["request_id"] == request_id:
                        for d in record.get("decisions", []):
                            if d["plugin"] == "auth":
                                reason: str | None = d.get("reason")
                                return reason
                        return None
            await asyncio.sleep(0.01)
        raise AssertionError(f"no access log line for {request_id}")


async def logged_gateway(auth_gateway: AuthGateway, tmp_path: Path,
                         consumers: list[dict[str, Any]] = CONSUMERS,
                         auth: dict[str, Any] = JWT_ONLY) -> Logged:
    path = tmp_path / f"access-{uuid.uuid4().hex}.log"
    gw = await auth_gateway(consumers, auth, access_log={"enabled": True, "path": str(path)})
    return Logged(gw, path)


async def refused(http: aiohttp.ClientSession, gw: Logged, token: str | None = None,
                  url: str = "/x", **kwargs: Any) -> str | None:
    """Expect a 401 and return the reason the auth plugin logged."""
    if token is not None:
        kwargs.setdefault("headers", bearer(token))
    status, body, resp = await get(http, gw.url + url, **kwargs)
    assert status == 401, body
    assert resp.headers.getall("WWW-Authenticate") == ['Bearer realm="bastion"']
    return await gw.reason(body["request_id"])


# --------------------------------------------------------------------------
# Accepted tokens


async def test_rs256_from_inline_jwks_sets_identity_and_claim_headers(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, JWT_ONLY)
    token = rs256(claims(roles=["reader", "writer"]))
    # A client cannot pre-set a header that claims_to_headers owns.
    status, body, _ = await get(http, gw.url + "/x",
                                headers={**bearer(token), "X-User-Id": "admin"})
    assert status == 200
    h = body["headers"]
    assert h["X-Consumer-Username"] == "alice"
    assert h["X-Credential-Identifier"] == "alice-rs"
    assert h["X-User-Id"] == "user-1"
    assert h["X-User-Roles"] == "reader,writer"
    assert h["Authorization"] == f"Bearer {token}"  # kept without hide_credentials
    # No such claim: the client's copy is still dropped, nothing is set.
    status, body, _ = await get(http, gw.url + "/x",
                                headers={**bearer(rs256(kid="k2", key=RSA2)),
                                         "X-User-Roles": "admin"})
    assert status == 200
    assert "X-User-Roles" not in body["headers"]
    # Stripped on a route where no token is presented, too.
    status, body, _ = await get(http, gw.url + "/x", headers={"X-User-Id": "admin"})
    assert status == 401


async def test_es256_and_hs256_secret(auth_gateway: AuthGateway,
                                      http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, JWT_ONLY)
    es = jwt.encode(claims(iss="https://ec.test/", aud=None), EC1, algorithm="ES256",
                    headers={"kid": "e1"})
    status, body, _ = await get(http, gw.url + "/x", headers=bearer(es))
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "erin"
    # A single-key set serves a token without a kid.
    es = jwt.encode(claims(iss="https://ec.test/", aud=None), EC1, algorithm="ES256")
    status, body, _ = await get(http, gw.url + "/x", headers=bearer(es))
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "erin"
    status, body, _ = await get(http, gw.url + "/x", headers=bearer(hs256()))
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "hugo"
    assert body["headers"]["X-Credential-Identifier"] == "hugo-hs"


async def test_secret_rotation_accepts_every_listed_secret(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession) -> None:
    new = "new-secret-" + "n" * 40
    consumers = [{"name": "hugo", "credentials": [{**HUGO, "secret": [new, HS_SECRET]}]}]
    gw = await auth_gateway(consumers, JWT_ONLY)
    for secret in (new, HS_SECRET):
        now = int(time.time())
        token = jwt.encode({"key": "hugo", "iss": "cron", "exp": now + 60}, secret,
                           algorithm="HS256")
        status, _, _ = await get(http, gw.url + "/x", headers=bearer(token))
        assert status == 200


async def test_clock_skew_tolerates_a_just_expired_token(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, JWT_ONLY)
    now = int(time.time())
    status, _, _ = await get(http, gw.url + "/x",
                             headers=bearer(rs256(claims(exp=now - 30, nbf=now + 30))))
    assert status == 200


# --------------------------------------------------------------------------
# Where tokens come from


async def test_token_from_query_and_cookie(auth_gateway: AuthGateway,
                                           http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["jwt-auth"],
                                        "jwt-auth": {"cookies": ["jwt"]}})
    token = rs256()
    status, body, _ = await get(http, gw.url + f"/x?access_token={token}")
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "alice"
    status, body, _ = await get(http, gw.url + "/x",
                                headers={"Cookie": f"theme=dark; jwt={token}"})
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "alice"


async def test_custom_header_source(auth_gateway: AuthGateway,
                                    http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["jwt-auth"],
                                        "jwt-auth": {"headers": ["X-Token"], "query": []}})
    status, _, _ = await get(http, gw.url + "/x", headers={"X-Token": rs256()})
    assert status == 200
    # The default sources are replaced, not added to.
    status, _, _ = await get(http, gw.url + "/x", headers=bearer(rs256()))
    assert status == 401
    status, _, _ = await get(http, gw.url + f"/x?access_token={rs256()}")
    assert status == 401


async def test_missing_token_is_missing_not_invalid(auth_gateway: AuthGateway,
                                                    http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, JWT_ONLY)
    status, body, resp = await get(http, gw.url + "/x")
    assert (status, body["error"]) == (401, "authentication required")
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="bastion"'
    # Another scheme in Authorization is not a bearer token.
    status, body, _ = await get(http, gw.url + "/x", headers={"Authorization": "Basic eDp5"})
    assert (status, body["error"]) == (401, "authentication required")
    gw = await auth_gateway(CONSUMERS, {"any_of": ["jwt-auth"], "anonymous": "guest"})
    status, body, _ = await get(http, gw.url + "/x")
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "guest"
    # A bad token is never downgraded to the anonymous consumer.
    status, _, _ = await get(http, gw.url + "/x", headers=bearer("not.a.jwt"))
    assert status == 401


async def test_more_than_one_token_is_refused(auth_gateway: AuthGateway, tmp_path: Path,
                                              http: aiohttp.ClientSession) -> None:
    gw = await logged_gateway(auth_gateway, tmp_path, auth={
        "any_of": ["jwt-auth"], "jwt-auth": {"cookies": ["jwt"]}})
    token = rs256()
    assert await refused(http, gw, token, url=f"/x?access_token={token}") == \
        "more than one token in the request"
    assert await refused(http, gw, url=f"/x?access_token={token}",
                         headers={"Cookie": f"jwt={token}"}) == \
        "more than one token in the request"
    assert await refused(http, gw, url=f"/x?access_token={token}&access_token={token}") == \
        "more than one token in the request"
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", "Basic eDp5")]
    assert await refused(http, gw, headers=headers) == "more than one Authorization header"


async def test_hide_credentials_removes_the_token_everywhere(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["jwt-auth"], "hide_credentials": True,
                                        "jwt-auth": {"cookies": ["jwt"]}})
    token = rs256()
    status, body, _ = await get(http, gw.url + "/x", headers=bearer(token))
    assert status == 200 and "Authorization" not in body["headers"]
    url = URL(gw.url + f"/x?a=1&access_token={token}&b=%2F+x", encoded=True)
    status, body, _ = await get(http, url)
    assert status == 200 and body["query"] == "a=1&b=%2F+x"
    status, body, _ = await get(http, gw.url + "/x",
                                headers={"Cookie": f"theme=dark; jwt={token}; lang=en"})
    assert status == 200
    assert body["headers"]["Cookie"] == "theme=dark; lang=en"
    assert token not in json.dumps(body)


# --------------------------------------------------------------------------
# Attacks and bad tokens


def _alg_none() -> str:
    return forge({"alg": "none", "typ": "JWT", "kid": "k1"}, claims(), lambda _: b"")


def _rs_to_hs_confusion() -> str:
    pem = RSA1.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return forge({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims(),
                 lambda data: hmac.new(pem, data, hashlib.sha256).digest())


def _tampered() -> str:
    header, _, signature = rs256().split(".")
    payload = b64(json.dumps(claims(sub="admin")).encode())
    return f"{header}.{payload}.{signature}"


def _now() -> int:
    return int(time.time())


ATTACKS: list[tuple[str, Callable[[], str], str]] = [
    ("alg-none", _alg_none, "algorithm not allowed"),
    ("rs256-to-hs256", _rs_to_hs_confusion, "algorithm not allowed"),
    ("alg-not-pinned", lambda: rs256(alg="RS384"), "algorithm not allowed"),
    ("ps256-same-key", lambda: rs256(alg="PS256"), "algorithm not allowed"),
    ("expired", lambda: rs256(claims(exp=_now() - 120)), "token expired"),
    ("nbf-future", lambda: rs256(claims(nbf=_now() + 300)), "token not yet valid"),
    ("iat-future", lambda: rs256(claims(iat=_now() + 300)), "token not yet valid"),
    ("no-exp", lambda: rs256(claims(exp=None)), "missing claim exp"),
    ("unknown-issuer", lambda: rs256(claims(iss="https://evil.test/")),
     "no credential matches the token"),
    ("wrong-issuer-keyed", lambda: hs256(iss="evil"), "wrong issuer"),
    ("wrong-audience", lambda: rs256(claims(aud="billing-api")), "wrong audience"),
    ("no-audience", lambda: rs256(claims(aud=None)), "missing claim aud"),
    ("unknown-kid", lambda: rs256(kid="nope"), "unknown key id"),
    ("no-kid-several-keys", lambda: rs256(kid=None),
     "token has no kid and the key set has several keys"),
    ("tampered-payload", _tampered, "bad signature"),
    ("other-key-same-kid", lambda: rs256(key=RSA2, kid="k1"), "bad signature"),
    ("hs256-wrong-secret", lambda: jwt.encode({"key": "hugo", "iss": "cron",
                                               "exp": _now() + 60}, "x" * 40,
                                              algorithm="HS256"), "bad signature"),
    ("garbage", lambda: "not-a-token", "malformed token"),
    ("garbage-3-parts", lambda: "a.b.c", "malformed token"),
]


@pytest.mark.parametrize(("make", "reason"), [(m, r) for _, m, r in ATTACKS],
                         ids=[name for name, _, _ in ATTACKS])
async def test_bad_tokens_are_refused_for_the_right_reason(
        auth_gateway: AuthGateway, tmp_path: Path, http: aiohttp.ClientSession,
        make: Callable[[], str], reason: str) -> None:
    gw = await logged_gateway(auth_gateway, tmp_path)
    token = make()
    assert await refused(http, gw, token) == reason
    # The reason never carries the token or its claims.
    _, body, _ = await get(http, gw.url + "/x", headers=bearer(token))
    assert token not in json.dumps(body) and "evil" not in json.dumps(body)


async def test_a_token_two_credentials_accept_is_refused(
        auth_gateway: AuthGateway, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    shared = {"type": "jwt-auth", "jwks": {"keys": [rsa_jwk(RSA1, "k1")]}, "issuer": ISS,
              "algorithms": ["RS256"]}
    consumers = [{"name": "a", "credentials": [{**shared, "id": "a1", "audience": "a"}]},
                 {"name": "b", "credentials": [{**shared, "id": "b1", "audience": "b"}]}]
    gw = await logged_gateway(auth_gateway, tmp_path, consumers)
    status, body, _ = await get(http, gw.url + "/x", headers=bearer(rs256(claims(aud="b"))))
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "b"
    assert await refused(http, gw, rs256(claims(aud=["a", "b"]))) == \
        "token matches more than one credential"


# --------------------------------------------------------------------------
# Keys from a JWKS URL


class JwksServer:
    """A real JWKS endpoint whose keys, status and speed a test controls."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.status = 200
        self.hits = 0
        self.stall = asyncio.Event()  # set: answer after `release` (or 5 s)
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_get("/jwks", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.stall.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), 5)
        if self.status != 200:
            return web.Response(status=self.status, text="down")
        return web.json_response({"keys": self.keys})


def uri_consumers(url: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": "alice", "credentials": [{
        "id": "alice-uri", "type": "jwt-auth", "jwks_uri": url, "issuer": ISS,
        "audience": AUD, "algorithms": ["RS256"], **extra}]}]


async def test_jwks_uri_rotation_refetches_once_for_a_new_kid(
        auth_gateway: AuthGateway, upstream: UpstreamFactory, tmp_path: Path,
        http: aiohttp.ClientSession) -> None:
    server = JwksServer([rsa_jwk(RSA1, "k1")])
    url = await upstream(server.app)
    gw = await logged_gateway(auth_gateway, tmp_path, uri_consumers(url + "/jwks"))
    assert server.hits == 1  # fetched when the config started
    status, _, _ = await get(http, gw.url + "/x", headers=bearer(rs256()))
    assert status == 200 and server.hits == 1
    # The provider rotates: k1 is gone, k2 is in.
    server.keys = [rsa_jwk(RSA2, "k2")]
    status, body, _ = await get(http, gw.url + "/x", headers=bearer(rs256(kid="k2", key=RSA2)))
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "alice"
    assert server.hits == 2
    status, _, _ = await get(http, gw.url + "/x", headers=bearer(rs256(kid="k2", key=RSA2)))
    assert status == 200 and server.hits == 2
    # The old key is no longer accepted, and asking again waits for the cooldown.
    assert await refused(http, gw, rs256()) == "unknown key id"
    assert server.hits == 2


async def test_unknown_kid_flood_fetches_at_most_once_per_cooldown(
        auth_gateway: AuthGateway, upstream: UpstreamFactory,
        http: aiohttp.ClientSession) -> None:
    server = JwksServer([rsa_jwk(RSA1, "k1")])
    url = await upstream(server.app)
    gw = await auth_gateway(uri_consumers(url + "/jwks", jwks_refresh_cooldown_seconds=0.5),
                            JWT_ONLY)
    assert server.hits == 1

    async def attempt() -> int:
        token = rs256(kid=uuid.uuid4().hex)
        async with http.get(gw.url + "/x", headers=bearer(token)) as resp:
            return resp.status

    statuses = await asyncio.gather(*(attempt() for _ in range(40)))
    assert set(statuses) == {401}
    assert server.hits == 2  # one refetch for the whole flood
    statuses = await asyncio.gather(*(attempt() for _ in range(10)))
    assert set(statuses) == {401} and server.hits == 2
    await asyncio.sleep(0.6)
    statuses = await asyncio.gather(*(attempt() for _ in range(10)))
    assert set(statuses) == {401} and server.hits == 3
    # Known kids never wait for, or cause, a fetch.
    status, _, _ = await get(http, gw.url + "/x", headers=bearer(rs256()))
    assert status == 200 and server.hits == 3


async def test_stale_keys_are_kept_when_the_provider_fails(
        auth_gateway: AuthGateway, upstream: UpstreamFactory,
        http: aiohttp.ClientSession) -> None:
    server = JwksServer([rsa_jwk(RSA1, "k1")])
    url = await upstream(server.app)
    gw = await auth_gateway(uri_consumers(url + "/jwks", jwks_cache_seconds=0.2), JWT_ONLY)
    server.status = 503
    await asyncio.sleep(0.3)
    status, _, _ = await get(http, gw.url + "/x", headers=bearer(rs256()))
    assert status == 200  # served from the expired set while it refreshes in the background
    for _ in range(100):
        if server.hits >= 2:
            break
        await asyncio.sleep(0.01)
    assert server.hits == 2
    status, _, _ = await get(http, gw.url + "/x", headers=bearer(rs256()))
    assert status == 200


async def test_jwks_down_with_no_cache_fails_closed_fast(
        auth_gateway: AuthGateway, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    dead = f"http://127.0.0.1:{free_tcp_port()}/jwks"
    gw = await logged_gateway(auth_gateway, tmp_path,
                              uri_consumers(dead, jwks_refresh_cooldown_seconds=0))
    started = time.monotonic()
    assert await refused(http, gw, rs256()) == "signing keys unavailable"
    assert time.monotonic() - started < 1.5


async def test_a_hanging_jwks_server_times_out(
        auth_gateway: AuthGateway, upstream: UpstreamFactory, tmp_path: Path,
        http: aiohttp.ClientSession) -> None:
    server = JwksServer([rsa_jwk(RSA1, "k1")])
    server.stall.set()
    url = await upstream(server.app)
    try:
        started = time.monotonic()
        gw = await logged_gateway(auth_gateway, tmp_path, uri_consumers(
            url + "/jwks", jwks_timeout_seconds=0.3, jwks_refresh_cooldown_seconds=0))
        assert time.monotonic() - started < 2
        started = time.monotonic()
        assert await refused(http, gw, rs256()) == "signing keys unavailable"
        assert time.monotonic() - started < 1.5
        assert server.hits == 2  # the request tried again (no cooldown) and timed out too
    finally:
        server.release.set()


# --------------------------------------------------------------------------
# Config checks


def _load(consumers: list[dict[str, Any]], auth: dict[str, Any] = JWT_ONLY) -> None:
    parse_config(yaml.safe_dump(auth_config("http://127.0.0.1:9", consumers, auth)))


def _cred(**fields: Any) -> list[dict[str, Any]]:
    return [{"name": "a", "credentials": [{"id": "c", "type": "jwt-auth", **fields}]}]


JWKS1 = {"keys": [rsa_jwk(RSA1, "k1")]}


@pytest.mark.parametrize(("consumers", "auth", "message"), [
    (_cred(jwks=JWKS1), JWT_ONLY, "credentials[0].algorithms: Field required"),
    (_cred(jwks=JWKS1, algorithms=["none"]), JWT_ONLY,
     "credentials[0].algorithms[0]: Input should be"),
    (_cred(algorithms=["RS256"]), JWT_ONLY, "exactly one of secret, jwks or jwks_uri"),
    (_cred(jwks=JWKS1, secret=HS_SECRET, algorithms=["RS256"]), JWT_ONLY, "exactly one of"),
    (_cred(jwks=JWKS1, algorithms=["RS256", "HS256"]), JWT_ONLY, "cannot be mixed"),
    (_cred(secret=HS_SECRET, algorithms=["RS256"]), JWT_ONLY, "a secret verifies HS256"),
    (_cred(secret="short-secret", algorithms=["HS256"]), JWT_ONLY, "at least 32 bytes"),
    (_cred(secret=HS_SECRET, algorithms=["HS512"]), JWT_ONLY, "at least 64 bytes"),
    (_cred(jwks={"keys": [{"kty": "RSA"}]}, algorithms=["RS256"]), JWT_ONLY,
     "jwks: the JWKS holds no usable"),
    (_cred(jwks_uri="http://idp.example.com/jwks", algorithms=["RS256"]), JWT_ONLY,
     "use https"),
    (_cred(jwks_uri="https://idp.example.com/jwks", algorithms=["HS256"]), JWT_ONLY,
     "not keys from a URL"),
    (_cred(jwks=JWKS1, algorithms=["RS256"], claims_to_headers={"sub": "X-Consumer-Username"}),
     JWT_ONLY, "set by the gateway"),
    (_cred(jwks=JWKS1, algorithms=["RS256"], claims_to_headers={"sub": "bad header"}),
     JWT_ONLY, "not a valid header name"),
    (_cred(jwks=JWKS1, algorithms=["RS256"], issuer=[]), JWT_ONLY, "empty issuer list"),
    (_cred(jwks=JWKS1, algorithms=["RS256"], audiences="x"), JWT_ONLY,
     "credentials[0].audiences"),
    ([{"name": "a", "credentials": [{**HUGO, "id": "h1"}]},
      {"name": "b", "credentials": [{**HUGO, "id": "h2"}]}], JWT_ONLY,
     "key='hugo' already picks credential 'h1'"),
    ([{"name": "a", "credentials": [{**ALICE, "id": "a1"}]},
      {"name": "b", "credentials": [{**ALICE, "id": "a2"}]}], JWT_ONLY,
     "would also verify here"),
    (_cred(jwks=JWKS1, algorithms=["RS256"]), {"any_of": ["jwt-auth"], "jwt-auth": {
        "headers": [], "query": []}}, "at least one header, query parameter or cookie"),
])
def test_bad_config_is_rejected(consumers: list[dict[str, Any]], auth: dict[str, Any],
                                message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(consumers, auth)
    assert message in str(info.value)


async def test_claim_headers_cannot_overwrite_a_token_source(auth_gateway: AuthGateway) -> None:
    with pytest.raises(ConfigError) as info:
        await auth_gateway(_cred(jwks=JWKS1, algorithms=["RS256"],
                                 claims_to_headers={"sub": "X-Token"}),
                           {"any_of": ["jwt-auth"], "jwt-auth": {"headers": ["x-token"]}})
    assert "reads tokens from" in str(info.value)


def test_a_plain_http_jwks_uri_needs_opting_in() -> None:
    # Loopback is allowed (tests, sidecars); anything else needs jwks_allow_http.
    _load(_cred(jwks_uri="http://idp.internal/jwks", algorithms=["RS256"],
                jwks_allow_http=True))
    _load(_cred(jwks_uri="http://localhost:9/jwks", algorithms=["RS256"]))
