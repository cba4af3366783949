"""How authenticators combine on one route: any_of, all_of, anonymous, global + route config."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp

from auth.basic_auth import hash_password
from tests.auth.conftest import AuthGateway
from tests.conftest import InProcessGateway, service

ERIN_KEY = "erin-api-key-000001"
FRANK_KEY = "frank-api-key-00002"
ERIN_HASH = hash_password("erin-pw")

CONSUMERS: list[dict[str, Any]] = [
    {"name": "erin", "credentials": [
        {"id": "erin-key", "type": "key-auth", "key": ERIN_KEY},
        {"id": "erin-basic", "type": "basic-auth", "username": "erin",
         "password_hash": ERIN_HASH}]},
    {"name": "frank", "credentials": [{"id": "frank-key", "type": "key-auth", "key": FRANK_KEY}]},
    {"name": "anon"},
]
ERIN_BASIC = "Basic " + base64.b64encode(b"erin:erin-pw").decode()


async def status_and_user(http: aiohttp.ClientSession, gw: InProcessGateway,
                          headers: dict[str, str], path: str = "/"
                          ) -> tuple[int, str | None]:
    async with http.get(gw.url + path, headers=headers) as resp:
        body = await resp.json()
    return resp.status, body.get("headers", {}).get("X-Consumer-Username")


async def test_any_of_accepts_either_credential(auth_gateway: AuthGateway,
                                                http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth", "basic-auth"]})
    assert await status_and_user(http, gw, {"X-API-Key": FRANK_KEY}) == (200, "frank")
    assert await status_and_user(http, gw, {"Authorization": ERIN_BASIC}) == (200, "erin")
    # One good credential is enough even beside a bad one of another type.
    assert await status_and_user(http, gw, {"X-API-Key": "bad-key-xxxxxxxx",
                                            "Authorization": ERIN_BASIC}) == (200, "erin")
    async with http.get(gw.url + "/") as resp:
        assert resp.status == 401
        # One challenge per authenticator the route accepts.
        challenges = resp.headers.getall("WWW-Authenticate")
        assert len(challenges) == 2
        assert challenges[0].startswith("Key ") and challenges[1].startswith("Basic ")


async def test_all_of_needs_every_credential_of_one_consumer(auth_gateway: AuthGateway,
                                                             http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"all_of": ["key-auth", "basic-auth"]})
    assert await status_and_user(http, gw, {"X-API-Key": ERIN_KEY,
                                            "Authorization": ERIN_BASIC}) == (200, "erin")
    assert (await status_and_user(http, gw, {"X-API-Key": ERIN_KEY}))[0] == 401
    assert (await status_and_user(http, gw, {"Authorization": ERIN_BASIC}))[0] == 401
    # Two valid credentials that name different consumers are not one identity.
    assert (await status_and_user(http, gw, {"X-API-Key": FRANK_KEY,
                                             "Authorization": ERIN_BASIC}))[0] == 401
    async with http.get(gw.url + "/", headers={"X-API-Key": ERIN_KEY}) as resp:
        assert (await resp.json())["error"] == "authentication required"


async def test_anonymous_with_any_of(auth_gateway: AuthGateway,
                                     http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth", "basic-auth"],
                                        "anonymous": "anon"})
    assert await status_and_user(http, gw, {}) == (200, "anon")
    assert await status_and_user(http, gw, {"X-API-Key": ERIN_KEY}) == (200, "erin")
    assert (await status_and_user(http, gw, {"X-API-Key": "bad-key-xxxxxxxx"}))[0] == 401


async def test_route_refines_global_auth(gateway: Any, upstream: Any,
                                         http: aiohttp.ClientSession) -> None:
    url = await upstream()
    gw = await gateway({
        "access_log": {"enabled": False},
        "services": {"up": service(url)},
        "consumers": CONSUMERS,
        "plugins": {"auth": {"any_of": ["key-auth"]}},
        "routes": [
            {"name": "admin", "match": {"path_prefix": "/admin/"}, "service": "up",
             "plugins": {"auth": {"allow": ["erin"]}}},
            {"name": "public", "match": {"path_prefix": "/public/"}, "service": "up",
             "plugins": {"auth": False}},
            {"name": "rest", "match": {"path_prefix": "/"}, "service": "up"},
        ],
    })
    assert await status_and_user(http, gw, {"X-API-Key": FRANK_KEY}, "/x") == (200, "frank")
    assert (await status_and_user(http, gw, {"X-API-Key": FRANK_KEY}, "/admin/x"))[0] == 403
    assert await status_and_user(http, gw, {"X-API-Key": ERIN_KEY}, "/admin/x") == (200, "erin")
    assert await status_and_user(http, gw, {}, "/public/x") == (200, None)
    assert (await status_and_user(http, gw, {}, "/x"))[0] == 401


async def test_bodies_stream_past_routes_whose_authenticators_ignore_them(
        auth_gateway: AuthGateway) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth", "basic-auth"]})
    route = gw.gateway.runtime.table.routes[-1]  # type: ignore[union-attr]
    assert route.name == "protected"
    assert not route.chain.reads_request_body
