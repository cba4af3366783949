"""hmac-auth through the auth plugin: both wire formats, over real sockets to the echo upstream.

The published vectors pin the string-to-sign functions; the end-to-end tests
sign with an independent client (what the docs show), so the gateway's way
of reading path, query, form body and headers is checked against a client's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
import yaml
from multidict import CIMultiDict
from yarl import URL

from auth import hmac_auth
from auth.hmac_auth import (
    ca_params,
    ca_string_to_sign,
    parse_signature_header,
    sign,
    signature_signing_string,
)
from proxy.config import ConfigError, parse_config
from tests.auth.conftest import AuthGateway, auth_config
from tests.conftest import GatewayProcess, free_tcp_port, service

ALICE_SECRET = "alice-secret-0123456789abcdef"
BOB_SECRET = "bob-secret-fedcba9876543210"

CONSUMERS: list[dict[str, Any]] = [
    {"name": "alice", "groups": ["partners"], "credentials": [
        {"id": "alice-hmac", "type": "hmac-auth", "key_id": "alice", "secret": ALICE_SECRET}]},
    {"name": "bob", "credentials": [
        {"id": "bob-hmac", "type": "hmac-auth", "key_id": "bob", "secret": BOB_SECRET}]},
    # The published vectors' credentials.
    {"name": "higress", "credentials": [
        {"id": "app-hmac", "type": "hmac-auth", "key_id": "appKey", "secret": "appSecret"}]},
    {"name": "john", "credentials": [
        {"id": "john-hmac", "type": "hmac-auth", "key_id": "john-key",
         "secret": "john-secret-key"}]},
]
SECRETS = {"alice": ALICE_SECRET, "bob": BOB_SECRET}

HMAC = {"any_of": ["hmac-auth"]}


# --------------------------------------------------------------------------
# An independent client: how a caller signs (the docs show the same code)


def ca_sign(key: str, secret: str, method: str, target: str, headers: Mapping[str, str],
            body: bytes = b"", algorithm: str = "HmacSHA256",
            nonce: str | None = None, timestamp: str | None = None,
            listed: tuple[str, ...] | None = None) -> dict[str, str]:
    """X-Ca-* headers for a request, Alibaba Cloud API gateway style.

    ``listed``: the X-Ca-Signature-Headers (default: every X-Ca-* header).
    """
    out = dict(headers)
    out["X-Ca-Key"] = key
    out["X-Ca-Signature-Method"] = algorithm
    out["X-Ca-Timestamp"] = timestamp or str(int(time.time() * 1000))
    out["X-Ca-Nonce"] = nonce or str(uuid.uuid4())
    signed = sorted(listed if listed is not None else
                    (k.lower() for k in out if k.lower().startswith("x-ca-")))
    out["X-Ca-Signature-Headers"] = ",".join(signed)
    lower = {k.lower(): v for k, v in out.items()}
    lines = [method] + [lower.get(h, "") for h in ("accept", "content-md5", "content-type",
                                                   "date")]
    lines += [f"{h}:{lower[h]}" for h in signed]
    path, _, query = target.partition("?")
    params: dict[str, str] = {}
    form = body.decode() if "x-www-form-urlencoded" in lower.get("content-type", "") else ""
    for k, v in parse_qsl(query, keep_blank_values=True) + parse_qsl(form,
                                                                     keep_blank_values=True):
        params.setdefault(k, v)
    pairs = "&".join(k + "=" + v if v else k for k, v in sorted(params.items()))
    lines.append(path + ("?" + pairs if pairs else ""))
    digest = hashlib.sha1 if algorithm == "HmacSHA1" else hashlib.sha256
    mac = hmac.new(secret.encode(), "\n".join(lines).encode(), digest).digest()
    out["X-Ca-Signature"] = base64.b64encode(mac).decode()
    return out


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def signature_sign(key_id: str, secret: str, method: str, target: str,
                   headers: Mapping[str, str],
                   signed: tuple[str, ...] = ("@request-target", "date"),
                   algorithm: str = "hmac-sha256", date: str | None = None) -> dict[str, str]:
    """Date and an ``Authorization: Signature`` header, APISIX style."""
    out = dict(headers)
    out.setdefault("Date", date or formatdate(usegmt=True))
    lower = {k.lower(): v for k, v in out.items()}
    lines = [key_id]
    for h in signed:
        lines.append(f"{method} {target}" if h == "@request-target" else f"{h}: {lower[h]}")
    digest = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256,
              "hmac-sha512": hashlib.sha512}[algorithm]
    mac = hmac.new(secret.encode(), ("\n".join(lines) + "\n").encode(), digest).digest()
    signature = base64.b64encode(mac).decode()
    out["Authorization"] = (f'Signature keyId="{key_id}",algorithm="{algorithm}",'
                            f'headers="{" ".join(signed)}",signature="{signature}"')
    return out


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def respell(authorization: str) -> str:
    """The same header with the signature's unused last bit flipped (same bytes decoded)."""
    head, _, tail = authorization.rpartition('signature="')
    signature = tail[:-1]
    data, pad = signature.rstrip("="), signature[len(signature.rstrip("=")):]
    flipped = _B64[_B64.index(data[-1]) ^ 1]
    respelled = data[:-1] + flipped + pad
    assert base64.b64decode(respelled) == base64.b64decode(signature)
    return f'{head}signature="{respelled}"'


