"""CC protection when Redis dies mid-run: fail open (per-process limits) or closed (503),
never a hanging request, and back to the shared store once Redis returns.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import InProcessGateway, RedisServer, simple_config

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def timed_get(client: aiohttp.ClientSession, gw: InProcessGateway,
                    ip: str) -> tuple[int, float]:
    started = time.monotonic()
    async with client.get(gw.url + "/", headers={"X-Forwarded-For": ip}) as resp:
        await resp.read()
        return resp.status, time.monotonic() - started


async def statuses(client: aiohttp.ClientSession, gw: InProcessGateway, ip: str,
                   n: int) -> list[int]:
    out = []
    for _ in range(n):
        status, took = await timed_get(client, gw, ip)
        assert took < 0.5, f"a request took {took:.2f}s"
        out.append(status)
    return out


async def start(gateway: GatewayFactory, upstream: UpstreamFactory, server: RedisServer,
                **plugin: Any) -> InProcessGateway:
    plugin.setdefault("rules", [{"name": "site", "requests": 5, "window": "10s", "ban": "10s"}])
    config = simple_config(await upstream(), plugins={"cc-protection": plugin},
                           store={"type": "redis", "url": server.url, "prefix": "cc-failover:",
                                  "timeout_ms": 50, "breaker_cooldown_ms": 200},
                           trusted_proxies=["127.0.0.1/32"])
    return await gateway(config)


def metric(gw: InProcessGateway, name: str, labels: dict[str, str]) -> float:
    gw.gateway.metrics.flush()
    return gw.gateway.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_fail_open_limits_per_process_and_recovers(
        gateway: GatewayFactory, upstream: UpstreamFactory,
        redis_server_factory: Callable[[], RedisServer], client: aiohttp.ClientSession) -> None:
    server = redis_server_factory()
    gw = await start(gateway, upstream, server)
    assert await statuses(client, gw, "198.51.100.1", 2) == [200, 200]

    server.kill()
    # Requests go on, and a flood is still cut off, by this process alone.
    assert await statuses(client, gw, "198.51.100.2", 7) == [200] * 5 + [429] * 2
    assert await statuses(client, gw, "198.51.100.3", 1) == [200]
    errors = sum(metric(gw, "bastion_cc_store_errors_total", {"kind": k})
                 for k in ("error", "timeout", "circuit_open"))
    assert errors >= 3

    server.start()  # same port, empty
    r = aioredis.Redis.from_url(server.url)
    try:
        deadline = time.monotonic() + 3
        n = 0
        # Once the breaker lets a probe through (after 200 ms), requests are
        # counted in Redis again ...
        while not await r.keys(f"cc-failover:cc:n:ip:10.77.0.{n}:*"):
            assert time.monotonic() < deadline, "nothing reached the restarted Redis"
            await asyncio.sleep(0.02)
            n += 1
            await statuses(client, gw, f"10.77.0.{n}", 1)
        # ... and a flood's ban is shared there.
        assert await statuses(client, gw, "198.51.100.4", 6) == [200] * 5 + [429]
        assert await r.exists("cc-failover:cc:ban:ip:198.51.100.4")
        # The ban written while Redis was down still holds in this process.
        assert await statuses(client, gw, "198.51.100.2", 1) == [429]
    finally:
        await r.aclose()


async def test_a_frozen_redis_costs_a_timeout_not_a_hang(
        gateway: GatewayFactory, upstream: UpstreamFactory,
        redis_server_factory: Callable[[], RedisServer], client: aiohttp.ClientSession) -> None:
    server = redis_server_factory()
    # With two workers sharing the allowance, each process takes half while alone.
    gw = await start(gateway, upstream, server, fallback_divisor=2)
    assert await statuses(client, gw, "198.51.100.11", 1) == [200]
    pid = server._proc.pid if server._proc is not None else 0
    os.kill(pid, signal.SIGSTOP)  # accepts nothing, answers nothing
    try:
        assert await statuses(client, gw, "198.51.100.12", 5) == [200] * 3 + [429] * 2
        assert metric(gw, "bastion_cc_store_errors_total", {"kind": "timeout"}) >= 1
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_fail_closed_answers_503_and_recovers(
        gateway: GatewayFactory, upstream: UpstreamFactory,
        redis_server_factory: Callable[[], RedisServer], client: aiohttp.ClientSession) -> None:
    server = redis_server_factory()
    gw = await start(gateway, upstream, server, fail_open=False, allow=["10.9.0.0/16"])
    assert await statuses(client, gw, "198.51.100.21", 1) == [200]

    server.kill()
    for _ in range(4):
        status, took = await timed_get(client, gw, "198.51.100.21")
        assert status == 503 and took < 0.5
    async with client.get(gw.url + "/", headers={"X-Forwarded-For": "198.51.100.22"}) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert "unavailable" in (await resp.json())["error"]
    # The allow list needs no store.
    assert await statuses(client, gw, "10.9.1.1", 1) == [200]
    assert metric(gw, "bastion_cc_decisions_total", {"action": "fail-closed"}) == 5

    server.start()
    deadline = time.monotonic() + 3
    while (await timed_get(client, gw, "198.51.100.21"))[0] != 200:
        assert time.monotonic() < deadline, "still refusing after Redis came back"
