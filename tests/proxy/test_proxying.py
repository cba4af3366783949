"""Proxying over real sockets: HTTP semantics, limits and failure answers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from tests.conftest import InProcessGateway, free_tcp_port, service, simple_config

Start = Callable[..., Awaitable[InProcessGateway]]
Upstream = Callable[..., Awaitable[str]]


async def raw_exchange(port: int, data: bytes, *, pause: float = 0.0, then: bytes = b"",
                       read_timeout: float = 10.0) -> bytes:
    """Send raw bytes (optionally pause, send more) and read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)
        if then:
            writer.write(then)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), read_timeout)
    finally:
        writer.close()


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def assert_json_error(status: int, body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, body
    data: dict[str, Any] = json.loads(body)
    assert set(data) == {"error", "request_id"}
    assert data["error"] and len(data["request_id"]) == 32
    return data


# --------------------------------------------------------------------- basics


async def test_proxies_method_path_query_and_body(gateway: Start, upstream: Upstream,
                                                  http: aiohttp.ClientSession) -> None:
    gw = await gateway(simple_config(await upstream()))
    url = URL(gw.url + "/a/b%20c?x=1&y=%2F", encoded=True)
    async with http.put(url, data=b"payload") as resp:
        assert resp.status == 200
        echo = await resp.json()
    assert echo["method"] == "PUT"
    assert echo["path"] == "/a/b c"
    assert echo["query"] == "x=1&y=%2F"
    assert echo["body"] == "payload"
    assert echo["headers"]["Content-Length"] == "7"


async def test_request_id_is_set_and_untrusted_ids_replaced(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    gw = await gateway(simple_config(await upstream()))
    async with http.get(gw.url + "/", headers={"X-Request-Id": "forged"}) as resp:
        echo = await resp.json()
        rid = resp.headers["X-Request-Id"]
    assert rid != "forged" and len(rid) == 32
    assert CIMultiDict(echo["headers"])["X-Request-Id"] == rid


async def test_client_keepalive_and_pooled_upstream_connections(
        gateway: Start, upstream: Upstream) -> None:
    peers: set[int] = set()

    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername")[1])
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handler)
    gw = await gateway(simple_config(await upstream(app)))
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as client:
        for _ in range(20):
            async with client.get(gw.url + "/") as resp:
                assert await resp.text() == "ok"
        # One client connection was kept alive for all twenty requests ...
        assert len(connector._conns) <= 1
    # ... and the gateway reused its upstream connection instead of opening twenty.
    assert len(peers) <= 2


# ------------------------------------------------------------- hop-by-hop


async def test_hop_by_hop_headers_are_stripped_both_ways(
        gateway: Start, upstream: Upstream) -> None:
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        seen.update(request.headers)
        return web.Response(text="ok", headers={
            "Connection": "X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "timeout=5",
            "Proxy-Authenticate": "Basic", "X-End-To-End": "kept",
        })

    app = web.Application()
    app.router.add_get("/", handler)
    gw = await gateway(simple_config(await upstream(app)))
    raw = await raw_exchange(gw.port, (
        b"GET / HTTP/1.1\r\nHost: example.test\r\n"
        b"Connection: close, X-Client-Hop\r\nX-Client-Hop: 1\r\nKeep-Alive: 300\r\n"
        b"TE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nProxy-Authorization: Basic eDp5\r\n"
        b"Proxy-Connection: keep-alive\r\nX-End-To-End: kept\r\n\r\n"))
    status, headers, body = parse_response(raw)
    assert body.endswith(b"ok")
    assert status == 200
    lowered = {k.lower() for k in seen}
    for name in ("x-client-hop", "keep-alive", "te", "trailer", "upgrade",
                 "proxy-authorization", "proxy-connection"):
        assert name not in lowered, name
    assert seen["X-End-To-End"] == "kept"
    assert "x-secret-hop" not in headers
    assert "keep-alive" not in headers
    assert "proxy-authenticate" not in headers
    assert headers["x-end-to-end"] == "kept"


# --------------------------------------------------------- client address


@pytest.mark.parametrize(("trusted", "xff", "client_ip", "upstream_xff"), [
    # Untrusted peer: its claims are dropped, it is the client.
    ([], "1.2.3.4", "127.0.0.1", "127.0.0.1"),
    # Trusted peer: the rightmost address it vouches for is the client ...
    (["127.0.0.1/32"], "1.2.3.4, 5.6.7.8", "5.6.7.8", "1.2.3.4, 5.6.7.8, 127.0.0.1"),
    # ... and walking continues through further trusted hops ...
    (["127.0.0.1/32", "5.6.7.0/24"], "1.2.3.4, 5.6.7.8", "1.2.3.4",
     "1.2.3.4, 5.6.7.8, 127.0.0.1"),
    # ... but never trusts the leftmost entry just for being first.
    (["127.0.0.1/32"], "6.6.6.6, 10.0.0.9", "10.0.0.9", "6.6.6.6, 10.0.0.9, 127.0.0.1"),
    # Garbage stops the walk at the last address we could vouch for.
    (["127.0.0.1/32", "5.6.7.0/24"], "nonsense, 5.6.7.8", "5.6.7.8",
     "nonsense, 5.6.7.8, 127.0.0.1"),
])
async def test_client_ip_walks_xff_through_trusted_proxies(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession,
        trusted: list[str], xff: str, client_ip: str, upstream_xff: str) -> None:
    gw = await gateway(simple_config(await upstream(), trusted_proxies=trusted))
    async with http.get(gw.url + "/", headers={"X-Forwarded-For": xff,
                                               "X-Forwarded-Proto": "https"}) as resp:
        echo = await resp.json()
    assert echo["headers"]["X-Real-IP"] == client_ip
    assert echo["headers"]["X-Forwarded-For"] == upstream_xff
    # X-Forwarded-Proto is believed only from a trusted peer.
    assert echo["headers"]["X-Forwarded-Proto"] == ("https" if trusted else "http")
    assert echo["headers"]["X-Forwarded-Host"] == f"127.0.0.1:{gw.port}"


# ----------------------------------------------------------------- limits


async def test_no_route_is_404_json(gateway: Start, upstream: Upstream,
                                    http: aiohttp.ClientSession) -> None:
    config = simple_config(await upstream())
    config["routes"][0]["match"] = {"path_prefix": "/api/"}
    gw = await gateway(config)
    async with http.get(gw.url + "/other") as resp:
        assert_json_error(resp.status, await resp.read(), 404)
        assert resp.headers["Content-Type"] == "application/json"


async def test_url_too_long_is_414(gateway: Start, upstream: Upstream,
                                   http: aiohttp.ClientSession) -> None:
    gw = await gateway(simple_config(await upstream(), limits={"max_url_bytes": 1024}))
    async with http.get(gw.url + "/" + "a" * 1100) as resp:
        assert_json_error(resp.status, await resp.read(), 414)
    # Far past the limit the HTTP parser itself refuses; same answer.
    raw = await raw_exchange(gw.port, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = parse_response(raw)
    assert_json_error(status, body, 414)


async def test_headers_too_large_is_431(gateway: Start, upstream: Upstream,
                                        http: aiohttp.ClientSession) -> None:
    gw = await gateway(simple_config(await upstream(), limits={"max_header_bytes": 4096,
                                                               "max_headers": 20}))
    # Many headers, each small, adding up past the limit.
    many = {f"X-H{i}": "v" * 300 for i in range(15)}
    async with http.get(gw.url + "/", headers=many) as resp:
        assert_json_error(resp.status, await resp.read(), 431)
    # One header longer than the limit: refused by the parser, same answer.
    raw = await raw_exchange(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 6000
                             + b"\r\n\r\n")
    status, _, body = parse_response(raw)
    assert_json_error(status, body, 431)
    # Too many headers.
    too_many = {f"X-N{i}": "1" for i in range(25)}
    async with http.get(gw.url + "/", headers=too_many) as resp:
        assert_json_error(resp.status, await resp.read(), 431)


async def test_body_too_large_is_413(gateway: Start, upstream: Upstream,
                                     http: aiohttp.ClientSession) -> None:
    hits = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        await request.read()
        return web.Response(text="ok")

    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{t:.*}", handler)
    gw = await gateway(simple_config(await upstream(app), limits={"max_body_bytes": 1000}))
    # Declared too large: refused before anything is read or sent upstream.
    async with http.post(gw.url + "/", data=b"x" * 2000) as resp:
        assert_json_error(resp.status, await resp.read(), 413)
    assert hits == 0

    # Chunked, discovered while streaming.
    async def chunks() -> Any:
        for _ in range(20):
            yield b"y" * 200

    async with http.post(gw.url + "/", data=chunks()) as resp:
        assert_json_error(resp.status, await resp.read(), 413)
    # Within the limit passes.
    async with http.post(gw.url + "/", data=b"z" * 900) as resp:
        assert resp.status == 200


async def test_slow_request_body_is_408(gateway: Start, upstream: Upstream) -> None:
    gw = await gateway(simple_config(await upstream(),
                                     limits={"client_body_timeout": "300ms"}))
    raw = await raw_exchange(gw.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                             b"only ten b", read_timeout=5)
    status, _, body = parse_response(raw)
    assert_json_error(status, body, 408)


async def test_slow_request_headers_are_408(gateway: Start, upstream: Upstream) -> None:
    gw = await gateway(simple_config(await upstream(),
                                     limits={"client_header_timeout": "300ms"}))
    raw = await raw_exchange(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow", read_timeout=5)
    status, _, body = parse_response(raw)
    assert_json_error(status, body, 408)


async def test_header_timeout_does_not_cut_slow_upstreams(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.6)
        return web.Response(text="late but fine")

    app = web.Application()
    app.router.add_get("/", slow)
    gw = await gateway(simple_config(await upstream(app),
                                     limits={"client_header_timeout": "200ms"}))
    async with http.get(gw.url + "/") as resp:
        assert resp.status == 200
        assert await resp.text() == "late but fine"


async def test_malformed_request_is_400_json(gateway: Start, upstream: Upstream) -> None:
    gw = await gateway(simple_config(await upstream()))
    raw = await raw_exchange(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    status, _, body = parse_response(raw)
    assert_json_error(status, body, 400)


# -------------------------------------------------------- upstream failures


async def test_upstream_refused_is_502(gateway: Start, http: aiohttp.ClientSession) -> None:
    dead = f"http://127.0.0.1:{free_tcp_port()}"
    gw = await gateway(simple_config(dead))
    async with http.get(gw.url + "/") as resp:
        assert_json_error(resp.status, await resp.read(), 502)


async def test_upstream_timeout_is_504(gateway: Start, upstream: Upstream,
                                       http: aiohttp.ClientSession) -> None:
    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/", stall)
    config = simple_config(await upstream(app))
    config["services"]["up"].update(read_timeout="300ms", retries={"attempts": 0})
    gw = await gateway(config)
    async with http.get(gw.url + "/") as resp:
        assert_json_error(resp.status, await resp.read(), 504)


async def test_retries_connect_failures_and_ejects_dead_endpoint(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    live = await upstream()
    dead = f"http://127.0.0.1:{free_tcp_port()}"
    config = simple_config(live)
    config["services"]["up"] = service(dead, live, retries={"attempts": 1},
                                       health={"max_failures": 2, "eject_seconds": 30})
    gw = await gateway(config)
    # POST too: nothing reached the dead endpoint, so a retry is always safe.
    for i in range(10):
        method = "POST" if i % 2 else "GET"
        async with http.request(method, gw.url + "/", data=b"body") as resp:
            assert resp.status == 200, await resp.text()
    metrics = gw.gateway.metrics
    connect_errors = metrics.upstream_errors.labels("up", "connect")._value.get()
    ejections = metrics.ejections.labels("up")._value.get()
    # Two failures ejected it; after that it was not tried again.
    assert ejections == 1
    assert connect_errors == 2


async def test_idempotent_requests_retry_on_5xx_and_resets_but_posts_do_not(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    calls: dict[str, int] = {"flaky": 0, "good": 0}

    async def flaky(request: web.Request) -> web.Response:
        calls["flaky"] += 1
        await request.read()
        return web.Response(status=503, text="overloaded")

    async def good(request: web.Request) -> web.Response:
        calls["good"] += 1
        await request.read()
        return web.Response(text="fine")

    apps = []
    for h in (flaky, good):
        app = web.Application()
        app.router.add_route("*", "/", h)
        apps.append(await upstream(app))
    config = simple_config(apps[0])
    config["services"]["up"] = service(*apps, retries={"attempts": 1},
                                       health={"max_failures": 100})
    gw = await gateway(config)
    for _ in range(4):
        async with http.get(gw.url + "/") as resp:
            assert resp.status == 200
    # A POST that reached an upstream is not repeated: its answer comes back.
    statuses = []
    for _ in range(4):
        async with http.post(gw.url + "/", data=b"once") as resp:
            statuses.append(resp.status)
    assert 503 in statuses and 200 in statuses
    assert calls["flaky"] + calls["good"] == 4 + 2 + 4  # 2 GETs were retried


def counting_app(counts: dict[str, int], name: str) -> web.Application:
    """An upstream that counts its hits in ``counts[name]``."""

    async def h(request: web.Request) -> web.Response:
        counts[name] += 1
        return web.Response(text=name)

    app = web.Application()
    app.router.add_get("/", h)
    return app


async def test_weighted_load_balancing_follows_weights(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    counts = {"a": 0, "b": 0}
    a, b = await upstream(counting_app(counts, "a")), await upstream(counting_app(counts, "b"))
    config = simple_config(a)
    config["services"]["up"] = {"endpoints": [{"url": a, "weight": 3}, {"url": b, "weight": 1}],
                                "load_balancing": "weighted"}
    gw = await gateway(config)
    for _ in range(40):
        async with http.get(gw.url + "/") as resp:
            assert resp.status == 200
    assert counts == {"a": 30, "b": 10}


async def test_round_robin_spreads_evenly(gateway: Start, upstream: Upstream,
                                          http: aiohttp.ClientSession) -> None:
    counts = {"a": 0, "b": 0}
    a, b = await upstream(counting_app(counts, "a")), await upstream(counting_app(counts, "b"))
    config = simple_config(a)
    config["services"]["up"] = service(a, b)
    gw = await gateway(config)
    for _ in range(20):
        async with http.get(gw.url + "/") as resp:
            assert resp.status == 200
    assert counts == {"a": 10, "b": 10}


async def test_upstream_dying_mid_body_truncates_the_client_response(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    async def liar(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "1000"})
        await resp.prepare(request)
        await resp.write(b"x" * 100)
        assert request.transport is not None
        request.transport.close()
        return resp

    app = web.Application()
    app.router.add_get("/", liar)
    gw = await gateway(simple_config(await upstream(app)))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(gw.url + "/") as resp:
            assert resp.status == 200
            await resp.read()


# --------------------------------------------------------------- streaming


async def test_sse_events_arrive_as_the_upstream_writes_them(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    first_seen = asyncio.Event()
    upstream_waited: list[bool] = []

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: first\n\n")
        # The upstream does not go on until the client has the first event:
        # if the gateway buffered, this wait would time out.
        try:
            await asyncio.wait_for(first_seen.wait(), 5)
            upstream_waited.append(True)
        except TimeoutError:
            upstream_waited.append(False)
        for i in range(3):
            await resp.write(f"data: more {i}\n\n".encode())
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/stream", events)
    gw = await gateway(simple_config(await upstream(app)))
    received = b""
    async with http.get(gw.url + "/stream") as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        async for chunk in resp.content.iter_any():
            received += chunk
            if b"first" in received:
                first_seen.set()
    assert upstream_waited == [True]
    assert received == b"data: first\n\n" + b"".join(
        f"data: more {i}\n\n".encode() for i in range(3))


async def test_websocket_upgrade_passes_through(gateway: Start, upstream: Upstream,
                                                http: aiohttp.ClientSession) -> None:
    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat.v1",))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_echo)
    gw = await gateway(simple_config(await upstream(app)))
    async with http.ws_connect(gw.url + "/ws", protocols=("chat.v1",)) as ws:
        assert ws.protocol == "chat.v1"
        await ws.send_str("hello")
        assert (await ws.receive(timeout=5)).data == "echo:hello"
        await ws.send_bytes(b"\x01\x02\x03")
        assert (await ws.receive(timeout=5)).data == b"\x03\x02\x01"
        await ws.close()


async def test_head_and_204_have_no_body(gateway: Start, upstream: Upstream,
                                         http: aiohttp.ClientSession) -> None:
    async def nothing(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/none", nothing)
    app.router.add_get("/", hello)
    gw = await gateway(simple_config(await upstream(app)))
    async with http.get(gw.url + "/none") as resp:
        assert resp.status == 204
        assert await resp.read() == b""
    async with http.head(gw.url + "/") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == "5"
        assert await resp.read() == b""


async def test_compressed_responses_pass_through_untouched(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    import gzip

    blob = gzip.compress(b"hello " * 1000)

    async def gz(request: web.Request) -> web.Response:
        return web.Response(body=blob, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "text/plain"})

    app = web.Application()
    app.router.add_get("/", gz)
    gw = await gateway(simple_config(await upstream(app)))
    async with http.get(gw.url + "/", headers={"Accept-Encoding": "gzip"}) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert await resp.read() == blob


# --------------------------------------------------------------- access log


async def test_access_log_has_one_json_line_per_request(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession,
        tmp_path: Any) -> None:
    log_file = tmp_path / "access.log"
    config = simple_config(await upstream(), access_log={"path": str(log_file)})
    config["routes"][0]["match"] = {"path_prefix": "/api/"}
    gw = await gateway(config)
    async with http.post(gw.url + "/api/items?token=secret", data=b"12345") as resp:
        rid = resp.headers["X-Request-Id"]
    async with http.get(gw.url + "/nowhere") as resp:
        assert resp.status == 404
    first, second = (json.loads(line) for line in log_file.read_text().splitlines())
    assert first["request_id"] == rid
    assert first["method"] == "POST" and first["path"] == "/api/items"
    assert first["route"] == "all" and first["status"] == 200
    assert first["client_ip"] == "127.0.0.1"
    assert first["bytes_in"] == 5 and first["bytes_out"] > 0
    assert first["upstream"].startswith("http://127.0.0.1:")
    assert first["duration_ms"] >= first["upstream_ms"] > 0
    assert "secret" not in json.dumps(first)  # the query string is never logged
    assert second["status"] == 404 and second["route"] is None
    assert second["error"] == "no route matches this request"


async def test_expect_100_continue_is_answered_by_the_gateway(
        gateway: Start, upstream: Upstream) -> None:
    gw = await gateway(simple_config(await upstream()))
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100")
        writer.write(b"hello")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        echo = json.loads(await reader.readexactly(length))
        assert echo["body"] == "hello"
        assert "Expect" not in echo["headers"]
    finally:
        writer.close()


# ------------------------------------------------------------ path handling


@pytest.mark.parametrize(("raw", "route", "upstream_path"), [
    ("/x/%2e%2e/admin/panel", "admin", "/admin/panel"),
    ("/%61dmin/panel", "admin", "/admin/panel"),
    ("//admin//panel", "admin", "/admin/panel"),
    # An encoded slash is data, not a separator, for the router and upstream alike.
    ("/admin/..%2fpublic", "admin", "/admin/..%2Fpublic"),
    ("/public/..%2Fadmin", "public", "/public/..%2Fadmin"),
    ("/public/a%20b?q=%2F..", "public", "/public/a%20b?q=%2F.."),
])
async def test_router_and_upstream_see_the_same_normalized_path(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession,
        raw: str, route: str, upstream_path: str) -> None:
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.Response(text=request.headers["X-Route"])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    up = await upstream(app)
    config = simple_config(up)
    config["routes"] = [
        {"name": name, "match": {"path_prefix": f"/{name}/"}, "service": "up",
         "plugins": {"headers": {"request": {"set": {"X-Route": name}}}}}
        for name in ("admin", "public")
    ]
    gw = await gateway(config)
    async with http.get(URL(gw.url + raw, encoded=True)) as resp:
        assert resp.status == 200
        assert await resp.text() == route
    assert seen == [upstream_path]


async def test_forwarded_header_from_untrusted_peers_is_dropped(
        gateway: Start, upstream: Upstream, http: aiohttp.ClientSession) -> None:
    gw = await gateway(simple_config(await upstream()))
    async with http.get(gw.url + "/", headers={"Forwarded": "for=6.6.6.6;proto=https"}) as resp:
        echo = await resp.json()
    assert "Forwarded" not in echo["headers"]


@pytest.mark.parametrize(("request_line", "status", "path"), [
    (b"CONNECT 1.2.3.4:80 HTTP/1.1", 400, None),
    (b"GET http://example.test/a/b?x=1 HTTP/1.1", 200, "/a/b"),
    (b"GET http://example.test HTTP/1.1", 200, "/"),
])
async def test_request_targets_that_are_not_paths(gateway: Start, upstream: Upstream,
                                                  request_line: bytes, status: int,
                                                  path: str | None) -> None:
    gw = await gateway(simple_config(await upstream()))
    raw = await raw_exchange(gw.port, request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    got, _, body = parse_response(raw)
    assert got == status, body
    if path is not None:
        assert json.loads(body)["path"] == path


async def test_parse_errors_do_not_echo_the_request(gateway: Start, upstream: Upstream) -> None:
    gw = await gateway(simple_config(await upstream()))
    raw = await raw_exchange(gw.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                             b"Connection: close\r\n\r\nhello" + b"A" * 20000)
    status, _, body = parse_response(raw)
    assert_json_error(status, body, 400)
    assert len(body) < 400


async def test_a_compressed_request_body_is_forwarded_as_sent(
        gateway: Any, upstream: Any, http: aiohttp.ClientSession) -> None:
    import gzip

    async def raw(request: web.Request) -> web.Response:
        data = await request.read()
        return web.json_response({"encoding": request.headers.get("Content-Encoding"),
                                  "size": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest()})

    # An upstream that reads the body as it arrives (aiohttp would decode it).
    app = web.Application(handler_args={"auto_decompress": False})
    app.router.add_post("/x", raw)
    url = await upstream(app)
    gw = await gateway(simple_config(url))
    body = gzip.compress(b'{"hello": "world"}')
    async with http.post(gw.url + "/x", data=body,
                         headers={"Content-Encoding": "gzip",
                                  "Content-Type": "application/json"}) as resp:
        echo = await resp.json()
    assert echo == {"encoding": "gzip", "size": len(body),
                    "sha256": hashlib.sha256(body).hexdigest()}
