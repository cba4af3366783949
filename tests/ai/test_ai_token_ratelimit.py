"""ai-token-ratelimit through a real gateway, against fake providers: check and reserve before
the call, settle with the real usage after it, per consumer or header, fail open or closed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from ai.token_ratelimit import estimate_tokens
from proxy.config import ConfigError, parse_config
from tests.ai.conftest import AiGatewayFactory, FakeFactory, read_events
from tests.ai.fakes import FakeProvider, Reply, Wait, openai_completion, openai_stream
from tests.conftest import InProcessGateway, RedisServer, free_tcp_port

# "Be brief.\nHi": 12 characters, a 3-token estimate. The fake answers with 11 + 4 tokens.
CHAT = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Hi"}]}
GPT = "gpt-4o-2024-08-06"
USED = 15

AUTH = {"any_of": ["key-auth"], "key-auth": {"headers": ["x-api-key"]}}
CONSUMERS = [{"name": name, "credentials": [{"id": f"{name}-key", "type": "key-auth",
                                             "key": f"{name}-secret"}]}
             for name in ("alice", "bob")]

Answer = tuple[int, CIMultiDictProxy[str], Any]


def proxy_config(openai: FakeProvider) -> dict[str, Any]:
    return {"providers": {"openai": {"type": "openai", "base_url": openai.base_url,
                                     "api_keys": ["sk-o"]}},
            "models": {"gpt-4o": {"provider": "openai", "model": GPT}}}


def rule(name: str, by: Any, limit: int, window: str = "1h", **extra: Any) -> dict[str, Any]:
    return {"name": name, "by": by, "limit": limit, "window": window, **extra}


async def clear_of_window_edge(window: float, needed: float) -> None:
    """Wait, if need be, so the next ``needed`` seconds lie inside one fixed window
    (the sliding-window count is then exact: no previous window fading out)."""
    left = window - time.time() % window
    if left < needed:
        await asyncio.sleep(left + 0.05)


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


def sample(gw: InProcessGateway, name: str, **labels: str) -> float:
    value = gw.gateway.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def decisions(log_file: Path, action: str | None = None) -> list[dict[str, Any]]:
    if not log_file.exists():
        return []
    out = []
    for line in log_file.read_text().splitlines():
        for d in json.loads(line).get("decisions", ()):
            if d["plugin"] == "ai-token-ratelimit" and action in (None, d["action"]):
                out.append(d)
    return out


class Limited:
    def __init__(self, gw: InProcessGateway, openai: FakeProvider, log_file: Path) -> None:
        self.gw, self.openai, self.log_file = gw, openai, log_file
        self.url = gw.url + "/v1/chat/completions"

    async def charged(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` settlements (on_done may run after the client has its answer)."""
        await eventually(lambda: len(decisions(self.log_file, "charged")) >= n)
        return decisions(self.log_file, "charged")


@pytest.fixture
async def limited(fake: FakeFactory, ai_gateway: AiGatewayFactory, tmp_path: Path
                  ) -> Callable[..., Any]:
    async def start(plugin: dict[str, Any], *, auth: bool = False, **top: Any) -> Limited:
        openai = await fake("openai")
        log_file = tmp_path / "access.log"
        plugins: dict[str, Any] = {"ai-token-ratelimit": plugin}
        if auth:
            plugins["auth"] = AUTH
            top["consumers"] = CONSUMERS
        gw = await ai_gateway(proxy_config(openai), plugins=plugins,
                              access_log={"enabled": True, "path": str(log_file)}, **top)
        return Limited(gw, openai, log_file)

    return start


def log_lines(lim: Limited) -> int:
    return len(lim.log_file.read_text().splitlines()) if lim.log_file.exists() else 0


async def call(http: aiohttp.ClientSession, lim: Limited, body: dict[str, Any] | None = None,
               *, key: str | None = None, user: str | None = None) -> Answer:
    """One call (as consumer ``key``, with ``X-User: user``), returned once its access log
    line (written after on_done: after the settlement) is there."""
    headers = {}
    if key is not None:
        headers["x-api-key"] = f"{key}-secret"
    if user is not None:
        headers["X-User"] = user
    before = log_lines(lim)
    async with http.post(lim.url, json=body or CHAT, headers=headers) as resp:
        data = await resp.json(content_type=None)
    await eventually(lambda: log_lines(lim) > before)
    return resp.status, resp.headers, data