def body_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


# --------------------------------------------------------------------------
# Helpers


async def send(http: aiohttp.ClientSession, gw_url: str, method: str, target: str,
               headers: Mapping[str, str] | CIMultiDict[str], body: bytes | None = None
               ) -> tuple[int, dict[str, Any]]:
    url = URL(gw_url + target, encoded=True)
    async with http.request(method, url, headers=headers, data=body) as resp:
        return resp.status, await resp.json()


class Log:
    """The access log of a test gateway: what the auth plugin decided, and why."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def config(self) -> dict[str, Any]:
        return {"enabled": True, "path": str(self.path)}

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    async def last_reason(self, count: int) -> str | None:
        """The auth reason of the ``count``-th request (1-based) once it is logged."""
        for _ in range(200):  # the line is written once the response is sent
            records = self.records()
            if len(records) >= count:
                break
            await asyncio.sleep(0.01)
        decision = next(d for d in records[count - 1]["decisions"] if d["plugin"] == "auth")
        reason: str | None = decision.get("reason")
        return reason


@pytest.fixture
def access_log(tmp_path: Path) -> Log:
    return Log(tmp_path / "access.log")


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Set the gateway's wall clock (it runs in this process) to a vector's time."""
    def pin(when: float) -> None:
        monkeypatch.setattr(hmac_auth, "_clock", lambda: when)
    return pin


JSON = {"Accept": "application/json"}


# --------------------------------------------------------------------------
# The published vectors (alibaba/higress plugin_test.cc; APISIX hmac-auth docs)


VECTOR_1 = {
    "Accept": "application/json", "Content-Type": "application/json",
    "X-Ca-Timestamp": "1646365291734", "X-Ca-Nonce": "787dd0c2-7bd8-41cd-9c19-62c05ea524a2",
    "X-Ca-Key": "appKey", "X-Ca-Signature-Headers": "x-ca-key,x-ca-nonce,x-ca-timestamp",
    "X-Ca-Signature": "EdJSFAMOWyXZOpXhevZnjuS0ZafnwnCqaSk5hz+tXo8=",
}
VECTOR_2 = {
    "Accept": "application/json", "X-Ca-Key": "appKey",
    "X-Ca-Signature": "ZpJhkHdtjLTJiR6CJWHL8ikLtPB2z6CoztG21wG3PT4=",
}
VECTOR_3 = {
    "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded",
    "X-Ca-Timestamp": "1646646682418", "X-Ca-Nonce": "ca5a6753-b76c-4fff-a9d9-e5bb643e8cdf",
    "X-Ca-Key": "appKey", "X-Ca-Signature-Headers": "x-ca-key,x-ca-nonce,x-ca-timestamp",
    "X-Ca-Signature": "gmf9xq0hc95Hmt+7G+OocS009ka3v1v0rvfshKzYc3w=",
}
VECTOR_3_BODY = "nickname=nickname&room_id=6893&uuid=uuid&photo=photo"
APISIX_DATE = "Mon, 21 Oct 2024 17:31:18 GMT"
APISIX_AUTH = ('Signature keyId="john-key",algorithm="hmac-sha256",'
               'headers="@request-target date",'
               'signature="ztFfl9w7LmCrIuPjRC/DWSF4gN6Bt8dBBz4y+u1pzt8="')


