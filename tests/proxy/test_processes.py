"""`bastion run` as users run it: real processes, reloads, workers, draining, admin API."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp import web
from yarl import URL

from tests.conftest import GatewayProcess, simple_config

StartProcess = Callable[..., GatewayProcess]
Upstream = Callable[..., Awaitable[str]]

MB = 1024 * 1024


def versioned_config(upstream_url: str, version: int | str, **extra: Any) -> dict[str, Any]:
    config = simple_config(upstream_url, **extra)
    config["plugins"] = {"headers": {"response": {"set": {"X-Config-Version": str(version)}}}}
    return config


def metric_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def fetch_metrics(gw: GatewayProcess, http: aiohttp.ClientSession) -> str:
    async with http.get(gw.admin_url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


def worker_processes(gw: GatewayProcess) -> list[psutil.Process]:
    assert gw.proc is not None
    return [p for p in psutil.Process(gw.proc.pid).children()
            if "proxy.worker" in " ".join(p.cmdline())]


async def get_fresh(url: str) -> int:
    """One GET on its own new connection (so SO_REUSEPORT picks a worker anew)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s, \
            s.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        await resp.read()
        return resp.status


# --------------------------------------------------------------- defaults


async def test_bastion_run_serves_the_embedded_default(
        gateway_process: StartProcess, http: aiohttp.ClientSession) -> None:
    gw = gateway_process(None)
    async with http.get(gw.url + "/anything?x=1") as resp:
        assert resp.status == 200
        echo = await resp.json()
        assert resp.headers["X-Content-Type-Options"] == "nosniff"  # the headers plugin
    assert echo["path"] == "/anything"
    assert echo["query"] == "x=1"
    assert echo["headers"]["X-Bastion-Demo"] == "1"
    async with http.get(gw.admin_url + "/healthz") as resp:
        assert resp.status == 200
    # The README's SQL injection probe is refused by the WAF's own rules.
    async with http.get(URL(gw.url + "/?q=1%27%20or%201=1--", encoded=True)) as resp:
        assert resp.status == 403
        assert (await resp.json())["rule_ids"]
    # The README's protected demo route: 401, 403, 200.
    async with http.get(gw.url + "/private/") as resp:
        assert resp.status == 401
    async with http.get(gw.url + "/private/", headers={"X-API-Key": "viewer-key-change-me"}
                        ) as resp:
        assert resp.status == 403
    async with http.get(gw.url + "/private/", headers={"X-API-Key": "demo-key-change-me"}
                        ) as resp:
        assert resp.status == 200
        assert (await resp.json())["headers"]["X-Consumer-Username"] == "demo"


# -------------------------------------------------------------- streaming


async def test_50mb_upload_and_download_stream_in_bounded_memory(
        gateway_process: StartProcess, upstream: Upstream,
        http: aiohttp.ClientSession) -> None:
    chunk = os.urandom(64 * 1024)
    n_chunks = 50 * MB // len(chunk)
    expected = hashlib.sha256(chunk * n_chunks).hexdigest()

    async def sink(request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for part in request.content.iter_chunked(64 * 1024):
            digest.update(part)
            size += len(part)
            await asyncio.sleep(0)  # a consumer no faster than the network
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def source(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(n_chunks * len(chunk))})
        await resp.prepare(request)
        for _ in range(n_chunks):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    app = web.Application(client_max_size=0)
    app.router.add_post("/upload", sink)
    app.router.add_get("/download", source)
    gw = gateway_process(simple_config(await upstream(app), limits={"max_body_bytes": 0}))
    (worker,) = worker_processes(gw)
    async with http.get(gw.url + "/download") as resp:  # warm up
        await resp.read()
    baseline = worker.memory_info().rss
    peak = baseline
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, worker.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())

    async def body() -> AsyncIterator[bytes]:
        for _ in range(n_chunks):
            yield chunk

    try:
        async with http.post(gw.url + "/upload", data=body()) as resp:
            assert resp.status == 200
            assert await resp.json() == {"size": n_chunks * len(chunk), "sha256": expected}
        digest, size = hashlib.sha256(), 0
        async with http.get(gw.url + "/download") as resp:
            assert resp.status == 200
            async for part in resp.content.iter_chunked(64 * 1024):
                digest.update(part)
                size += len(part)
                await asyncio.sleep(0.0005)  # a slow reader: the gateway must not buffer ahead
        assert size == n_chunks * len(chunk)
        assert digest.hexdigest() == expected
    finally:
        sampling = False
        await sampler
    growth = (peak - baseline) / MB
    print(f"RSS growth {growth:.2f} MB, baseline {baseline / MB:.1f} MB")
    assert growth < 30, f"worker RSS grew by {growth:.1f} MB while streaming 2 x 50 MB"