async def calls(http: aiohttp.ClientSession, lim: Limited, n: int,
                body: dict[str, Any] | None = None, *, key: str | None = None,
                user: str | None = None) -> list[Answer]:
    """``n`` calls one after the other, each settled before the next is sent."""
    return [await call(http, lim, body, key=key, user=user) for _ in range(n)]


def remaining(answers: list[Answer]) -> list[str]:
    return [a[1].get("X-RateLimit-Remaining-Tokens", "-") for a in answers]


# ---------------------------------------------------------------------------
# The budget per consumer


async def test_a_consumer_over_its_minute_budget_gets_429_and_others_are_unaffected(
        limited: Callable[..., Any], http: aiohttp.ClientSession, redis_url: str,
        redis_prefix: str) -> None:
    lim = await limited({"rules": [rule("tpm", "consumer", 40, "1m")]}, auth=True,
                        store={"type": "redis", "url": redis_url, "prefix": redis_prefix})
    await clear_of_window_edge(60, 5)
    alice = await calls(http, lim, 4, key="alice")
    # Each call reserves its 3-token estimate, then is charged the 15 tokens it used:
    # 0+3 -> 15, 15+3 -> 30, 30+3 -> 45; then 45 leaves no room for 3.
    assert [a[0] for a in alice] == [200, 200, 200, 429]
    assert remaining(alice) == ["37", "22", "7", "0"]
    assert [d["tokens"] for d in await lim.charged(3)] == [USED] * 3
    assert {(d["source"], d["reserved"]) for d in await lim.charged(3)} == {("usage", 3)}
    _, headers, body = alice[-1]
    assert body == {"error": {
        "message": "Rate limit reached for tokens (tpm: 40 tokens per 1m): used 45, requested 3."
                   f" Please try again in {headers['Retry-After']}s.",
        "type": "rate_limit_exceeded", "param": None, "code": "rate_limit_exceeded"}}
    assert headers["Content-Type"] == "application/json"
    assert headers["X-RateLimit-Limit-Tokens"] == "40"
    assert 1 <= int(headers["Retry-After"]) <= 120
    assert int(headers["retry-after-ms"]) <= int(headers["Retry-After"]) * 1000
    assert headers["X-RateLimit-Reset-Tokens"].endswith("s")
    # The refused call never reached the provider.
    assert len(lim.openai.received) == 3
    # Bob has his own budget.
    bob = await calls(http, lim, 1, key="bob")
    assert [a[0] for a in bob] == [200] and remaining(bob) == ["37"]
    name = "bastion_ai_token_ratelimit_decisions_total"
    assert sample(lim.gw, name, route="ai", rule="tpm", result="allowed") == 4
    assert sample(lim.gw, name, route="ai", rule="tpm", result="limited") == 1
    assert sample(lim.gw, "bastion_ai_token_ratelimit_charged_tokens_total", route="ai",
                  source="usage") == 4 * USED