@pytest.mark.parametrize(("method", "headers", "path", "query", "form", "expected_sts"), [
    ("GET", VECTOR_1, "/Third/Tools/checkSign", "", None,
     "GET\napplication/json\n\napplication/json\n\nx-ca-key:appKey\n"
     "x-ca-nonce:787dd0c2-7bd8-41cd-9c19-62c05ea524a2\nx-ca-timestamp:1646365291734\n"
     "/Third/Tools/checkSign"),
    ("GET", VECTOR_2, "/Third/Tools/checkSign", "", None,
     "GET\napplication/json\n\n\n\n/Third/Tools/checkSign"),
    ("POST", VECTOR_3, "/Third/User/getNyAccessToken", "", VECTOR_3_BODY,
     "POST\napplication/json\n\napplication/x-www-form-urlencoded\n\nx-ca-key:appKey\n"
     "x-ca-nonce:ca5a6753-b76c-4fff-a9d9-e5bb643e8cdf\nx-ca-timestamp:1646646682418\n"
     "/Third/User/getNyAccessToken?nickname=nickname&photo=photo&room_id=6893&uuid=uuid"),
], ids=["higress-1", "higress-2-no-signed-headers", "higress-3-form-body"])
def test_higress_vectors(method: str, headers: dict[str, str], path: str, query: str,
                         form: str | None, expected_sts: str) -> None:
    sts = ca_string_to_sign(method, CIMultiDict(headers), path, ca_params(query, form))
    assert sts == expected_sts
    assert sign("appSecret", sts, "hmac-sha256") == headers["X-Ca-Signature"]


def test_higress_date_vector_sorts_query_and_signs_the_date_line() -> None:
    # Higress plugin_test.cc DateCheck: a Date line, a query sorted by key,
    # X-Ca-Signature-Headers in any order and case.
    headers = CIMultiDict({
        "Accept": "application/json; charset=utf-8",
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Ca-Timestamp": "1525872629832", "Date": "Wed, 09 May 2018 13:30:29 GMT+00:00",
        "X-Ca-Nonce": "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44", "X-Ca-Key": "203753385",
        "X-Ca-Signature-Method": "HmacSHA256",
        "X-Ca-Signature-Headers": "x-ca-timestamp,X-Ca-Key,x-ca-nonce,x-ca-signature-method",
    })
    sts = ca_string_to_sign("POST", headers, "/http2test/test",
                            ca_params("param1=test&username=xiaoming&password=123456789"))
    assert sts.endswith("\n/http2test/test?param1=test&password=123456789&username=xiaoming")
    assert sign("123456", sts, "hmac-sha256") == "FJbhmAFYz9zfl1FrThxzxBt79BvaHQIzy8Wpctn+xXE="


def test_ca_params_first_value_wins_and_empty_values_stand_alone() -> None:
    assert ca_params("b=2&a=&b=3&c", "a=9&d=x+y%26") == [
        ("a", ""), ("b", "2"), ("c", ""), ("d", "x y&")]
    sts = ca_string_to_sign("GET", CIMultiDict(), "/p", ca_params("b=2&a=&c"))
    assert sts == "GET\n\n\n\n\n/p?a&b=2&c"


def test_apisix_vector_and_digest() -> None:
    params = parse_signature_header(APISIX_AUTH)
    assert (params.key_id, params.algorithm, params.headers) == (
        "john-key", "hmac-sha256", ("@request-target", "date"))
    sts = signature_signing_string(params.key_id, params.headers, "GET", "/get",
                                   CIMultiDict({"Date": APISIX_DATE}))
    assert sts == f"john-key\nGET /get\ndate: {APISIX_DATE}\n"
    assert sign("john-secret-key", sts, "hmac-sha256") == params.signature
    assert body_digest(b'{"name": "world"}') == (
        "SHA-256=78qzJuLwSpZ8HacsTdFCQJWxzPMOf8bYctRk2ySLpS8=")


@pytest.mark.parametrize("value", [
    "Signature", "Signature ", 'Signature keyId="a"', 'Signature keyId="a",algorithm="x"',
    'Signature keyId="a",algorithm="hmac-sha256",signature="s",junk',
    'Signature keyId="a",keyId="b",algorithm="hmac-sha256",signature="s"',
    'Signature keyId=a,algorithm="hmac-sha256",signature="s"', "Basic YTpi",
])
def test_signature_header_parser_refuses_malformed(value: str) -> None:
    with pytest.raises(ValueError):
        parse_signature_header(value)


async def test_vectors_verify_through_the_gateway(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession, access_log: Log,
        pinned_clock: Callable[[float], None]) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC, access_log=access_log.config())
    pinned_clock(1646365291.734)
    status, body = await send(http, gw.url, "GET", "/Third/Tools/checkSign", VECTOR_1)
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "higress"
    assert body["headers"]["X-Credential-Identifier"] == "app-hmac"

    pinned_clock(1646646682.418)
    status, body = await send(http, gw.url, "POST", "/Third/User/getNyAccessToken", VECTOR_3,
                              VECTOR_3_BODY.encode())
    assert status == 200
    assert body["body"] == VECTOR_3_BODY and body["headers"]["X-Mse-Consumer"] == "higress"

    # Vector 2 carries no time at all: Higress takes it, Bastion cannot bound
    # its replay window, so it does not.
    status, _ = await send(http, gw.url, "GET", "/Third/Tools/checkSign", VECTOR_2)
    assert status == 401
    assert await access_log.last_reason(3) == "a signed Date or X-Ca-Timestamp is required"

    pinned_clock(1729531878)
    status, body = await send(http, gw.url, "GET", "/get",
                              {"Date": APISIX_DATE, "Authorization": APISIX_AUTH})
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "john"


