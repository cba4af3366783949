"""The ``rate-limit`` plugin under ``bastion run``: one limit across workers and
gateway processes through Redis, and what happens when that Redis dies and returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import psutil

from tests.conftest import GatewayProcess, RedisServer, simple_config

StartProcess = Callable[..., GatewayProcess]
Upstream = Callable[..., Awaitable[str]]
RedisFactory = Callable[[], RedisServer]


def rl_config(upstream_url: str, store: dict[str, Any], limit: int, window: str,
              **plugin: Any) -> dict[str, Any]:
    config = simple_config(upstream_url, store=store)
    config["routes"][0]["plugins"] = {"rate-limit": {
        "rules": [{"name": "per-ip", "by": "ip", "limit": limit, "window": window}], **plugin}}
    return config


async def get_fresh(url: str) -> tuple[int, float, dict[str, str]]:
    """One GET on a new connection (so SO_REUSEPORT picks a worker anew): status, seconds."""
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s, \
            s.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        await resp.read()
        return resp.status, time.perf_counter() - t0, dict(resp.headers)


async def burst(urls: list[str], parallel: int = 16) -> list[int]:
    """GET every URL, ``parallel`` at a time, each on a fresh connection; the statuses."""
    gate = asyncio.Semaphore(parallel)

    async def one(url: str) -> int:
        async with gate:
            return (await get_fresh(url))[0]

    return list(await asyncio.gather(*(one(u) for u in urls)))


async def clear_of_window_edge(window: float, needed: float) -> None:
    """Wait, if need be, so the next ``needed`` seconds lie inside one fixed window.

    The sliding-window estimate is exact while the previous window is empty
    and the burst stays in the current one.
    """
    left = window - time.time() % window
    if left < needed:
        await asyncio.sleep(left + 0.05)


def upstream_peers(gw: GatewayProcess, upstream_port: int) -> dict[int, int]:
    """Per worker pid, its open connections to the upstream (its keep-alive pool)."""
    assert gw.proc is not None
    out = {}
    for p in psutil.Process(gw.proc.pid).children():
        if "proxy.worker" in " ".join(p.cmdline()):
            out[p.pid] = sum(1 for c in p.net_connections("tcp")
                             if c.raddr and c.raddr.port == upstream_port)
    return out


async def test_one_limit_across_two_workers(gateway_process: StartProcess, upstream: Upstream,
                                            redis_url: str, redis_prefix: str) -> None:
    up = await upstream()
    gw = gateway_process(rl_config(up, {"type": "redis", "url": redis_url,
                                        "prefix": redis_prefix}, 100, "10s"), workers=2)
    await clear_of_window_edge(10, 4)
    got = await burst([gw.url + f"/r{i}" for i in range(150)])
    assert 99 <= got.count(200) <= 101, got
    assert got.count(429) == 150 - got.count(200)
    # Both workers proxied some of the admitted requests (each holds upstream connections).
    peers = upstream_peers(gw, int(up.rsplit(":", 1)[1]))
    assert len(peers) == 2 and all(peers.values()), peers


async def test_one_limit_across_two_gateway_processes(
        gateway_process: StartProcess, upstream: Upstream, redis_url: str,
        redis_prefix: str) -> None:
    config = rl_config(await upstream(), {"type": "redis", "url": redis_url,
                                          "prefix": redis_prefix}, 100, "10s")
    first = gateway_process(config)
    second = gateway_process(config)  # one after the other: the fixture numbers their dirs
    await clear_of_window_edge(10, 4)
    got = await burst([(first, second)[i % 2].url + "/" for i in range(150)])
    assert 99 <= got.count(200) <= 101, got


async def test_redis_killed_mid_run_fails_open_to_a_local_limit_then_resumes(
        gateway_process: StartProcess, upstream: Upstream, redis_server_factory: RedisFactory,
        http: aiohttp.ClientSession) -> None:
    redis = redis_server_factory()
    store = {"type": "redis", "url": redis.url, "timeout_ms": 50,
             "breaker_failures": 3, "breaker_cooldown_ms": 200}
    # 1h windows: nothing here straddles a window edge enough to matter.
    gw = gateway_process(rl_config(await upstream(), store, 20, "1h"))

    shared = [await get_fresh(gw.url + "/") for _ in range(5)]
    assert [s for s, _, _ in shared] == [200] * 5
    assert shared[-1][2]["X-RateLimit-Remaining"] == "15"

    redis.kill()
    during = [await get_fresh(gw.url + "/") for _ in range(30)]
    assert max(t for _, t, _ in during) < 1.0, [round(t, 3) for _, t, _ in during]
    # A fresh in-process window: 20 admitted, then refused; none hung.
    assert [s for s, _, _ in during] == [200] * 20 + [429] * 10

    redis.restart()  # empty: it kept nothing
    # The local window is used up, so a 200 can only come from Redis again,
    # once the breaker's probe finds it back.
    deadline = time.monotonic() + 10
    first_ok = None
    while first_ok is None:
        assert time.monotonic() < deadline, "the shared limit never resumed"
        status, elapsed, headers = await get_fresh(gw.url + "/")
        assert elapsed < 1.0
        if status == 200:
            first_ok = headers
        else:
            await asyncio.sleep(0.05)
    assert first_ok["X-RateLimit-Remaining"] == "19"
    after = [(await get_fresh(gw.url + "/"))[0] for _ in range(21)]
    assert after == [200] * 19 + [429] * 2

    async with http.get(gw.admin_url + "/metrics") as resp:
        text = await resp.text()
    fallback = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("bastion_ratelimit_store_errors_total{")
                   and 'action="fallback"' in line)
    assert fallback >= 30


async def test_redis_killed_with_fail_open_off_answers_503_fast(
        gateway_process: StartProcess, upstream: Upstream,
        redis_server_factory: RedisFactory) -> None:
    redis = redis_server_factory()
    store = {"type": "redis", "url": redis.url, "timeout_ms": 50,
             "breaker_failures": 3, "breaker_cooldown_ms": 200}
    gw = gateway_process(rl_config(await upstream(), store, 100, "1h", fail_open=False))
    assert (await get_fresh(gw.url + "/"))[0] == 200
    redis.kill()
    during = [await get_fresh(gw.url + "/") for _ in range(20)]
    assert [s for s, _, _ in during] == [503] * 20
    assert max(t for _, t, _ in during) < 1.0
    redis.restart()
    deadline = time.monotonic() + 10
    while (await get_fresh(gw.url + "/"))[0] != 200:
        assert time.monotonic() < deadline, "requests never passed again"
        await asyncio.sleep(0.05)
