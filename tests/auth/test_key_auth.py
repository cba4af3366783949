"""key-auth through the auth plugin, over real sockets to the echo upstream."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import yaml
from multidict import CIMultiDict
from yarl import URL

from proxy.config import ConfigError, parse_config
from tests.auth.conftest import AuthGateway, auth_config

ALICE_KEY = "alice-key-0123456789"
BOB_KEY = "bob-key-9876543210"

CONSUMERS: list[dict[str, Any]] = [
    {"name": "alice", "groups": ["partners"],
     "credentials": [{"id": "alice-k1", "type": "key-auth", "key": ALICE_KEY}]},
    {"name": "bob", "credentials": [{"id": "bob-k1", "type": "key-auth", "key": BOB_KEY}]},
    {"name": "guest"},
]


async def get(http: aiohttp.ClientSession, url: str | URL, **kwargs: Any
              ) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.get(url, **kwargs) as resp:
        return resp.status, await resp.json(), resp


async def test_valid_key_reaches_upstream_with_identity(auth_gateway: AuthGateway,
                                                        http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"]})
    status, body, _ = await get(http, gw.url + "/x", headers={"X-API-Key": ALICE_KEY})
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "alice"
    assert body["headers"]["X-Mse-Consumer"] == "alice"
    assert body["headers"]["X-Credential-Identifier"] == "alice-k1"
    assert body["headers"]["X-Consumer-Groups"] == "partners"
    # Without hide_credentials the key goes upstream as sent.
    assert body["headers"]["X-API-Key"] == ALICE_KEY


async def test_missing_and_wrong_keys_get_401_with_challenge(auth_gateway: AuthGateway,
                                                             http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"]})
    status, body, resp = await get(http, gw.url + "/x")
    assert status == 401
    assert body["error"] == "authentication required" and body["request_id"]
    assert resp.headers["WWW-Authenticate"].startswith("Key ")
    status, body, _ = await get(http, gw.url + "/x", headers={"X-API-Key": "not-a-key-at-all"})
    assert (status, body["error"]) == (401, "invalid credentials")
    # A prefix of a real key is not a key.
    status, _, _ = await get(http, gw.url + "/x", headers={"X-API-Key": ALICE_KEY[:-1]})
    assert status == 401


async def test_more_than_one_key_is_refused(auth_gateway: AuthGateway,
                                            http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"],
                                        "key-auth": {"headers": ["X-API-Key"],
                                                     "query": ["apikey"]}})
    status, _, _ = await get(http, gw.url + "/x?apikey=" + BOB_KEY)
    assert status == 200
    # Two different keys, or the same key twice: which one counts would be ambiguous.
    status, _, _ = await get(http, gw.url + "/x?apikey=" + BOB_KEY,
                             headers={"X-API-Key": ALICE_KEY})
    assert status == 401
    status, _, _ = await get(http, gw.url + f"/x?apikey={BOB_KEY}&apikey={BOB_KEY}")
    assert status == 401
    headers = CIMultiDict([("X-API-Key", ALICE_KEY), ("X-API-Key", ALICE_KEY)])
    status, _, _ = await get(http, gw.url + "/x", headers=headers)
    assert status == 401


async def test_hide_credentials_strips_header_and_query(auth_gateway: AuthGateway,
                                                        http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"], "hide_credentials": True,
                                        "key-auth": {"headers": ["X-API-Key"],
                                                     "query": ["apikey"]}})
    url = URL(gw.url + f"/x?a=1&apikey={BOB_KEY}&b=%2F+x", encoded=True)
    status, body, _ = await get(http, url)
    assert status == 200
    assert body["query"] == "a=1&b=%2F+x"
    assert body["headers"]["X-Consumer-Username"] == "bob"
    status, body, _ = await get(http, gw.url + "/x", headers={"X-API-Key": ALICE_KEY})
    assert status == 200 and "X-API-Key" not in body["headers"]


async def test_allow_lists_give_403(auth_gateway: AuthGateway,
                                    http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"], "allow": ["bob"]})
    status, body, _ = await get(http, gw.url + "/x", headers={"X-API-Key": ALICE_KEY})
    assert (status, body["error"]) == (403, "consumer not allowed")
    status, _, _ = await get(http, gw.url + "/x", headers={"X-API-Key": BOB_KEY})
    assert status == 200
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"], "allow_groups": ["partners"]})
    status, _, _ = await get(http, gw.url + "/x", headers={"X-API-Key": ALICE_KEY})
    assert status == 200
    status, _, _ = await get(http, gw.url + "/x", headers={"X-API-Key": BOB_KEY})
    assert status == 403


async def test_anonymous_only_when_no_credential(auth_gateway: AuthGateway,
                                                 http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"], "anonymous": "guest"})
    status, body, _ = await get(http, gw.url + "/x")
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "guest"
    assert body["headers"]["X-Anonymous-Consumer"] == "true"
    assert "X-Credential-Identifier" not in body["headers"]
    # A wrong key is not quietly downgraded to the anonymous consumer.
    status, _, _ = await get(http, gw.url + "/x", headers={"X-API-Key": "wrong-key-123456"})
    assert status == 401
    # The anonymous consumer is subject to the allow list like anyone.
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"], "anonymous": "guest",
                                        "allow": ["alice"]})
    status, _, _ = await get(http, gw.url + "/x")
    assert status == 403


async def test_identity_headers_from_clients_never_reach_upstream(
        auth_gateway: AuthGateway, http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"]})
    forged = {"X-Consumer-Username": "admin", "X-Mse-Consumer": "admin",
              "X-Credential-Identifier": "root", "X-Anonymous-Consumer": "false",
              "X-Consumer-Groups": "admins"}
    status, body, _ = await get(http, gw.url + "/x", headers={**forged, "X-API-Key": BOB_KEY})
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "bob"
    assert body["headers"]["X-Mse-Consumer"] == "bob"
    assert body["headers"]["X-Credential-Identifier"] == "bob-k1"
    assert "X-Consumer-Groups" not in body["headers"]
    assert "X-Anonymous-Consumer" not in body["headers"]
    # On a route without authentication too.
    status, body, _ = await get(http, gw.url + "/open/x", headers=forged)
    assert status == 200
    assert not any(h.lower().startswith(("x-consumer", "x-mse", "x-credential", "x-anonymous"))
                   for h in body["headers"])


async def test_outcomes_are_counted_in_metrics(auth_gateway: AuthGateway,
                                               http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["key-auth"]})
    await get(http, gw.url + "/x", headers={"X-API-Key": ALICE_KEY})
    await get(http, gw.url + "/x", headers={"X-API-Key": "wrong-key-123456"})
    text = gw.gateway.metrics.exposition().decode()
    assert 'bastion_auth_outcomes_total{authenticator="key-auth",outcome="ok"}' in text
    assert 'bastion_auth_outcomes_total{authenticator="key-auth",outcome="invalid"}' in text
    assert 'bastion_auth_decisions_total{verdict="unauthenticated"}' in text
    assert ALICE_KEY not in text


def _load(consumers: list[dict[str, Any]], auth: dict[str, Any]) -> None:
    parse_config(yaml.safe_dump(auth_config("http://127.0.0.1:9", consumers, auth)))


@pytest.mark.parametrize(("consumers", "auth", "message"), [
    ([{"name": "a", "credentials": [{"id": "k", "type": "key-auth", "key": "short"}]}],
     {"any_of": ["key-auth"]}, "consumers[0].credentials[0].key: an API key needs at least 8"),
    ([{"name": "a", "credentials": [{"id": "k", "type": "key-auth", "key": ALICE_KEY}]},
      {"name": "b", "credentials": [{"id": "k2", "type": "key-auth", "key": ALICE_KEY}]}],
     {"any_of": ["key-auth"]}, "already credential 'k'"),
    ([{"name": "a", "credentials": [{"id": "k", "type": "key-auth", "key": ALICE_KEY}]},
      {"name": "b", "credentials": [{"id": "k", "type": "key-auth", "key": BOB_KEY}]}],
     {"any_of": ["key-auth"]}, "duplicate credential id"),
    ([{"name": "a", "credentials": [{"id": "k", "type": "magic", "key": ALICE_KEY}]}],
     {"any_of": ["key-auth"]}, "unknown credential type"),
    ([{"name": "a", "credentials": [{"type": "key-auth", "key": ALICE_KEY}]}],
     {"any_of": ["key-auth"]}, "needs an id"),
    (CONSUMERS, {"any_of": ["key-auth"], "anonymous": "nobody"}, "anonymous names no consumer"),
    (CONSUMERS, {"allow": ["alice"]}, "exactly one of any_of or all_of"),
    (CONSUMERS, {"any_of": ["key-auth"], "all_of": ["key-auth"]}, "exactly one of"),
    (CONSUMERS, {"any_of": ["nope"]}, "unknown authenticator 'nope'"),
    (CONSUMERS, {"any_of": ["key-auth"], "basic-auth": {"realm": "x"}},
     "options for basic-auth are given"),
    (CONSUMERS, {"any_of": ["key-auth"], "key-auth": {"header": ["X"]}},
     "routes[1].plugins.auth.key-auth.header"),
])
def test_bad_config_is_rejected_with_its_path(consumers: list[dict[str, Any]],
                                              auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(consumers, auth)
    assert message in str(info.value)


def test_credentials_are_checked_even_when_no_route_authenticates() -> None:
    config = auth_config("http://127.0.0.1:9", [
        {"name": "a", "credentials": [{"id": "k", "type": "key-auth", "key": "x"}]}], {})
    del config["routes"][1]["plugins"]
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(config))
    assert "consumers[0].credentials[0].key: an API key needs at least 8" in str(info.value)