# --------------------------------------------------------------------------
# End to end


async def test_x_ca_request_reaches_upstream_with_identity(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC)
    target = "/api/items?z=last&a=first&empty=&flag&a=shadowed&sp=a%20b+c"
    headers = ca_sign("alice", ALICE_SECRET, "GET", target, {**JSON, "X-Custom": "v"})
    status, body = await send(http, gw.url, "GET", target, headers)
    assert status == 200
    seen = body["headers"]
    assert seen["X-Consumer-Username"] == "alice" and seen["X-Mse-Consumer"] == "alice"
    assert seen["X-Credential-Identifier"] == "alice-hmac"
    assert seen["X-Consumer-Groups"] == "partners"
    assert body["query"] == "z=last&a=first&empty=&flag&a=shadowed&sp=a%20b+c"
    # Without hide_credentials the signature goes upstream as sent.
    assert seen["X-Ca-Signature"] == headers["X-Ca-Signature"]

    # Seconds instead of milliseconds, and a signed JSON body with Content-MD5.
    payload = b'{"amount": 12}'
    headers = ca_sign("bob", BOB_SECRET, "POST", "/pay",
                      {**JSON, "Content-Type": "application/json",
                       "Content-MD5": content_md5(payload)},
                      timestamp=str(int(time.time())))
    status, body = await send(http, gw.url, "POST", "/pay", headers, payload)
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "bob" and body["body"] == '{"amount": 12}'


async def test_x_ca_form_fields_are_signed(auth_gateway: AuthGateway,
                                           http: aiohttp.ClientSession, access_log: Log) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC, access_log=access_log.config())
    form = {**JSON, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    body = b"amount=10&to=carol&note=hi+there"
    headers = ca_sign("alice", ALICE_SECRET, "POST", "/transfer?v=1", form, body)
    status, seen = await send(http, gw.url, "POST", "/transfer?v=1", headers, body)
    assert status == 200 and seen["body"] == body.decode()

    headers = ca_sign("alice", ALICE_SECRET, "POST", "/transfer?v=1", form, body)
    status, _ = await send(http, gw.url, "POST", "/transfer?v=1", headers,
                           b"amount=10000&to=carol&note=hi+there")
    assert status == 401
    assert await access_log.last_reason(2) == "signature does not match"


async def test_signature_scheme_reaches_upstream_with_identity(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {**HMAC, "hmac-auth": {"validate_request_body": True}})
    payload = b'{"name": "world"}'
    headers = signature_sign("bob", BOB_SECRET, "POST", "/things?id=7",
                             {"Content-Type": "application/json",
                              "Digest": body_digest(payload), "X-Custom-A": "x"},
                             signed=("@request-target", "date", "digest", "x-custom-a"))
    status, body = await send(http, gw.url, "POST", "/things?id=7", headers, payload)
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "bob"
    assert body["headers"]["X-Credential-Identifier"] == "bob-hmac"
    assert body["headers"]["Authorization"] == headers["Authorization"]

    headers = signature_sign("alice", ALICE_SECRET, "GET", "/plain", {})
    status, body = await send(http, gw.url, "GET", "/plain", headers)
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "alice"


async def test_wrong_secret_and_unknown_key_get_401_with_challenge(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession, access_log: Log) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC, access_log=access_log.config())
    cases = [
        ca_sign("alice", BOB_SECRET, "GET", "/x", JSON),
        signature_sign("alice", BOB_SECRET, "GET", "/x", {}),
        ca_sign("mallory", ALICE_SECRET, "GET", "/x", JSON),
        signature_sign("mallory", ALICE_SECRET, "GET", "/x", {}),
    ]
    for headers in cases:
        async with http.get(gw.url + "/x", headers=headers) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"] == 'hmac realm="bastion"'
            assert (await resp.json())["error"] == "invalid credentials"
    reasons = [await access_log.last_reason(i) for i in range(1, 5)]
    assert reasons == ["signature does not match"] * 2 + ["unknown key"] * 2
    # No request at all: the challenge, not a crash.
    async with http.get(gw.url + "/x") as resp:
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("hmac ")
    # Reasons never carry secrets or signatures.
    text = access_log.path.read_text()
    assert ALICE_SECRET not in text and BOB_SECRET not in text
    signatures = [h.get("X-Ca-Signature") or parse_signature_header(h["Authorization"]).signature
                  for h in cases]
    assert all(sig not in text for sig in signatures)