# ---------------------------------------------------------------- reloads


async def test_twenty_reloads_under_load_lose_no_request(
        gateway_process: StartProcess, upstream: Upstream,
        http: aiohttp.ClientSession) -> None:
    up = await upstream()
    gw = gateway_process(versioned_config(up, 0))
    failures: list[str] = []
    served = 0
    versions_seen: set[str] = set()
    running = True

    async def client() -> None:
        nonlocal served
        async with aiohttp.ClientSession() as session:
            while running:
                try:
                    async with session.get(gw.url + "/load") as resp:
                        await resp.read()
                        if resp.status != 200:
                            failures.append(f"status {resp.status}")
                        versions_seen.add(resp.headers.get("X-Config-Version", "?"))
                        served += 1
                except aiohttp.ClientError as exc:
                    failures.append(repr(exc))

    async def current_version() -> str:
        async with http.get(gw.url + "/probe") as resp:
            return resp.headers.get("X-Config-Version", "?")

    async def wait_version(version: str) -> None:
        deadline = time.monotonic() + 10
        while await current_version() != version:
            assert time.monotonic() < deadline, f"version {version} never went live"
            await asyncio.sleep(0.05)

    clients = [asyncio.create_task(client()) for _ in range(4)]
    try:
        for version in range(1, 21):
            if version == 11:
                # A broken config mid-run: rejected, version 10 keeps serving.
                gw.write_config(versioned_config(up, "broken") | {"routes": [
                    {"name": "all", "match": {"path_prefix": "/"}, "service": "nope"}]})
                deadline = time.monotonic() + 10
                while metric_value(await fetch_metrics(gw, http), "bastion_config_reloads_total",
                                   result="error") < 1:
                    assert time.monotonic() < deadline, "broken config was never rejected"
                    await asyncio.sleep(0.05)
                assert await current_version() == "10"
            gw.write_config(versioned_config(up, version))
            await wait_version(str(version))
    finally:
        running = False
        await asyncio.gather(*clients)
    assert failures == []
    assert served > 100
    assert "broken" not in versions_seen
    # The supervisor counts a reload once every worker has acknowledged it,
    # which can be a moment after the new version is already being served.
    deadline = time.monotonic() + 10
    while True:
        metrics = await fetch_metrics(gw, http)
        successes = metric_value(metrics, "bastion_config_reloads_total", result="success")
        if successes >= 20 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert successes >= 20
    assert metric_value(metrics, "bastion_config_reloads_total", result="error") == 1
    assert "routes[0].service: unknown service 'nope'" in gw.log()