async def test_keyed_by_header_with_a_consumer_override(
        limited: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    lim = await limited({"rules": [rule("per-user", {"header": "X-User"}, 16),
                                   rule("per-consumer", "consumer", 30,
                                        overrides={"bob": 1000})]}, auth=True)
    # u1 through alice: per-user refuses the second call (15 + 3 > 16).
    got = await calls(http, lim, 2, key="alice", user="u1")
    assert [a[0] for a in got] == [200, 429]
    assert "(per-user: 16 tokens per 1h)" in got[1][2]["error"]["message"]
    # Another user through alice: alice's own 30 runs out (30 + 3 > 30).
    assert [a[0] for a in await calls(http, lim, 1, key="alice", user="u2")] == [200]
    got = await calls(http, lim, 1, key="alice", user="u3")
    assert [a[0] for a in got] == [429]
    assert "(per-consumer: 30 tokens per 1h): used 30, requested 3" in got[0][2]["error"][
        "message"]
    # Bob's override takes him past 30; the per-user counts are per header value.
    got = await calls(http, lim, 3, key="bob", user="u4")
    assert [a[0] for a in got] == [200, 429, 429]
    assert got[0][1]["X-RateLimit-Limit-Tokens"] == "16"  # the tightest rule's
    assert [a[0] for a in await calls(http, lim, 1, key="bob", user="u5")] == [200]
    # A call without the header is limited by the consumer rule only.
    got = await calls(http, lim, 1, key="bob")
    assert got[0][0] == 200
    assert (got[0][1]["X-RateLimit-Limit-Tokens"], got[0][1]["X-RateLimit-Remaining-Tokens"]) \
        == ("1000", str(1000 - 30 - 3))


# ---------------------------------------------------------------------------
# Reservations


async def test_max_tokens_is_reserved_while_the_call_is_in_flight_then_settled(
        limited: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    lim = await limited({"rules": [rule("budget", {"header": "X-User"}, 100)]})
    hold = asyncio.Event()
    events = openai_stream(GPT, True)
    lim.openai.replies.append(Reply(writes=[*events[:2], Wait(hold), *events[2:]]))
    body = {**CHAT, "max_tokens": 60, "stream": True}
    # 3 + 60 reserved: 63 of 100 while the stream runs.
    async with http.post(lim.url, json=body, headers={"X-User": "u"}) as first:
        assert first.status == 200
        assert first.headers["X-RateLimit-Remaining-Tokens"] == "37"
        # A second such call does not fit next to it...
        status, headers, got = await call(http, lim, body, user="u")
        assert status == 429 and headers["X-RateLimit-Remaining-Tokens"] == "37"
        assert "used 63, requested 63" in got["error"]["message"]
        # ...though a small one does.
        small = {**CHAT, "max_tokens": 10}
        status, headers, _ = await call(http, lim, small, user="u")
        assert status == 200 and headers["X-RateLimit-Remaining-Tokens"] == "24"
        hold.set()
        await read_events(first)
    # Settled: 15 each, the unused reservations given back.
    charged = await lim.charged(2)
    assert sorted((d["tokens"], d["reserved"]) for d in charged) == [(15, 13), (15, 63)]
    status, headers, _ = await call(http, lim, {**body, "stream": False}, user="u")
    assert status == 200 and headers["X-RateLimit-Remaining-Tokens"] == str(100 - 30 - 63)


async def test_a_reservation_above_the_limit_is_capped_at_it(
        limited: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    lim = await limited({"rules": [rule("budget", {"header": "X-User"}, 50)]})
    body = {**CHAT, "max_completion_tokens": 4096, "n": 2}
    # Reserves the whole 50 (not 3 + 8192, which would never fit), then is settled to 15.
    got = await calls(http, lim, 1, body, user="u")
    assert got[0][0] == 200 and got[0][1]["X-RateLimit-Remaining-Tokens"] == "0"
    assert (await lim.charged(1))[0]["reserved"] == 3 + 2 * 4096
    # 15 used: 35 left, not enough for another 50-token reservation.
    got = await calls(http, lim, 1, body, user="u")
    assert got[0][0] == 429 and got[0][1]["X-RateLimit-Remaining-Tokens"] == "35"


async def test_without_reservations_the_check_only_lags(
        limited: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    lim = await limited({"rules": [rule("budget", {"header": "X-User"}, 20)],
                         "reserve": False})
    got = await calls(http, lim, 3, {**CHAT, "max_tokens": 500}, user="u")
    # One token reserved each: 0+1 fits, then 15+1 fits too (30 used > 20), then no room.
    assert [a[0] for a in got] == [200, 200, 429]
    assert remaining(got) == ["19", "4", "0"]


async def test_charges_are_estimated_when_the_provider_reports_no_usage(
        limited: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    lim = await limited({"rules": [rule("budget", {"header": "X-User"}, 1000)],
                         "completion_reserve": 100})
    answer = openai_completion(GPT, "Hello from openai")
    del answer["usage"]
    lim.openai.replies.append(Reply(json=answer))
    got = await calls(http, lim, 1, user="u")
    assert got[0][0] == 200 and got[0][1]["X-RateLimit-Remaining-Tokens"] == str(1000 - 103)
    [d] = await lim.charged(1)
    # Prompt text and completion text, 4 characters a token.
    expected = estimate_tokens("Be brief.\nHi") + estimate_tokens("Hello from openai")
    assert expected == 8
    assert (d["tokens"], d["reserved"], d["source"]) == (8, 103, "estimate")
    assert sample(lim.gw, "bastion_ai_token_ratelimit_charged_tokens_total", route="ai",
                  source="estimate") == 8
    got = await calls(http, lim, 1, user="u")
    assert got[0][1]["X-RateLimit-Remaining-Tokens"] == str(1000 - 8 - 103)


async def test_a_provider_error_charges_nothing(
        limited: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    lim = await limited({"rules": [rule("budget", {"header": "X-User"}, 1000)]})
    lim.openai.replies.append(Reply(status=400, json={"error": {
        "message": "bad", "type": "invalid_request_error", "param": None, "code": None}}))
    got = await calls(http, lim, 1, user="u")
    assert got[0][0] == 400
    assert [(d["tokens"], d["source"]) for d in await lim.charged(1)] == [(0, "none")]


# ---------------------------------------------------------------------------
# The store failing


async def test_redis_down_fails_open_to_a_per_process_limit(
        limited: Callable[..., Any], http: aiohttp.ClientSession,
        redis_server_factory: Callable[[], RedisServer]) -> None:
    redis = redis_server_factory()
    store = {"type": "redis", "url": redis.url, "timeout_ms": 50, "breaker_failures": 2,
             "breaker_cooldown_ms": 200}
    lim = await limited({"rules": [rule("budget", {"header": "X-User"}, 40)]}, store=store)
    shared = await calls(http, lim, 2, user="u")
    assert [a[0] for a in shared] == [200, 200] and remaining(shared) == ["37", "22"]
    redis.kill()
    t0 = time.perf_counter()
    during = await calls(http, lim, 4, user="u")
    assert time.perf_counter() - t0 < 2.0
    # A fresh local window: 37, 22, 7 left, then no room (Redis's 30 are out of reach).
    assert [a[0] for a in during] == [200, 200, 200, 429]
    assert remaining(during) == ["37", "22", "7", "0"]
    assert len(decisions(lim.log_file, "fallback")) == 4
    errors = "bastion_ai_token_ratelimit_store_errors_total"
    assert sum(sample(lim.gw, errors, route="ai", kind=k, action="fallback")
               for k in ("error", "timeout", "circuit_open")) == 4


async def test_a_settlement_that_cannot_reach_redis_is_counted(
        limited: Callable[..., Any], http: aiohttp.ClientSession,
        redis_server_factory: Callable[[], RedisServer]) -> None:
    redis = redis_server_factory()
    store = {"type": "redis", "url": redis.url, "timeout_ms": 50}
    lim = await limited({"rules": [rule("budget", {"header": "X-User"}, 400)]}, store=store)
    hold = asyncio.Event()
    events = openai_stream(GPT, True)
    lim.openai.replies.append(Reply(writes=[*events[:2], Wait(hold), *events[2:]]))
    async with http.post(lim.url, json={**CHAT, "stream": True},
                         headers={"X-User": "u"}) as resp:
        assert resp.status == 200
        redis.kill()
        hold.set()
        await read_events(resp)
    await eventually(lambda: bool(decisions(lim.log_file, "unsettled")))
    [d] = decisions(lim.log_file, "unsettled")
    assert (d["tokens"], d["reserved"]) == (15, 3)
    assert sum(sample(lim.gw, "bastion_ai_token_ratelimit_store_errors_total", route="ai",
                      kind=k, action="unsettled") for k in ("error", "timeout")) == 1


async def test_fail_closed_answers_unavailable_in_openai_format(
        limited: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    dead = {"type": "redis", "url": f"redis://127.0.0.1:{free_tcp_port()}/0", "timeout_ms": 50,
            "breaker_failures": 2, "breaker_cooldown_ms": 200}
    lim = await limited({"rules": [rule("budget", {"header": "X-User"}, 40)],
                         "fail_open": False}, store=dead)
    for _ in range(3):
        status, _, body = await call(http, lim, user="u")
        assert status == 503
        assert body["error"]["code"] == "rate_limit_store_unavailable"
        assert body["error"]["type"] == "server_error"
    assert lim.openai.received == []


# ---------------------------------------------------------------------------
# Config


def test_config_is_checked() -> None:
    def load(plugin: dict[str, Any]) -> None:
        parse_config(json.dumps({
            "services": {"u": {"endpoints": [{"url": "http://127.0.0.1:9"}]}},
            "routes": [{"name": "r", "service": "u",
                        "plugins": {"ai-token-ratelimit": plugin}}]}), "<test>")

    load({"rules": [rule("tpm", "consumer", 10000, "1m", overrides={"a": 5}),
                    rule("tpd", "ip", 10**6, "1d", ipv6_prefix=56)],
          "completion_reserve": 256, "chars_per_token": 2.5})
    with pytest.raises(ConfigError, match="overrides applies to by: consumer only"):
        load({"rules": [rule("x", "ip", 10, overrides={"a": 5})]})
    with pytest.raises(ConfigError, match="two rules are named"):
        load({"rules": [rule("x", "ip", 10), rule("x", "consumer", 10)]})
    with pytest.raises(ConfigError, match="rules"):
        load({})
    with pytest.raises(ConfigError, match="not a duration"):
        load({"rules": [rule("x", "ip", 10, "a minute")]})