@pytest.mark.parametrize(("signed_target", "sent_target"), [
    ("/orders/1", "/orders/2"),
    ("/orders?id=1", "/orders?id=2"),
    ("/orders?id=1", "/orders?id=1&admin=1"),
    ("/orders", "/orders?debug=1"),
])
async def test_tampered_target_is_refused(auth_gateway: AuthGateway,
                                          http: aiohttp.ClientSession,
                                          signed_target: str, sent_target: str) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC)
    for headers in (ca_sign("alice", ALICE_SECRET, "GET", signed_target, JSON),
                    signature_sign("alice", ALICE_SECRET, "GET", signed_target, {})):
        status, _ = await send(http, gw.url, "GET", sent_target, headers)
        assert status == 401
        # The untouched request still passes: it was the tampering.
        status, _ = await send(http, gw.url, "GET", signed_target, headers)
        assert status == 200


async def test_tampered_body_is_refused(auth_gateway: AuthGateway, http: aiohttp.ClientSession,
                                        access_log: Log) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC, access_log=access_log.config())
    payload, forged = b'{"amount": 1}', b'{"amount": 1000}'
    ca = ca_sign("alice", ALICE_SECRET, "POST", "/pay",
                 {**JSON, "Content-Type": "application/json",
                  "Content-MD5": content_md5(payload)})
    status, _ = await send(http, gw.url, "POST", "/pay", ca, forged)
    assert status == 401
    assert await access_log.last_reason(1) == "Content-MD5 does not match the body"

    sig = signature_sign("alice", ALICE_SECRET, "POST", "/pay",
                         {"Content-Type": "application/json", "Digest": body_digest(payload)},
                         signed=("@request-target", "date", "digest"))
    status, _ = await send(http, gw.url, "POST", "/pay", sig, forged)
    assert status == 401
    assert await access_log.last_reason(2) == "Digest does not match the body"


async def test_validate_request_body_requires_a_signed_digest(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession, access_log: Log) -> None:
    gw = await auth_gateway(CONSUMERS, {**HMAC, "hmac-auth": {"validate_request_body": True}},
                            access_log=access_log.config())
    payload = b'{"amount": 1}'
    json_body = {"Content-Type": "application/json"}
    attempts = [
        ca_sign("alice", ALICE_SECRET, "POST", "/pay", {**JSON, **json_body}),
        signature_sign("alice", ALICE_SECRET, "POST", "/pay", json_body),
        # A Digest anyone could recompute for another body: it must be signed.
        signature_sign("alice", ALICE_SECRET, "POST", "/pay",
                       {**json_body, "Digest": body_digest(payload)}),
    ]
    for headers in attempts:
        status, _ = await send(http, gw.url, "POST", "/pay", headers, payload)
        assert status == 401
    assert [await access_log.last_reason(i) for i in (1, 2, 3)] == [
        "Content-MD5 is required for a request body",
        "a Digest header is required for a request body",
        "the signature must cover digest",
    ]
    # Without the option, an unsigned body passes (the signature covers the rest).
    gw = await auth_gateway(CONSUMERS, HMAC)
    status, _ = await send(http, gw.url, "POST", "/pay", attempts[0], payload)
    assert status == 200


async def test_body_past_body_limit_is_413(auth_gateway: AuthGateway,
                                           http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {**HMAC, "hmac-auth": {"body_limit": 64}})
    payload = b"x" * 1000
    headers = ca_sign("alice", ALICE_SECRET, "POST", "/up",
                      {**JSON, "Content-Type": "text/plain", "Content-MD5": content_md5(payload)})
    async with http.post(gw.url + "/up", headers=headers, data=payload) as resp:
        assert resp.status == 413


async def test_clock_skew_and_unsigned_times_are_refused(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession, access_log: Log) -> None:
    gw = await auth_gateway(CONSUMERS, {**HMAC, "hmac-auth": {"clock_skew": 60}},
                            access_log=access_log.config())
    old_ms = str(int((time.time() - 120) * 1000))
    future_s = str(int(time.time() + 120))
    attempts = [
        ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON, timestamp=old_ms),
        ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON, timestamp=future_s),
        ca_sign("alice", ALICE_SECRET, "GET", "/x",
                {**JSON, "Date": formatdate(time.time() - 120, usegmt=True)}),
        signature_sign("alice", ALICE_SECRET, "GET", "/x", {},
                       date=formatdate(time.time() - 120, usegmt=True)),
        signature_sign("alice", ALICE_SECRET, "GET", "/x", {}, signed=("@request-target",)),
    ]
    for headers in attempts:
        status, _ = await send(http, gw.url, "GET", "/x", headers)
        assert status == 401
    skew = "request time is outside the allowed clock skew"
    assert [await access_log.last_reason(i) for i in range(1, 6)] == [
        skew, skew, skew, skew, "the signature must cover date"]

    # An X-Ca-Timestamp that is not among the signed headers could be moved
    # forward at will: it does not count.
    headers = ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON,
                      listed=("x-ca-key", "x-ca-nonce"))
    status, _ = await send(http, gw.url, "GET", "/x", headers)
    assert status == 401
    assert await access_log.last_reason(6) == "X-Ca-Timestamp is not among the signed headers"

    # Within the window in both directions.
    for offset in (-50, 50):
        ts = str(int((time.time() + offset) * 1000))
        status, _ = await send(http, gw.url, "GET", "/x",
                               ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON, timestamp=ts))
        assert status == 200