async def test_sighup_reloads_the_file(gateway_process: StartProcess, upstream: Upstream,
                                       http: aiohttp.ClientSession) -> None:
    up = await upstream()
    # A long watch interval: only the signal can explain a quick reload.
    gw = gateway_process(versioned_config(up, "a"), extra_args=["--watch-interval", "3600"])
    gw.write_config(versioned_config(up, "b"))
    assert gw.proc is not None
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        async with http.get(gw.url + "/") as resp:
            if resp.headers["X-Config-Version"] == "b":
                break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_admin_put_config_needs_the_token_and_validates(
        gateway_process: StartProcess, upstream: Upstream,
        http: aiohttp.ClientSession) -> None:
    import yaml

    up = await upstream()
    config = versioned_config(up, 1, admin={"token": "${TEST_ADMIN_TOKEN}"})
    gw = gateway_process(config, env={"TEST_ADMIN_TOKEN": "s3cret-token"},
                         extra_args=["--watch-interval", "3600"])
    new_text = yaml.safe_dump(versioned_config(up, 2, admin={"token": "${TEST_ADMIN_TOKEN}"}))
    async with http.put(gw.admin_url + "/config", data=new_text) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    async with http.put(gw.admin_url + "/config", data=new_text,
                        headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
    auth = {"Authorization": "Bearer s3cret-token"}
    bad = yaml.safe_dump(simple_config(up) | {"routes": [{"name": "x", "service": "missing"}]})
    async with http.put(gw.admin_url + "/config", data=bad, headers=auth) as resp:
        assert resp.status == 400
        issues = (await resp.json())["issues"]
        assert any("routes[0].service" in i for i in issues)
    async with http.get(gw.url + "/") as resp:
        assert resp.headers["X-Config-Version"] == "1"
    async with http.put(gw.admin_url + "/config", data=new_text, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
    # Applied when the PUT returns: every worker has acknowledged it.
    async with http.get(gw.url + "/") as resp:
        assert resp.headers["X-Config-Version"] == "2"
    # GET /config never shows the secret.
    async with http.get(gw.admin_url + "/config") as resp:
        text = await resp.text()
    assert "s3cret-token" not in text
    assert '"token"' in text


async def test_admin_changes_are_refused_without_a_configured_token(
        gateway_process: StartProcess, upstream: Upstream,
        http: aiohttp.ClientSession) -> None:
    gw = gateway_process(simple_config(await upstream()))
    async with http.put(gw.admin_url + "/config", data="{}",
                        headers={"Authorization": "Bearer "}) as resp:
        assert resp.status == 403


async def test_get_config_redacts_credentials(
        gateway_process: StartProcess, upstream: Upstream,
        http: aiohttp.ClientSession) -> None:
    config = simple_config(await upstream())
    config["consumers"] = [{"name": "alice", "credentials": [
        {"id": "k1", "type": "key-auth", "key": "alice-key-123"}]}]
    gw = gateway_process(config)
    async with http.get(gw.admin_url + "/config") as resp:
        data = await resp.json()
    cred = data["config"]["consumers"][0]["credentials"][0]
    assert cred == {"id": "k1", "type": "key-auth", "key": "***"}


# ---------------------------------------------------------------- workers


async def test_killed_worker_is_restarted_and_requests_keep_succeeding(
        gateway_process: StartProcess, upstream: Upstream) -> None:
    gw = gateway_process(simple_config(await upstream()), workers=2)
    workers = worker_processes(gw)
    assert len(workers) == 2
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=5)
    statuses = [await get_fresh(gw.url + "/after-kill") for _ in range(30)]
    assert statuses == [200] * 30
    deadline = time.monotonic() + 15
    while True:
        status = gw.status()
        pids = {w["pid"] for w in status["workers"]}
        if victim.pid not in pids and all(w["ready"] for w in status["workers"]):
            break
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)
    assert sum(w["restarts"] for w in status["workers"]) == 1
    assert len(worker_processes(gw)) == 2
    statuses = [await get_fresh(gw.url + "/after-restart") for _ in range(30)]
    assert statuses == [200] * 30


async def test_metrics_are_summed_across_workers(
        gateway_process: StartProcess, upstream: Upstream,
        http: aiohttp.ClientSession) -> None:
    gw = gateway_process(simple_config(await upstream()), workers=2)
    for _ in range(40):
        assert await get_fresh(gw.url + "/counted") == 200
    # Workers write their counts out about once a second.
    deadline = time.monotonic() + 10
    while True:
        text = await fetch_metrics(gw, http)
        count = metric_value(text, "bastion_requests_total", route="all", status="200")
        if count >= 40 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert count == 40
    assert re.search(r'bastion_request_duration_seconds_bucket\{.*route="all"', text)


async def test_sigterm_drains_in_flight_requests(
        gateway_process: StartProcess, upstream: Upstream) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="finished")

    app = web.Application()
    app.router.add_get("/slow", slow)
    gw = gateway_process(simple_config(await upstream(app)))
    assert gw.proc is not None

    async with aiohttp.ClientSession() as session:
        pending = asyncio.create_task(session.get(gw.url + "/slow"))
        await asyncio.sleep(0.3)
        gw.proc.send_signal(signal.SIGTERM)
        resp = await pending
        assert resp.status == 200
        assert await resp.text() == "finished"
        resp.release()
    deadline = time.monotonic() + 10
    while gw.proc.poll() is None:
        assert time.monotonic() < deadline, "gateway did not exit after draining"
        await asyncio.sleep(0.05)
    assert gw.proc.returncode == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        await get_fresh(gw.url + "/after-exit")


async def test_reload_into_the_builtin_echo_upstream(
        gateway_process: StartProcess, upstream: Upstream,
        http: aiohttp.ClientSession) -> None:
    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="plain upstream")

    app = web.Application()
    app.router.add_get("/{t:.*}", plain)
    gw = gateway_process(simple_config(await upstream(app)))
    async with http.get(gw.url + "/x") as resp:
        assert await resp.text() == "plain upstream"
    gw.write_config(simple_config("builtin:echo"))
    deadline = time.monotonic() + 10
    while True:
        async with http.get(gw.url + "/x") as resp:
            if resp.content_type == "application/json":
                assert (await resp.json())["path"] == "/x"
                break
        assert time.monotonic() < deadline, gw.log()
        await asyncio.sleep(0.05)
    text = await fetch_metrics(gw, http)
    assert metric_value(text, "bastion_config_reloads_total", result="error") == 0
