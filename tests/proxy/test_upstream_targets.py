"""Plugins that choose the upstream per request (flow.upstream_targets), with failover."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict

from proxy.flow import Flow, LocalResponse, UpstreamTarget
from proxy.plugin import Group, Plugin, register_plugin
from tests.conftest import InProcessGateway, free_tcp_port, service

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]


class TargetsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    targets: list[dict[str, Any]]
    retry_statuses: list[int] = [429, 503]


@register_plugin
class Targets(Plugin[TargetsConfig]):
    """Sends each request to the configured targets in order, rewriting the JSON body."""

    name = "test-targets"
    group = Group.AI
    config_model = TargetsConfig
    answered: ClassVar[list[str]] = []

    def __init__(self, config: TargetsConfig, ctx: Any) -> None:
        super().__init__(config, ctx)
        self.request_body_limit = 1 << 20

    async def on_request_headers(self, flow: Flow) -> None:
        flow.upstream_retry_statuses = frozenset(self.config.retry_statuses)
        flow.upstream_targets = [UpstreamTarget(**t) for t in self.config.targets]

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        if end and flow.upstream_targets:
            original = json.loads(chunk or b"{}")
            for target in flow.upstream_targets:
                target.body = json.dumps({**original, "model": target.meta}).encode()
        return chunk

    async def on_response_headers(self, flow: Flow) -> None:
        assert flow.upstream_target is not None
        flow.response_headers["X-Answered-By"] = flow.upstream_target.name


def provider(name: str, status: int = 200) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({
            "provider": name, "path": request.path_qs, "host": request.headers["Host"],
            "auth": request.headers.get("Authorization"),
            "client_key": request.headers.get("X-Client-Key"),
            "body": json.loads(body) if body else None}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def start(gateway: GatewayFactory, targets: list[dict[str, Any]]) -> InProcessGateway:
    return await gateway({
        "access_log": {"enabled": False},
        "services": {"none": service(f"http://127.0.0.1:{free_tcp_port()}")},
        "routes": [{"name": "ai", "match": {"path_prefix": "/"}, "service": "none",
                    "plugins": {"test-targets": {"targets": targets}}}],
    })


async def test_first_target_answers_with_its_path_headers_and_body(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    a = await upstream(provider("a"))
    gw = await start(gateway, [
        {"url": a + "/base", "name": "a", "path": "/v1/chat?x=1", "meta": "model-a",
         "headers": {"Authorization": "Bearer provider-key"}, "remove_headers": ["X-Client-Key"]},
    ])
    async with http.post(gw.url + "/v1/chat/completions", json={"messages": [], "model": "m"},
                         headers={"X-Client-Key": "secret"}) as resp:
        assert resp.status == 200
        assert resp.headers["X-Answered-By"] == "a"
        got = await resp.json()
    assert got["path"] == "/base/v1/chat?x=1"
    assert got["host"] == a.removeprefix("http://")
    assert got["auth"] == "Bearer provider-key"
    assert got["client_key"] is None
    assert got["body"] == {"messages": [], "model": "model-a"}


async def test_failover_on_connection_failure_and_retry_status(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    busy = await upstream(provider("busy", status=429))
    good = await upstream(provider("good"))
    dead = f"http://127.0.0.1:{free_tcp_port()}"
    gw = await start(gateway, [
        {"url": dead, "name": "dead", "meta": "m1"},
        {"url": busy, "name": "busy", "meta": "m2"},
        {"url": good, "name": "good", "meta": "m3"},
    ])
    async with http.post(gw.url + "/v1/x", json={"q": 1}) as resp:
        assert resp.status == 200
        assert resp.headers["X-Answered-By"] == "good"
        assert (await resp.json())["body"] == {"q": 1, "model": "m3"}


async def test_the_last_targets_answer_stands(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    busy = await upstream(provider("busy", status=429))
    dead = f"http://127.0.0.1:{free_tcp_port()}"
    gw = await start(gateway, [{"url": dead, "name": "dead"}, {"url": busy, "name": "busy"}])
    async with http.post(gw.url + "/v1/x", json={}) as resp:
        # Out of targets: the 429 goes to the client as it is.
        assert resp.status == 429 and resp.headers["X-Answered-By"] == "busy"
    gw = await start(gateway, [{"url": busy, "name": "busy"}, {"url": dead, "name": "dead"}])
    async with http.post(gw.url + "/v1/x", json={}) as resp:
        assert resp.status == 502


class ShapedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@register_plugin
class Shaped(Plugin[ShapedConfig]):
    """Answers gateway errors in its own shape and closes broken streams with an event."""

    name = "test-shaped"
    config_model = ShapedConfig

    async def on_request_headers(self, flow: Flow) -> None:
        def body(status: int, message: str) -> LocalResponse:
            data = json.dumps({"error": {"message": message, "code": status}}).encode()
            return LocalResponse(status, data, CIMultiDict({"Content-Type": "application/json"}))
        flow.error_body = body

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        if end and flow.upstream_error is not None:
            return b"data: {\"error\": \"upstream lost\"}\n\n"
        return chunk


async def test_a_plugin_shapes_gateway_errors_and_closes_broken_streams(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: one\n\n")
        assert request.transport is not None
        request.transport.close()  # the connection drops mid-stream
        return resp

    app = web.Application()
    app.router.add_get("/stream", broken)
    up = await upstream(app)
    gw = await gateway({
        "access_log": {"enabled": False},
        "services": {"up": service(up), "dead": service(f"http://127.0.0.1:{free_tcp_port()}")},
        "routes": [
            {"name": "dead", "match": {"path_prefix": "/dead"}, "service": "dead",
             "plugins": {"test-shaped": {}}},
            {"name": "up", "match": {"path_prefix": "/"}, "service": "up",
             "plugins": {"test-shaped": {}}},
        ],
    })
    async with http.get(gw.url + "/dead") as resp:
        assert resp.status == 502
        assert (await resp.json())["error"]["code"] == 502
    async with http.get(gw.url + "/stream") as resp:
        body = await resp.read()  # ends cleanly: no ClientPayloadError
    assert body == b'data: one\n\ndata: {"error": "upstream lost"}\n\n'
