"""The ``rate-limit`` plugin end to end, in-process: keys, headers, rejection, store failure.

Windows here are long (1h) unless a test is about time, so a burst of
requests never straddles a window edge: the counts are then exact.
Multi-process and Redis-kill behaviour is in ``test_ratelimit_processes.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from proxy.config import ConfigError, parse_config
from proxy.limits import ip_bucket
from tests.conftest import InProcessGateway, free_tcp_port, service, simple_config
from traffic.ratelimit import RateLimitConfig

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]
RlGateway = Callable[..., Awaitable[InProcessGateway]]

QUOTA_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def rule(name: str, by: Any, limit: int, window: Any = "1h", **extra: Any) -> dict[str, Any]:
    return {"name": name, "by": by, "limit": limit, "window": window, **extra}


def rl_config(upstream_url: str, plugin: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One catch-all route ``all`` with the rate-limit plugin on it."""
    config = simple_config(upstream_url, **extra)
    config["routes"][0]["plugins"] = {"rate-limit": plugin}
    return config


@pytest.fixture
async def upstream_hits() -> list[str]:
    return []


@pytest.fixture
async def rl_gateway(gateway: GatewayFactory, upstream: UpstreamFactory,
                     upstream_hits: list[str]) -> RlGateway:
    """``await rl_gateway(plugin_config, **top_level)``: an upstream that counts what it is sent."""

    async def handle(request: web.Request) -> web.Response:
        upstream_hits.append(request.path)
        return web.Response(text="ok", headers={"X-RateLimit-Limit": "upstream's own"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    url = await upstream(app)

    async def start(plugin: dict[str, Any], **extra: Any) -> InProcessGateway:
        return await gateway(rl_config(url, plugin, **extra))

    return start


async def send(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
               ) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with http.get(url, headers=headers) as resp:
        return resp.status, resp.headers, await resp.read()


async def statuses(http: aiohttp.ClientSession, url: str, n: int,
                   headers: dict[str, str] | None = None) -> list[int]:
    return [(await send(http, url, headers))[0] for _ in range(n)]


def sample(gw: InProcessGateway, name: str, **labels: str) -> float:
    value = gw.gateway.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# ---------------------------------------------------------------------------
# Config


def test_config_reference_example_loads() -> None:
    loaded = parse_config("""
services: {up: {endpoints: [{url: "http://127.0.0.1:9"}]}}
routes:
  - name: api
    service: up
    plugins:
      rate-limit:
        rules:
          - {name: per-ip, by: ip, limit: 100, window: 10s}
          - {name: per-key, by: {header: X-API-Key}, limit: 1000, window: 1m}
          - {name: per-consumer, by: consumer, limit: 10000, window: 1d, scope: global}
          - {name: per-session, by: {cookie: session}, limit: 50, window: 500ms}
          - {name: per-tenant, by: {query: tenant}, limit: 5, window: 2}
          - {name: per-path, by: path, limit: 7, window: 1h}
          - {name: whole-route, by: route, limit: 9, window: 1.5m, }
        rejection: {status: 503, message: slow down}
        fail_open: false
""")
    cfg = RateLimitConfig.model_validate(loaded.config.routes[0].plugins["rate-limit"])
    assert [(r.name, r.by.type, r.by.name, r.limit, r.window) for r in cfg.rules] == [
        ("per-ip", "ip", None, 100, 10.0),
        ("per-key", "header", "X-API-Key", 1000, 60.0),
        ("per-consumer", "consumer", None, 10000, 86400.0),
        ("per-session", "cookie", "session", 50, 0.5),
        ("per-tenant", "query", "tenant", 5, 2.0),
        ("per-path", "path", None, 7, 3600.0),
        ("whole-route", "route", None, 9, 90.0),
    ]
    assert cfg.rejection.status == 503 and not cfg.fail_open
    assert cfg.rules[0].ipv6_prefix == 64 and cfg.rules[2].scope == "global"


BAD_RULES: list[tuple[Any, str]] = [
    ([], "at least 1"),
    ([rule("a", "ip", 0)], "greater than or equal to 1"),
    ([rule("a", "ip", 5, window=0)], "greater than 0"),
    ([rule("a", "ip", 5, window="10 parsecs")], "not a duration"),
    ([rule("a", "ip", 5, window=True)], "not a boolean"),
    ([rule("a", "ip", 5), rule("a", "path", 5)], "two rules are named 'a'"),
    ([rule("a:b", "ip", 5)], "rule names"),
    ([rule("a", "header", 5)], "needs a name"),
    ([rule("a", {"header": "X Bad"}, 5)], "not a valid header name"),
    ([rule("a", {"header": "a", "query": "b"}, 5)], "a single {header|query|cookie: NAME}"),
    ([rule("a", "client", 5)], "unknown key 'client'"),
    ([rule("a", "consumer", 5, ipv6_prefix=48)], "applies to by: ip only"),
    ([rule("a", "ip", 5, ipv6_prefix=129)], "less than or equal to 128"),
]


@pytest.mark.parametrize(("rules", "message"), BAD_RULES)
def test_bad_rules_are_rejected_at_load(rules: Any, message: str) -> None:
    config = rl_config("http://127.0.0.1:9", {"rules": rules})
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(config))
    text = str(info.value)
    assert "routes[0].plugins.rate-limit.rules" in text
    assert message in text


@pytest.mark.parametrize(("ip", "v4", "v6", "bucket"), [
    ("203.0.113.7", 32, 64, "=203.0.113.7"),
    ("203.0.113.7", 24, 64, "=203.0.113.0/24"),
    ("2001:db8:1:2::1", 32, 64, "=2001:db8:1:2::/64"),
    ("2001:db8:1:2::1", 32, 128, "=2001:db8:1:2::1"),
    ("::ffff:203.0.113.7", 32, 64, "=203.0.113.7"),  # IPv4-mapped counts as IPv4
])
def test_ip_buckets(ip: str, v4: int, v6: int, bucket: str) -> None:
    assert ip_bucket(ip, v4, v6) == bucket


# ---------------------------------------------------------------------------
# The header and status contract


async def test_quota_headers_then_429_with_json_error_and_retry_after(
        rl_gateway: RlGateway, http: aiohttp.ClientSession, upstream_hits: list[str]) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 3)]})
    seen = []
    for _ in range(3):
        status, headers, _ = await send(http, gw.url + "/x")
        assert status == 200
        seen.append(headers["X-RateLimit-Remaining"])
        assert headers["X-RateLimit-Limit"] == "3"  # replaces the upstream's own
        # The window's end, or later once the quota is spent (when the next
        # request would be admitted: up to two windows with the sliding count).
        assert 1 <= int(headers["X-RateLimit-Reset"]) <= 2 * 3600
        assert "Retry-After" not in headers
    assert seen == ["2", "1", "0"]
    status, headers, body = await send(http, gw.url + "/x")
    assert status == 429
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "rate limit exceeded",
                                "request_id": headers["X-Request-Id"]}
    assert headers["X-RateLimit-Limit"] == "3"
    assert headers["X-RateLimit-Remaining"] == "0"
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 2 * 3600
    assert int(headers["X-RateLimit-Reset"]) >= retry_after
    assert upstream_hits == ["/x"] * 3  # the refused request never went upstream


