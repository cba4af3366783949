"""ai-token-ratelimit under ``bastion run --workers 2``: one token budget in Redis for both
workers, with the overshoot staying within the documented bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import psutil

from tests.ai.fakes import FakeProvider
from tests.conftest import GatewayProcess, free_tcp_port, service

StartProcess = Callable[..., GatewayProcess]
Upstream = Callable[..., Awaitable[str]]

GPT = "gpt-4o-2024-08-06"
# 44 characters: an 11-token estimate, and the fake reports 11 prompt tokens (+ 4).
PROMPT = "Count from one to ten in English words. Go!!"
USED = 15
BUDGET = 300


def config(openai: FakeProvider, redis_url: str, redis_prefix: str) -> dict[str, Any]:
    return {
        "access_log": {"enabled": False},
        "store": {"type": "redis", "url": redis_url, "prefix": redis_prefix},
        "services": {"unused": service(f"http://127.0.0.1:{free_tcp_port()}")},
        "routes": [{"name": "ai", "match": {"path_prefix": "/v1/"}, "service": "unused",
                    "plugins": {
                        "ai-proxy": {
                            "providers": {"openai": {"type": "openai",
                                                     "base_url": openai.base_url,
                                                     "api_keys": ["sk-o"]}},
                            "models": {"gpt-4o": {"provider": "openai", "model": GPT}}},
                        "ai-token-ratelimit": {"rules": [{
                            "name": "budget", "by": {"header": "X-Tenant"}, "limit": BUDGET,
                            "window": "1h"}]},
                        "ai-statistics": {},
                    }}],
    }


async def post_fresh(url: str, body: dict[str, Any], tenant: str) -> int:
    """One call on a new connection (so SO_REUSEPORT picks a worker anew)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s, \
            s.post(url, json=body, headers={"X-Tenant": tenant},
                   timeout=aiohttp.ClientTimeout(total=10)) as resp:
        await resp.read()
        return resp.status


async def burst(url: str, body: dict[str, Any], tenant: str, n: int,
                parallel: int = 16) -> list[int]:
    gate = asyncio.Semaphore(parallel)

    async def one() -> int:
        async with gate:
            return await post_fresh(url, body, tenant)

    return list(await asyncio.gather(*(one() for _ in range(n))))


def workers_talking_to(gw: GatewayProcess, port: int) -> dict[int, int]:
    """Per worker pid, its open connections to ``port`` (its keep-alive pool)."""
    assert gw.proc is not None
    out = {}
    for p in psutil.Process(gw.proc.pid).children():
        if "proxy.worker" in " ".join(p.cmdline()):
            out[p.pid] = sum(1 for c in p.net_connections("tcp")
                             if c.raddr and c.raddr.port == port)
    return out


async def metric_sum(http: aiohttp.ClientSession, gw: GatewayProcess, prefix: str) -> float:
    async with http.get(gw.admin_url + "/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix))


async def test_one_token_budget_across_two_workers(
        gateway_process: StartProcess, upstream: Upstream, redis_url: str, redis_prefix: str,
        http: aiohttp.ClientSession) -> None:
    assert len(PROMPT) == 44
    openai = FakeProvider("openai")
    openai.url = await upstream(openai.app)
    gw = gateway_process(config(openai, redis_url, redis_prefix), workers=2)
    url = gw.url + "/v1/chat/completions"
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]}
    left = 3600 - time.time() % 3600
    if left < 10:  # keep both bursts inside one fixed window
        await asyncio.sleep(left + 0.05)

    # max_tokens makes the reservation exact (11 + 4 = the 15 used): no overshoot at all,
    # however the 40 concurrent calls interleave across the workers.
    exact = await burst(url, {**chat, "max_tokens": 4}, "exact", 40)
    assert exact.count(200) == BUDGET // USED, exact
    assert exact.count(429) == 40 - exact.count(200)

    # Without max_tokens only the prompt's 11 are reserved: each call in flight may use 4
    # tokens the others could not see. The bound: used <= budget + 4 x admitted.
    loose = await burst(url, chat, "loose", 40)
    admitted = loose.count(200)
    assert admitted * USED <= BUDGET + admitted * (USED - 11), loose
    # And never fewer than the budget allows.
    assert admitted >= BUDGET // USED, loose

    # Both workers served calls (each holds connections to the provider).
    peers = workers_talking_to(gw, int(openai.url.rsplit(":", 1)[1]))
    assert len(peers) == 2 and all(peers.values()), peers
    assert len(openai.received) == BUDGET // USED + admitted

    # The sums over both workers: every admitted call charged and counted.
    total = BUDGET // USED + admitted
    deadline = time.monotonic() + 5
    while await metric_sum(http, gw, "bastion_ai_token_ratelimit_charged_tokens_total{") \
            < total * USED:
        assert time.monotonic() < deadline, "not every call was charged"
        await asyncio.sleep(0.05)
    assert await metric_sum(http, gw, "bastion_ai_token_ratelimit_charged_tokens_total{") \
        == total * USED
    assert await metric_sum(http, gw, 'bastion_ai_tokens_total{consumer="",model="'
                                      f'{GPT}",provider="openai",route="ai",type="prompt"}}') \
        == total * 11