async def test_sha1_and_sha256_and_the_algorithm_allow_list(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession, access_log: Log) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC, access_log=access_log.config())
    ok = [
        ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON, algorithm="HmacSHA1"),
        ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON, algorithm="HmacSHA256"),
        signature_sign("alice", ALICE_SECRET, "GET", "/x", {}, algorithm="hmac-sha1"),
        signature_sign("alice", ALICE_SECRET, "GET", "/x", {}, algorithm="hmac-sha512"),
    ]
    for headers in ok:
        status, _ = await send(http, gw.url, "GET", "/x", headers)
        assert status == 200
    # A SHA-1 MAC declared as SHA-256 does not verify.
    lying = ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON, algorithm="HmacSHA1")
    lying["X-Ca-Signature-Method"] = "HmacSHA256"
    status, _ = await send(http, gw.url, "GET", "/x", lying)
    assert status == 401

    gw = await auth_gateway(CONSUMERS, {**HMAC, "hmac-auth": {"algorithms": ["hmac-sha256"]}},
                            access_log=access_log.config())
    refused = [
        ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON, algorithm="HmacSHA1"),
        signature_sign("alice", ALICE_SECRET, "GET", "/x", {}, algorithm="hmac-sha512"),
    ]
    for headers in refused:
        status, _ = await send(http, gw.url, "GET", "/x", headers)
        assert status == 401
    assert [await access_log.last_reason(i) for i in (6, 7)] == [
        "algorithm hmac-sha1 is not allowed", "algorithm hmac-sha512 is not allowed"]
    status, _ = await send(http, gw.url, "GET", "/x",
                           ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON))
    assert status == 200


async def test_replayed_requests_are_refused(auth_gateway: AuthGateway,
                                             http: aiohttp.ClientSession,
                                             access_log: Log) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC, access_log=access_log.config())
    ca = ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON)
    sig = signature_sign("alice", ALICE_SECRET, "GET", "/x", {})
    assert (await send(http, gw.url, "GET", "/x", ca))[0] == 200
    assert (await send(http, gw.url, "GET", "/x", ca))[0] == 401
    assert (await send(http, gw.url, "GET", "/x", sig))[0] == 200
    assert (await send(http, gw.url, "GET", "/x", sig))[0] == 401
    assert await access_log.last_reason(2) == "replayed request"
    assert await access_log.last_reason(4) == "replayed request"

    # Another base64 spelling of the same MAC (other unused bits) is the same request.
    sig2 = signature_sign("bob", BOB_SECRET, "GET", "/y", {})
    assert (await send(http, gw.url, "GET", "/y", sig2))[0] == 200
    sig2["Authorization"] = respell(sig2["Authorization"])
    assert (await send(http, gw.url, "GET", "/y", sig2))[0] == 401

    # The nonce is remembered per credential: Bob may use one Alice used.
    nonce = str(uuid.uuid4())
    assert (await send(http, gw.url, "GET", "/x",
                       ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON, nonce=nonce)))[0] == 200
    assert (await send(http, gw.url, "GET", "/x",
                       ca_sign("bob", BOB_SECRET, "GET", "/x", JSON, nonce=nonce)))[0] == 200
    # And a signed nonce is the request's identity: a fresh signature with it is a replay.
    again = ca_sign("alice", ALICE_SECRET, "GET", "/other", JSON, nonce=nonce)
    assert (await send(http, gw.url, "GET", "/other", again))[0] == 401