async def test_custom_rejection_status_and_body(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("one", "ip", 1)],
                           "rejection": {"status": 503, "body": "<h1>busy</h1>",
                                         "content_type": "text/html"}})
    assert (await send(http, gw.url + "/"))[0] == 200
    status, headers, body = await send(http, gw.url + "/")
    assert (status, body, headers["Content-Type"]) == (503, b"<h1>busy</h1>", "text/html")
    assert int(headers["Retry-After"]) >= 1


async def test_custom_rejection_message(rl_gateway: RlGateway,
                                        http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("one", "ip", 1)],
                           "rejection": {"message": "quota used up"}})
    await send(http, gw.url + "/")
    status, _, body = await send(http, gw.url + "/")
    assert status == 429 and b'"error": "quota used up"' in body


async def test_quota_headers_can_be_hidden(rl_gateway: RlGateway,
                                           http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("one", "ip", 1)], "quota_headers": False})
    status, headers, _ = await send(http, gw.url + "/")
    assert status == 200
    assert headers["X-RateLimit-Limit"] == "upstream's own"  # left alone
    assert "X-RateLimit-Remaining" not in headers
    status, headers, _ = await send(http, gw.url + "/")
    assert status == 429
    assert not any(h in headers for h in QUOTA_HEADERS)
    assert int(headers["Retry-After"]) >= 1


