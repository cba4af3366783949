"""CC bans across processes: ``bastion run --workers 2`` and a second gateway on one Redis,
and the admin API's listing and lifting of bans.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import GatewayProcess

ADMIN_TOKEN = "cc-admin-token-0123456789"
IP = "198.51.100.9"


def cluster_config(redis_url: str, prefix: str) -> dict[str, Any]:
    return {
        "access_log": {"enabled": False},
        "admin": {"token": ADMIN_TOKEN},
        "trusted_proxies": ["127.0.0.1/32"],
        "store": {"type": "redis", "url": redis_url, "prefix": prefix},
        "services": {"echo": {"endpoints": [{"url": "builtin:echo"}]}},
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "service": "echo"}],
        "plugins": {"cc-protection": {
            "rules": [{"name": "site", "requests": 5, "window": "30s", "ban": "60s"}],
            "ban_cache": "200ms",
        }},
    }


@pytest.fixture
async def fresh() -> AsyncIterator[aiohttp.ClientSession]:
    """A new connection per request, so the kernel spreads them over the workers."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def status(session: aiohttp.ClientSession, gw: GatewayProcess, ip: str) -> int:
    async with session.get(gw.url + "/", headers={"X-Forwarded-For": ip}) as resp:
        await resp.read()
        return resp.status


async def test_bans_are_shared_by_workers_and_gateways_and_lifted_by_the_admin_api(
        gateway_process: Callable[..., GatewayProcess], redis_url: str, redis_prefix: str,
        fresh: aiohttp.ClientSession) -> None:
    config = cluster_config(redis_url, redis_prefix)
    gw1 = gateway_process(config, workers=2)
    gw2 = gateway_process(config)

    # Over two workers, exactly the allowance gets through: one count, one ban.
    statuses = [await status(fresh, gw1, IP) for _ in range(12)]
    assert statuses.count(200) == 5 and statuses[:5] == [200] * 5, statuses
    assert await status(fresh, gw2, IP) == 429  # the other gateway knows
    assert await status(fresh, gw2, "198.51.100.10") == 200

    for gw in (gw1, gw2):  # either admin API sees the shared ban
        async with fresh.get(gw.admin_url + "/cc/bans") as resp:
            assert resp.status == 200
            listing = await resp.json()
        [ban] = [b for b in listing["bans"] if b["value"] == IP]
        assert ban["type"] == "ip" and ban["rule"] == "site" and ban["action"] == "deny"
        assert 50 < ban["remaining"] <= 60
        assert "more than 5 requests in 30s" in ban["reason"]
    async with fresh.get(gw1.admin_url + "/cc/bans?type=cookie") as resp:
        assert (await resp.json())["bans"] == []

    url = f"{gw1.admin_url}/cc/bans/ip/{IP}"
    async with fresh.delete(url) as resp:
        assert resp.status == 401
    async with fresh.delete(url, headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with fresh.delete(f"{gw1.admin_url}/cc/bans/ip/not-an-ip", headers=auth) as resp:
        assert resp.status == 400
    async with fresh.delete(url, headers=auth) as resp:
        assert resp.status == 200
        assert (await resp.json())["lifted"] == {"type": "ip", "value": IP}
    async with fresh.delete(url, headers=auth) as resp:
        assert resp.status == 404

    # Workers re-read a ban after ban_cache (200 ms): both gateways admit the client again.
    deadline = time.monotonic() + 3
    while True:
        got = [await status(fresh, gw, IP) for gw in (gw1, gw1, gw2)]
        if got == [200] * 3:
            break
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.1)
    async with fresh.get(gw2.admin_url + "/cc/bans") as resp:
        assert [b for b in (await resp.json())["bans"] if b["value"] == IP] == []