async def test_a_failing_replay_store_fails_closed_unless_told_otherwise(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession, access_log: Log) -> None:
    dead = {"type": "redis", "url": f"redis://127.0.0.1:{free_tcp_port()}/0", "timeout_ms": 100}
    gw = await auth_gateway(CONSUMERS, HMAC, store=dead, access_log=access_log.config())
    status, _ = await send(http, gw.url, "GET", "/x",
                           ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON))
    assert status == 401
    assert await access_log.last_reason(1) == "replay cache unavailable"
    gw = await auth_gateway(CONSUMERS, {**HMAC, "hmac-auth": {"fail_open": True}}, store=dead)
    status, body = await send(http, gw.url, "GET", "/x",
                              ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON))
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "alice"


def _malformed() -> Iterator[tuple[str, dict[str, str] | CIMultiDict[str]]]:
    good = ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON)
    yield "bad base64 signature", {**good, "X-Ca-Signature": "!!!not base64!!!"}
    yield "key without signature", {k: v for k, v in good.items() if k != "X-Ca-Signature"}
    yield "signature without key", {k: v for k, v in good.items() if k != "X-Ca-Key"}
    yield "empty key", {**good, "X-Ca-Key": ""}
    yield "garbage timestamp", {**good, "X-Ca-Timestamp": "soon"}
    yield "huge timestamp", {**good, "X-Ca-Timestamp": "9" * 40}
    yield "garbage date", {**good, "Date": "yesterday-ish"}
    yield "impossible date", {**good, "Date": "Mon, 99 Oct 2024 17:31:18 GMT"}
    yield "year out of range", {**good, "Date": "Mon, 21 Oct 99999 17:31:18 GMT"}
    yield "unknown method", {**good, "X-Ca-Signature-Method": "HmacMD5"}
    yield "repeated signature", CIMultiDict([*good.items(), ("X-Ca-Signature", "x")])
    yield "bad content-md5", {**good, "Content-MD5": "%%%"}
    yield "signed headers garbage", {**good, "X-Ca-Signature-Headers": ",,,\t,"}
    sig = signature_sign("alice", ALICE_SECRET, "GET", "/x", {})
    auth = sig["Authorization"]
    yield "Signature with nothing", {**sig, "Authorization": "Signature "}
    yield "Signature missing fields", {**sig, "Authorization": 'Signature keyId="alice"'}
    yield "Signature trailing junk", {**sig, "Authorization": auth + ",junk"}
    yield "Signature unquoted", {**sig, "Authorization": auth.replace('"', "")}
    yield "Signature unknown algorithm", {**sig, "Authorization": auth.replace("hmac-sha256",
                                                                               "hmac-md5")}
    yield "Signature no date", {k: v for k, v in sig.items() if k != "Date"}
    yield "Signature garbage date", {**sig, "Date": "not a date"}
    yield "Signature bad digest", {**sig, "Digest": "SHA-256=###"}
    yield "Signature unknown digest", {**sig, "Digest": "MD5=abc"}
    yield "two Authorization headers", CIMultiDict([*sig.items(), ("Authorization", "Basic x")])
    yield "both schemes", {**good, "Authorization": auth, "Date": sig["Date"]}


@pytest.mark.parametrize(("case", "headers"), list(_malformed()),
                         ids=[c for c, _ in _malformed()])
async def test_malformed_credentials_are_401_never_500(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession, case: str,
        headers: dict[str, str] | CIMultiDict[str]) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC)
    async with http.get(gw.url + "/x", headers=headers) as resp:
        assert resp.status == 401, case
        assert (await resp.json())["error"] == "invalid credentials"


async def test_non_utf8_header_bytes_are_401(auth_gateway: AuthGateway) -> None:
    gw = await auth_gateway(CONSUMERS, HMAC)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(b"GET /x HTTP/1.1\r\nHost: t\r\nX-Ca-Key: alice\r\n"
                 b"X-Ca-Timestamp: " + str(int(time.time() * 1000)).encode() + b"\r\n"
                 b"X-Ca-Signature-Headers: x-ca-timestamp\r\n"
                 b"X-Ca-Signature: \xff\xfe\xc3(\r\nConnection: close\r\n\r\n")
    await writer.drain()
    response = await reader.read()
    writer.close()
    assert response.startswith(b"HTTP/1.1 401 "), response[:200]


async def test_hide_credentials_removes_signature_headers(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {**HMAC, "hide_credentials": True})
    headers = ca_sign("alice", ALICE_SECRET, "GET", "/x", {**JSON, "X-Keep": "1"})
    status, body = await send(http, gw.url, "GET", "/x", headers)
    assert status == 200
    seen = {k.lower() for k in body["headers"]}
    assert not seen & {"x-ca-key", "x-ca-signature", "x-ca-signature-method",
                       "x-ca-signature-headers"}
    assert {"x-keep", "x-ca-timestamp", "x-ca-nonce"} <= seen
    assert body["headers"]["X-Consumer-Username"] == "alice"

    headers = signature_sign("bob", BOB_SECRET, "GET", "/x", {"X-Keep": "1"})
    status, body = await send(http, gw.url, "GET", "/x", headers)
    assert status == 200
    assert "Authorization" not in body["headers"] and body["headers"]["X-Keep"] == "1"
    assert body["headers"]["X-Consumer-Username"] == "bob"