async def test_retry_after_is_honest(rl_gateway: RlGateway,
                                     http: aiohttp.ClientSession) -> None:
    """Waiting Retry-After seconds is enough to be admitted again."""
    gw = await rl_gateway({"rules": [rule("fast", "ip", 1, window="300ms")]})
    assert (await send(http, gw.url + "/"))[0] == 200
    status, headers, _ = await send(http, gw.url + "/")
    assert status == 429
    retry_after = int(headers["Retry-After"])
    assert retry_after == 1  # at most two 300 ms windows, rounded up to whole seconds
    await asyncio.sleep(retry_after)
    assert (await send(http, gw.url + "/"))[0] == 200


# ---------------------------------------------------------------------------
# Keys


async def test_ip_from_an_untrusted_peer_ignores_x_forwarded_for(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 2)]})
    got = [(await send(http, gw.url + "/", {"X-Forwarded-For": f"198.51.100.{i}"}))[0]
           for i in range(4)]
    assert got == [200, 200, 429, 429]


async def test_ip_from_a_trusted_peer_is_the_walked_client(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 2)]},
                          trusted_proxies=["127.0.0.1/32"])
    a = {"X-Forwarded-For": "198.51.100.1"}
    assert await statuses(http, gw.url + "/", 2, a) == [200, 200]
    # A client-written leftmost entry does not change the bucket: the walk stops
    # at the first untrusted address from the right.
    spoofed = {"X-Forwarded-For": "203.0.113.99, 198.51.100.1"}
    assert await statuses(http, gw.url + "/", 1, spoofed) == [429]
    assert await statuses(http, gw.url + "/", 2, {"X-Forwarded-For": "198.51.100.2"}) == [
        200, 200]
    # The trusted peer itself (no XFF) is a client of its own.
    assert await statuses(http, gw.url + "/", 1) == [200]


@pytest.mark.parametrize(("prefix", "neighbour_shares"), [(None, True), (128, False)])
async def test_ipv6_clients_are_counted_per_64_by_default(
        rl_gateway: RlGateway, http: aiohttp.ClientSession, prefix: int | None,
        neighbour_shares: bool) -> None:
    extra = {} if prefix is None else {"ipv6_prefix": prefix}
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 2, **extra)]},
                          trusted_proxies=["127.0.0.1/32"])

    async def from_ip(ip: str) -> int:
        return (await send(http, gw.url + "/", {"X-Forwarded-For": ip}))[0]

    assert [await from_ip("2001:db8:1:2::1"), await from_ip("2001:db8:1:2::1")] == [200, 200]
    assert await from_ip("2001:db8:1:2::ffff") == (429 if neighbour_shares else 200)
    assert await from_ip("2001:db8:1:3::1") == 200  # another /64


KEYED: list[tuple[str, Any, Callable[[str], dict[str, Any]]]] = [
    # (id, by, how a request carries the key value)
    ("header", {"header": "X-API-Key"}, lambda v: {"headers": {"X-API-Key": v}}),
    ("query", {"query": "key"}, lambda v: {"params": {"key": v, "other": "1"}}),
    ("cookie", {"cookie": "session"},
     lambda v: {"headers": {"Cookie": f"theme=dark; session={v}; cart=3"}}),
    ("path", "path", lambda v: {"path": f"/items/{v}"}),
]


@pytest.mark.parametrize(("by", "carry"), [k[1:] for k in KEYED], ids=[k[0] for k in KEYED])
async def test_each_key_value_has_its_own_count(
        rl_gateway: RlGateway, http: aiohttp.ClientSession, by: Any,
        carry: Callable[[str], dict[str, Any]]) -> None:
    gw = await rl_gateway({"rules": [rule("keyed", by, 2)]})

    async def with_value(v: str) -> int:
        kw = carry(v)
        path = kw.pop("path", "/items/x")
        async with http.get(gw.url + path, **kw) as resp:
            await resp.read()
            return resp.status

    assert [await with_value("a") for _ in range(3)] == [200, 200, 429]
    assert [await with_value("b") for _ in range(3)] == [200, 200, 429]
    long_value = "v" * 5000  # hashed into a bounded key
    assert [await with_value(long_value) for _ in range(3)] == [200, 200, 429]


async def test_path_key_uses_the_normalized_path(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("per-path", "path", 3)]})
    got = []
    for raw in ("/a/b", "/a/./b", "//a//b", "/a/%62"):
        async with http.get(URL(gw.url + raw, encoded=True)) as resp:
            got.append(resp.status)
    assert got == [200, 200, 200, 429]


@pytest.mark.parametrize("by", [{"header": "X-API-Key"}, {"query": "key"},
                                {"cookie": "session"}, "consumer"])
async def test_a_rule_whose_key_is_absent_does_not_apply(
        rl_gateway: RlGateway, http: aiohttp.ClientSession, by: Any) -> None:
    gw = await rl_gateway({"rules": [rule("keyed", by, 1)]})
    # No such header, parameter or cookie (an empty value counts as absent), no consumer.
    for headers in ({}, {"X-API-Key": ""}, {"Cookie": "other=1; session"}):
        status, resp_headers, _ = await send(http, gw.url + "/?nokey=1", headers)
        assert status == 200
        assert resp_headers["X-RateLimit-Limit"] == "upstream's own"  # nothing to report
    assert await statuses(http, gw.url + "/?key=", 3) == [200] * 3


async def test_route_key_counts_every_request_together(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("all", "route", 3)]},
                          trusted_proxies=["127.0.0.1/32"])
    got = [(await send(http, gw.url + f"/p{i}", {"X-Forwarded-For": f"198.51.100.{i}"}))[0]
           for i in range(4)]
    assert got == [200, 200, 200, 429]


async def test_consumer_key_with_key_auth(gateway: GatewayFactory, upstream: UpstreamFactory,
                                          http: aiohttp.ClientSession) -> None:
    consumers = [
        {"name": name, "credentials": [{"id": name, "type": "key-auth", "key": key}]}
        for name, key in (("alice", "alice-key-0001"), ("bob", "bob-key-000002"))
    ]
    config = rl_config(await upstream(), {"rules": [rule("quota", "consumer", 2)]},
                       consumers=consumers)
    # hide_credentials: the key header is gone by the time rate-limit runs (TRAFFIC
    # after AUTHN); the consumer is what identifies the client.
    config["routes"][0]["plugins"]["auth"] = {
        "any_of": ["key-auth"], "hide_credentials": True, "key-auth": {"headers": ["X-API-Key"]}}
    gw = await gateway(config)
    alice, bob = {"X-API-Key": "alice-key-0001"}, {"X-API-Key": "bob-key-000002"}
    assert await statuses(http, gw.url + "/", 3, alice) == [200, 200, 429]
    assert await statuses(http, gw.url + "/", 1, bob) == [200]
    # No credential: auth answers first; nothing is counted.
    assert await statuses(http, gw.url + "/", 3) == [401] * 3
    status, headers, _ = await send(http, gw.url + "/", bob)
    assert (status, headers["X-RateLimit-Remaining"]) == (200, "0")


# ---------------------------------------------------------------------------
# Several rules


async def test_the_narrower_rule_rejects_and_a_refusal_charges_no_rule(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 4),
                                     rule("per-key", {"header": "X-API-Key"}, 2)]})

    async def key(k: str) -> tuple[int, str, str]:
        status, headers, _ = await send(http, gw.url + "/", {"X-API-Key": k})
        return status, headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]

    # The most restrictive rule is the one reported.
    assert await key("a") == (200, "2", "1")
    assert await key("a") == (200, "2", "0")
    assert await key("a") == (429, "2", "0")  # per-key refuses; per-ip is not charged
    assert await key("b") == (200, "2", "1")  # per-ip: 3 of 4 used
    assert await key("c") == (200, "4", "0")  # per-ip: 4 of 4 (had a been charged, 429)
    assert await key("d") == (429, "4", "0")  # now the wider rule refuses


async def test_route_and_global_scope(gateway: GatewayFactory, upstream: UpstreamFactory,
                                      http: aiohttp.ClientSession) -> None:
    url = await upstream()
    plugin = {"rules": [rule("per-route", "ip", 2), rule("shared", "ip", 3, scope="global")]}
    gw = await gateway({
        "access_log": {"enabled": False},
        "services": {"up": service(url)},
        "plugins": {"rate-limit": plugin},
        "routes": [{"name": "one", "match": {"path_prefix": "/one"}, "service": "up"},
                   {"name": "two", "match": {"path_prefix": "/two"}, "service": "up"}],
    })
    # per-route: 2 on each route; shared: 3 across both.
    assert await statuses(http, gw.url + "/one", 3) == [200, 200, 429]
    assert await statuses(http, gw.url + "/two", 2) == [200, 429]


# ---------------------------------------------------------------------------
# Metrics and decisions