async def test_schemes_option_limits_what_counts(auth_gateway: AuthGateway,
                                                 http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {**HMAC, "hmac-auth": {"schemes": ["signature"]}})
    async with http.get(gw.url + "/x",
                        headers=ca_sign("alice", ALICE_SECRET, "GET", "/x", JSON)) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "authentication required"
    status, _ = await send(http, gw.url, "GET", "/x",
                           signature_sign("alice", ALICE_SECRET, "GET", "/x", {}))
    assert status == 200


# --------------------------------------------------------------------------
# Config


def _load(consumers: list[dict[str, Any]], auth: dict[str, Any]) -> None:
    parse_config(yaml.safe_dump(auth_config("http://127.0.0.1:9", consumers, auth)))


def _cred(cred_id: str, key_id: str, secret: str = ALICE_SECRET) -> dict[str, Any]:
    return {"id": cred_id, "type": "hmac-auth", "key_id": key_id, "secret": secret}


@pytest.mark.parametrize(("consumers", "auth", "message"), [
    ([{"name": "a", "credentials": [_cred("k1", "same")]},
      {"name": "b", "credentials": [_cred("k2", "same")]}], HMAC,
     "consumers[1].credentials[0].key_id: key id 'same' is already credential 'k1'"),
    ([{"name": "a", "credentials": [_cred("k1", "a", "short")]}], HMAC,
     "consumers[0].credentials[0].secret: an HMAC secret needs at least 8"),
    ([{"name": "a", "credentials": [_cred("k1", 'has "quote"')]}], HMAC,
     "printable ASCII without spaces"),
    (CONSUMERS, {**HMAC, "hmac-auth": {"clock_skew": 0}}, "hmac-auth.clock_skew"),
    (CONSUMERS, {**HMAC, "hmac-auth": {"algorithms": ["hmac-md5"]}}, "hmac-auth.algorithms"),
    (CONSUMERS, {**HMAC, "hmac-auth": {"schemes": []}}, "hmac-auth.schemes"),
    (CONSUMERS, {**HMAC, "hmac-auth": {"body_limit": 0}}, "hmac-auth.body_limit"),
    (CONSUMERS, {**HMAC, "hmac-auth": {"realm": 'a"b'}}, "the realm is a quoted string"),
])
def test_bad_config_is_rejected_with_its_path(consumers: list[dict[str, Any]],
                                              auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(consumers, auth)
    assert message in str(info.value)


# --------------------------------------------------------------------------
# Across processes


async def _fresh(url: str, headers: Mapping[str, str]) -> int:
    """One GET on its own new connection, so SO_REUSEPORT picks a worker anew."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s, \
            s.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        await resp.read()
        return resp.status


async def test_replay_is_refused_across_workers_sharing_redis(
        gateway_process: Callable[..., GatewayProcess], upstream: Callable[..., Any],
        redis_url: str, redis_prefix: str) -> None:
    secret = "process-secret-0123456789"

    def config(store: dict[str, Any]) -> dict[str, Any]:
        return {
            "access_log": {"enabled": False},
            "services": {"up": service(up)},
            "consumers": [{"name": "alice", "credentials": [
                {"id": "alice-hmac", "type": "hmac-auth", "key_id": "alice",
                 "secret": "${HMAC_TEST_SECRET}"}]}],
            "routes": [{"name": "api", "match": {"path_prefix": "/"}, "service": "up",
                        "plugins": {"auth": HMAC}}],
            "store": store,
        }

    up = await upstream()
    env = {"HMAC_TEST_SECRET": secret}
    # One at a time: the fixture names each process's directory by its count.
    shared = await asyncio.to_thread(gateway_process, config(
        {"type": "redis", "url": redis_url, "prefix": redis_prefix}), workers=2, env=env)
    local = await asyncio.to_thread(gateway_process, config({"type": "memory"}),
                                    workers=2, env=env)

    async def statuses(gw: GatewayProcess) -> list[int]:
        headers = ca_sign("alice", secret, "GET", "/x", JSON)
        return [await _fresh(gw.url + "/x", headers) for _ in range(24)]

    # Control: with a store per worker, each worker takes the request once,
    # so these connections did reach both workers.
    assert (await statuses(local)).count(200) == 2
    # Sharing Redis, the request passes once whichever worker sees it.
    results = await statuses(shared)
    assert results.count(200) == 1 and results.count(401) == len(results) - 1