async def test_decisions_are_counted_per_route_and_rule(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 10),
                                     rule("per-key", {"header": "X-API-Key"}, 1)]})
    await statuses(http, gw.url + "/", 3, {"X-API-Key": "k"})
    name = "bastion_ratelimit_decisions_total"
    assert sample(gw, name, route="all", rule="per-ip", result="allowed") == 1
    assert sample(gw, name, route="all", rule="per-key", result="allowed") == 1
    assert sample(gw, name, route="all", rule="per-key", result="limited") == 2
    assert sample(gw, name, route="all", rule="per-ip", result="limited") == 0
    gw.gateway.metrics.flush()
    assert sample(gw, "bastion_plugin_decisions_total", plugin="rate-limit",
                  action="limited") == 2


# ---------------------------------------------------------------------------
# Store failure (a Redis URL nothing answers on; the process tests kill a real one)


def dead_redis_store() -> dict[str, Any]:
    return {"type": "redis", "url": f"redis://127.0.0.1:{free_tcp_port()}/0",
            "timeout_ms": 50, "breaker_failures": 2, "breaker_cooldown_ms": 200}


async def timed(http: aiohttp.ClientSession, url: str, n: int
                ) -> list[tuple[int, float, CIMultiDictProxy[str], bytes]]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, headers, body = await send(http, url)
        out.append((status, time.perf_counter() - t0, headers, body))
    return out


async def test_fail_open_limits_per_process_with_the_local_divisor(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 10)], "local_divisor": 2},
                          store=dead_redis_store())
    results = await timed(http, gw.url + "/", 8)
    assert [r[0] for r in results] == [200] * 5 + [429] * 3
    assert max(r[1] for r in results) < 0.5
    assert [r[2]["X-RateLimit-Limit"] for r in results] == ["5"] * 8
    errors = "bastion_ratelimit_store_errors_total"
    kinds = {k: sample(gw, errors, route="all", kind=k, action="fallback")
             for k in ("error", "timeout", "circuit_open")}
    assert sum(kinds.values()) == 8 and kinds["circuit_open"] >= 5, kinds
    gw.gateway.metrics.flush()
    assert sample(gw, "bastion_plugin_decisions_total", plugin="rate-limit",
                  action="fallback") == 8


async def test_fail_closed_answers_unavailable_fast(
        rl_gateway: RlGateway, http: aiohttp.ClientSession, upstream_hits: list[str]) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 10)], "fail_open": False},
                          store=dead_redis_store())
    results = await timed(http, gw.url + "/", 5)
    assert [r[0] for r in results] == [503] * 5
    assert max(r[1] for r in results) < 0.5
    assert b"rate limit store unavailable" in results[0][3]
    assert upstream_hits == []
    assert sample(gw, "bastion_ratelimit_store_errors_total", route="all", kind="circuit_open",
                  action="refused") >= 3


async def test_fail_closed_status_is_configurable(
        rl_gateway: RlGateway, http: aiohttp.ClientSession) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 10)], "fail_open": False,
                           "unavailable_status": 500}, store=dead_redis_store())
    assert await statuses(http, gw.url + "/", 2) == [500, 500]


async def test_shared_counts_in_redis_use_bounded_namespaced_keys(
        rl_gateway: RlGateway, http: aiohttp.ClientSession, redis_url: str,
        redis_prefix: str) -> None:
    gw = await rl_gateway({"rules": [rule("per-ip", "ip", 5),
                                     rule("per-key", {"header": "X-API-Key"}, 5, window="1m")]},
                          store={"type": "redis", "url": redis_url, "prefix": redis_prefix})
    secret = "sk-live-" + "x" * 300
    assert await statuses(http, gw.url + "/", 2, {"X-API-Key": secret}) == [200, 200]
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = sorted([k async for k in client.scan_iter(match=redis_prefix + "*")])
        values = [await client.get(k) for k in keys]
        await client.delete(*keys)
    finally:
        await client.aclose()
    window_1h, window_1m = int(time.time() // 3600), int(time.time() // 60)
    stripped = [k[len(redis_prefix):] for k in keys]
    assert stripped[0].startswith("rl:all:per-ip:3600000:=127.0.0.1:")
    assert stripped[0].endswith(f":{window_1h}")
    assert stripped[1].startswith("rl:all:per-key:60000:#")
    assert stripped[1].endswith((f":{window_1m}", f":{window_1m + 1}"))
    assert "sk-live" not in stripped[1] and len(stripped[1]) < 80
    assert values == ["2", "2"]
