"""The plugin contract, exercised with small test plugins through an in-process gateway."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from proxy.config import ConfigError, parse_config
from proxy.flow import Flow
from proxy.gateway import Gateway
from proxy.plugin import (
    EmptyConfig,
    Group,
    Plugin,
    PluginContext,
    available_plugins,
    plugin_class,
    register_plugin,
)
from tests.conftest import InProcessGateway, free_tcp_port, service

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]

# What the test plugins saw, in order; cleared around every test.
EVENTS: list[tuple[Any, ...]] = []
# Events a test plugin may wait on, by name; made fresh for every test.
GATES: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    EVENTS.clear()
    GATES.clear()
    yield
    EVENTS.clear()
    GATES.clear()


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------
# Test plugins


def _tracer(plugin_name: str, plugin_group: Group, plugin_priority: int) -> None:
    """A plugin that appends its name to the X-Trace request header."""

    class Tracer(Plugin[EmptyConfig]):
        name = plugin_name
        group = plugin_group
        priority = plugin_priority

        async def on_request_headers(self, flow: Flow) -> None:
            prev = flow.request_headers.get("X-Trace")
            flow.request_headers["X-Trace"] = f"{prev},{self.name}" if prev else self.name
            EVENTS.append(("request_headers", self.name))

    register_plugin(Tracer)


for _name, _group, _priority in [
    ("t_order_authn", Group.AUTHN, 0), ("t_order_sec", Group.SECURITY, 0),
    ("t_order_hi", Group.TRAFFIC, 10), ("t_order_x", Group.TRAFFIC, 0),
    ("t_order_y", Group.TRAFFIC, 0), ("t_order_z", Group.TRAFFIC, 0),
    ("t_order_ai", Group.AI, 0), ("t_later", Group.TRAFFIC, 0),
]:
    _tracer(_name, _group, _priority)


class _Inner(_Frozen):
    x: int = 0
    y: int = 0


class CfgConfig(_Frozen):
    a: _Inner = _Inner()
    tags: list[str] = []


@register_plugin
class CfgPlugin(Plugin[CfgConfig]):
    """Shows the upstream the config it was built with."""

    name = "t_cfg"
    config_model = CfgConfig

    async def on_request_headers(self, flow: Flow) -> None:
        flow.request_headers["X-Cfg"] = self.config.model_dump_json()


@register_plugin
class GatePlugin(Plugin[EmptyConfig]):
    """Answers 403 itself when the request carries X-Block."""

    name = "t_gate"
    group = Group.AUTHN

    async def on_request_headers(self, flow: Flow) -> None:
        if "X-Block" in flow.request_headers:
            flow.respond(403, {"blocked": True}, headers={"X-Gate": "1"})


class BodyConfig(_Frozen):
    limit: int | None = None
    overflow: Literal["reject", "truncate"] = "reject"
    transform: Literal["none", "redact", "upper"] = "none"


class _BodyRecorder(Plugin[BodyConfig]):
    config_model = BodyConfig

    def __init__(self, config: BodyConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.request_body_limit = config.limit
        self.request_body_overflow = config.overflow

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        EVENTS.append((self.name, chunk, end))
        if self.config.transform == "redact":
            return chunk.replace(b"secret", b"[redacted]")
        if self.config.transform == "upper":
            return chunk.upper()
        return chunk


@register_plugin
class BodyA(_BodyRecorder):
    name = "t_body_a"
    priority = 10


@register_plugin
class BodyB(_BodyRecorder):
    name = "t_body_b"


class RespConfig(_Frozen):
    buffer: int | None = None
    overflow: Literal["reject", "truncate"] = "reject"
    transform: Literal["double_a", "cat_to_tiger"] = "double_a"


@register_plugin
class RespBodyPlugin(Plugin[RespConfig]):
    """Rewrites the response body, streaming or (``buffer``) all at once."""

    name = "t_resp_body"
    config_model = RespConfig

    async def on_response_headers(self, flow: Flow) -> None:
        if self.config.buffer is not None:
            flow.buffer_response_body(self.config.buffer, self.config.overflow)

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        EVENTS.append((self.name, chunk, end))
        if self.config.transform == "cat_to_tiger":
            return chunk.replace(b"cat", b"tiger")
        return chunk.replace(b"a", b"aa")


@register_plugin
class TrailerPlugin(Plugin[EmptyConfig]):
    """Appends a trailer to the response body when it ends."""

    name = "t_trailer"

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        EVENTS.append((self.name, chunk, end))
        ends = flow.state(self, lambda: [0])
        if not end:
            return chunk
        ends[0] += 1
        # Guarded so that a gateway calling end=True twice fails the test, not hangs it.
        return chunk + b"<END>" if ends[0] == 1 else chunk


@register_plugin
class MaskPlugin(Plugin[EmptyConfig]):
    """Replaces an upstream server error with its own answer."""

    name = "t_mask"

    async def on_response_headers(self, flow: Flow) -> None:
        if flow.response_status >= 500:
            flow.respond_error(503, "the service is unavailable")


def _state_plugin(plugin_name: str) -> None:
    class StatePlugin(Plugin[EmptyConfig]):
        name = plugin_name

        async def on_request_headers(self, flow: Flow) -> None:
            flow.state(self, list[str]).append(self.name)

        async def on_response_headers(self, flow: Flow) -> None:
            seen = flow.state(self, list[str])
            flow.response_headers[f"X-State-{self.name}"] = ",".join(seen)

    register_plugin(StatePlugin)


_state_plugin("t_state_a")
_state_plugin("t_state_b")


@register_plugin
class DoneRecorder(Plugin[EmptyConfig]):
    name = "t_done"

    async def on_done(self, flow: Flow) -> None:
        EVENTS.append(("done", flow.path, flow.response_status, flow.request_id))


@register_plugin
class DoneFails(Plugin[EmptyConfig]):
    name = "t_done_fails"
    group = Group.AUTHN
    priority = 100

    async def on_done(self, flow: Flow) -> None:
        raise RuntimeError("on_done broke")


class LifeConfig(_Frozen):
    tag: str = ""
    fail_start: bool = False


@register_plugin
class LifePlugin(Plugin[LifeConfig]):
    """Records start/close; ``/slow`` requests wait on GATES["release"]."""

    name = "t_life"
    config_model = LifeConfig

    async def start(self) -> None:
        if self.config.fail_start:
            raise RuntimeError("no licence for this plugin")
        EVENTS.append(("start", self.config.tag, id(self)))

    async def close(self) -> None:
        EVENTS.append(("close", self.config.tag, id(self)))
        if "closed" in GATES:
            GATES["closed"].set()

    async def on_request_headers(self, flow: Flow) -> None:
        if flow.path == "/slow":
            GATES["entered"].set()
            await GATES["release"].wait()


@register_plugin
class FailStart(Plugin[EmptyConfig]):
    name = "t_fail_start"

    async def start(self) -> None:
        raise RuntimeError("no licence for this plugin")


class RaiseConfig(_Frozen):
    hook: Literal["on_request_headers", "on_request_body", "on_response_headers",
                  "on_response_body"]


@register_plugin
class RaisePlugin(Plugin[RaiseConfig]):
    """Raises in one hook for requests to ``/boom``."""

    name = "t_raise"
    config_model = RaiseConfig

    def __init__(self, config: RaiseConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        if config.hook == "on_request_body":
            self.request_body_limit = 1024

    def _maybe_raise(self, flow: Flow, hook: str) -> None:
        if hook == self.config.hook and flow.path == "/boom":
            raise RuntimeError("kaboom")

    async def on_request_headers(self, flow: Flow) -> None:
        self._maybe_raise(flow, "on_request_headers")

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        self._maybe_raise(flow, "on_request_body")
        return chunk

    async def on_response_headers(self, flow: Flow) -> None:
        self._maybe_raise(flow, "on_response_headers")

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        self._maybe_raise(flow, "on_response_body")
        return chunk


# ---------------------------------------------------------------------------
# Helpers


def route(name: str, prefix: str, plugins: dict[str, Any] | None = None,
          svc: str = "up") -> dict[str, Any]:
    return {"name": name, "match": {"path_prefix": prefix}, "service": svc,
            "plugins": plugins or {}}


def config(upstream_url: str, routes: list[dict[str, Any]],
           plugins: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"access_log": {"enabled": False}, "services": {"up": service(upstream_url)},
            "routes": routes, "plugins": plugins or {}, **extra}


def yaml_text(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump({"listeners": [{"address": "127.0.0.1:0"}], **cfg}, sort_keys=False)


class CountingUpstream:
    """The echo answer, plus a count of the requests that reached it."""

    def __init__(self) -> None:
        self.hits: list[str] = []

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.hits.append(request.path)
            body = await request.read()
            return web.json_response({
                "path": request.path,
                "headers": dict(request.headers),
                "body": body.decode("latin-1"),
                "body_bytes": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            })

        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


@pytest.fixture
async def counting(upstream: UpstreamFactory) -> tuple[CountingUpstream, str]:
    counter = CountingUpstream()
    return counter, await upstream(counter.app())


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """A request body sent in several chunks (chunked transfer encoding)."""
    for part in parts:
        yield part
        await asyncio.sleep(0.01)


def streaming_app(*parts: bytes, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Application:
    """An upstream answering every request with ``parts``, flushed one by one."""

    async def handle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=status, headers=headers)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in parts:
            await resp.write(part)
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def body_events(name: str) -> list[tuple[bytes, bool]]:
    return [(e[1], e[2]) for e in EVENTS if e[0] == name]


async def assert_json_error(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/json")
    data: dict[str, Any] = await resp.json()
    assert set(data) == {"error", "request_id"}
    assert data["request_id"] == resp.headers["X-Request-Id"]
    return data


# ---------------------------------------------------------------------------
# Order, inheritance, switching off


async def test_plugins_run_by_group_then_priority_then_config_order(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    gw = await gateway(config(await upstream(), [
        route("r", "/", {"t_order_z": {}, "t_order_authn": {}, "t_order_x": {},
                         "t_order_sec": {}}),
    ], plugins={"t_order_y": {}, "t_order_ai": {}, "t_order_hi": {}}))
    async with http.get(gw.url + "/") as resp:
        seen = (await resp.json())["headers"]["X-Trace"]
    # AUTHN, SECURITY, TRAFFIC (priority 10 first, then globals before the
    # route's own, each in the order written), AI.
    assert seen.split(",") == ["t_order_authn", "t_order_sec", "t_order_hi", "t_order_y",
                               "t_order_z", "t_order_x", "t_order_ai"]


async def test_route_config_is_deep_merged_over_global(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    gw = await gateway(config(await upstream(), [
        route("override", "/override", {"t_cfg": {"a": {"y": 3}, "tags": ["route"]}}),
        route("inherit", "/"),
    ], plugins={"t_cfg": {"a": {"x": 1, "y": 2}, "tags": ["global", "more"]}}))

    async def cfg_seen(path: str) -> Any:
        async with http.get(gw.url + path) as resp:
            return json.loads((await resp.json())["headers"]["X-Cfg"])

    # Mappings merge key by key; anything else (a list) is replaced whole.
    assert await cfg_seen("/override") == {"a": {"x": 1, "y": 3}, "tags": ["route"]}
    assert await cfg_seen("/") == {"a": {"x": 1, "y": 2}, "tags": ["global", "more"]}


async def test_a_route_can_switch_a_global_plugin_off_and_on(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    url = await upstream()
    gw = await gateway(config(url, [
        route("false", "/false", {"t_cfg": False}),
        route("enabled-false", "/enabled-false", {"t_cfg": {"enabled": False}}),
        route("on", "/"),
    ], plugins={"t_cfg": {"a": {"x": 1}}}))
    gw2 = await gateway(config(url, [
        route("enabled-true", "/enabled-true", {"t_cfg": {"enabled": True, "a": {"y": 2}}}),
        route("true", "/true", {"t_cfg": True}),
        route("off", "/"),
    ], plugins={"t_cfg": {"enabled": False, "a": {"x": 1}}}))

    async def cfg_seen(base: str, path: str) -> Any:
        async with http.get(base + path) as resp:
            value = (await resp.json())["headers"].get("X-Cfg")
            return json.loads(value)["a"] if value else None

    assert await cfg_seen(gw.url, "/false") is None
    assert await cfg_seen(gw.url, "/enabled-false") is None
    assert await cfg_seen(gw.url, "/") == {"x": 1, "y": 0}
    # Off globally, on where a route asks for it, still inheriting the global config.
    assert await cfg_seen(gw2.url, "/enabled-true") == {"x": 1, "y": 2}
    assert await cfg_seen(gw2.url, "/true") == {"x": 1, "y": 0}
    assert await cfg_seen(gw2.url, "/") is None


# ---------------------------------------------------------------------------
# Local answers


async def test_a_local_answer_skips_later_plugins_and_the_upstream(
        gateway: GatewayFactory, counting: tuple[CountingUpstream, str],
        http: aiohttp.ClientSession) -> None:
    counter, url = counting
    gw = await gateway(config(url, [route("r", "/", {"t_later": {}, "t_gate": {}, "t_done": {}})]))
    async with http.get(gw.url + "/private", headers={"X-Block": "1"}) as resp:
        assert resp.status == 403
        assert await resp.json() == {"blocked": True}
        assert resp.headers["X-Gate"] == "1"
        request_id = resp.headers["X-Request-Id"]
    assert counter.hits == []
    assert ("request_headers", "t_later") not in EVENTS
    assert ("done", "/private", 403, request_id) in EVENTS

    async with http.get(gw.url + "/open") as resp:
        assert resp.status == 200
    assert counter.hits == ["/open"]
    assert ("request_headers", "t_later") in EVENTS


async def test_a_local_answer_from_response_headers_replaces_the_upstreams(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    url = await upstream(streaming_app(b"Traceback: secret internals", status=500,
                                       headers={"X-Upstream-Secret": "s3cr3t"}))
    gw = await gateway(config(url, [route("r", "/", {"t_mask": {}})]))
    async with http.get(gw.url + "/") as resp:
        data = await assert_json_error(resp, 503)
        assert data["error"] == "the service is unavailable"
        assert "X-Upstream-Secret" not in resp.headers
    # The connection to the upstream was released: the next request works.
    async with http.get(gw.url + "/") as resp:
        assert resp.status == 503


# ---------------------------------------------------------------------------
# Request bodies


async def test_buffering_plugins_get_the_whole_body_once(
        gateway: GatewayFactory, counting: tuple[CountingUpstream, str],
        http: aiohttp.ClientSession) -> None:
    _, url = counting
    gw = await gateway(config(url, [route("r", "/", {
        "t_body_a": {"limit": 1024, "transform": "redact"},
        "t_body_b": {"limit": 64},
    })]))
    parts = (b"user=alice&", b"password=secret", b"&note=" + b"n" * 20)
    body = b"".join(parts)
    async with http.post(gw.url + "/", data=chunks(*parts)) as resp:
        assert resp.status == 200
        seen = await resp.json()
    rewritten = body.replace(b"secret", b"[redacted]")
    assert body_events("t_body_a") == [(body, True)]
    assert body_events("t_body_b") == [(rewritten, True)]  # after t_body_a (priority)
    assert seen["body"] == rewritten.decode()
    assert seen["headers"]["Content-Length"] == str(len(rewritten))
    assert "Transfer-Encoding" not in seen["headers"]


async def test_a_body_over_the_limit_is_rejected_with_413(
        gateway: GatewayFactory, counting: tuple[CountingUpstream, str],
        http: aiohttp.ClientSession) -> None:
    counter, url = counting
    gw = await gateway(config(url, [route("r", "/", {"t_body_a": {"limit": 100}})]))
    async with http.post(gw.url + "/", data=b"x" * 101) as resp:
        data = await assert_json_error(resp, 413)
        assert "limit" in data["error"]
    async with http.post(gw.url + "/", data=chunks(b"x" * 60, b"x" * 60)) as resp:
        await assert_json_error(resp, 413)
    assert counter.hits == []
    assert EVENTS == []
    async with http.post(gw.url + "/", data=b"x" * 100) as resp:
        assert resp.status == 200
    assert body_events("t_body_a") == [(b"x" * 100, True)]


async def test_truncate_shows_plugins_a_prefix_and_sends_the_whole_body(
        gateway: GatewayFactory, counting: tuple[CountingUpstream, str],
        http: aiohttp.ClientSession) -> None:
    _, url = counting
    gw = await gateway(config(url, [route("r", "/", {
        "t_body_a": {"limit": 16, "overflow": "truncate", "transform": "upper"}})]))
    body = bytes(ord("a") + i % 26 for i in range(100_000))
    async with http.post(gw.url + "/", data=body) as resp:
        assert resp.status == 200
        seen = await resp.json()
    assert body_events("t_body_a") == [(body[:16], True)]
    expected = body[:16].upper() + body[16:]
    assert seen["body_bytes"] == len(expected)
    assert seen["body_sha256"] == hashlib.sha256(expected).hexdigest()


async def test_a_streaming_request_body_plugin_rewrites_each_chunk(
        gateway: GatewayFactory, counting: tuple[CountingUpstream, str],
        http: aiohttp.ClientSession) -> None:
    _, url = counting
    gw = await gateway(config(url, [route("r", "/", {"t_body_a": {"transform": "upper"}})]))
    parts = (b"first part, ", b"second part, ", b"last")
    async with http.post(gw.url + "/", data=chunks(*parts)) as resp:
        assert resp.status == 200
        seen = await resp.json()
    assert seen["body"] == b"".join(parts).upper().decode()
    calls = body_events("t_body_a")
    assert b"".join(c for c, _ in calls) == b"".join(parts)
    # Exactly one end call, and it is the last.
    assert [end for _, end in calls].count(True) == 1
    assert calls[-1] == (b"", True)


# ---------------------------------------------------------------------------
# Response bodies


async def test_a_response_body_plugin_rewrites_the_stream(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    url = await upstream(streaming_app(b"banana ", b"and ", b"papaya"))
    gw = await gateway(config(url, [route("r", "/", {"t_resp_body": {}})]))
    async with http.get(gw.url + "/") as resp:
        assert resp.status == 200
        assert await resp.read() == b"baanaanaa aand paapaayaa"
    ends = [end for _, end in body_events("t_resp_body")]
    assert ends.count(True) == 1 and ends[-1]


async def test_a_rewritten_response_never_keeps_the_upstream_content_length(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    async def fixed(request: web.Request) -> web.Response:
        return web.Response(body=b"a" * 1000)

    app = web.Application()
    app.router.add_get("/", fixed)
    gw = await gateway(config(await upstream(app), [route("r", "/", {"t_resp_body": {}})]))
    async with http.get(gw.url + "/") as resp:
        body = await resp.read()
        assert resp.headers.get("Content-Length") in (None, str(len(body)))
    assert body == b"a" * 2000


async def test_a_trailer_added_at_the_end_is_sent_once(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    url = await upstream(streaming_app(b"one ", b"two"))
    gw = await gateway(config(url, [route("r", "/", {"t_trailer": {}})]))
    async with http.get(gw.url + "/") as resp:
        assert await resp.read() == b"one two<END>"
    assert [end for _, end in body_events("t_trailer")].count(True) == 1


async def test_buffer_response_body_delivers_the_whole_body_once(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    # "cat" is split across two upstream chunks: only a buffered plugin can see it.
    url = await upstream(streaming_app(b"the cat sat on the c", b"at mat"))
    gw = await gateway(config(url, [route("r", "/", {
        "t_resp_body": {"buffer": 1 << 20, "transform": "cat_to_tiger"}})]))
    async with http.get(gw.url + "/") as resp:
        assert resp.status == 200
        body = await resp.read()
        assert resp.headers["Content-Length"] == str(len(body))
    assert body == b"the tiger sat on the tiger mat"
    assert body_events("t_resp_body") == [(b"the cat sat on the cat mat", True)]


async def test_buffered_response_over_the_limit(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    url = await upstream(streaming_app(b"a" * 10, b"b" * 10, b"c" * 10))
    gw = await gateway(config(url, [
        route("reject", "/reject", {"t_resp_body": {"buffer": 15}}),
        route("truncate", "/", {"t_resp_body": {"buffer": 15, "overflow": "truncate"}}),
    ]))
    async with http.get(gw.url + "/reject") as resp:
        await assert_json_error(resp, 502)
    assert EVENTS == []
    async with http.get(gw.url + "/truncate") as resp:
        assert resp.status == 200
        assert await resp.read() == b"aa" * 10 + b"bbbbb" + b"b" * 5 + b"c" * 10
    assert body_events("t_resp_body") == [(b"a" * 10 + b"b" * 5, True)]


# ---------------------------------------------------------------------------
# State and on_done


async def test_state_slots_are_per_flow_and_per_plugin(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    gw = await gateway(config(await upstream(), [
        route("r", "/", {"t_state_a": {}, "t_state_b": {}})]))

    async def one() -> tuple[str, str]:
        async with http.get(gw.url + "/") as resp:
            return resp.headers["X-State-t_state_a"], resp.headers["X-State-t_state_b"]

    assert await one() == ("t_state_a", "t_state_b")
    assert await one() == ("t_state_a", "t_state_b")  # a new flow starts empty
    assert await asyncio.gather(*(one() for _ in range(5))) == [("t_state_a", "t_state_b")] * 5


async def test_on_done_runs_for_every_request_despite_a_failing_plugin(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    url = await upstream()
    gw = await gateway({
        **config(url, [
            route("dead", "/dead", {"t_done": {}}, svc="dead"),
            route("r", "/"),
        ], plugins={"t_done_fails": {}, "t_done": {}, "t_gate": {}}),
        "services": {"up": service(url),
                     "dead": service(f"http://127.0.0.1:{free_tcp_port()}",
                                     retries={"attempts": 0})},
    })
    results = {}
    for path, headers in (("/ok", {}), ("/blocked", {"X-Block": "1"}), ("/dead", {})):
        async with http.get(gw.url + path, headers=headers) as resp:
            await resp.read()
            results[path] = (resp.status, resp.headers["X-Request-Id"])
    assert results["/ok"][0] == 200
    assert results["/blocked"][0] == 403
    assert results["/dead"][0] == 502
    done = [e[1:] for e in EVENTS if e[0] == "done"]
    assert done == [(path, status, rid) for path, (status, rid) in results.items()]
    assert any("on_done broke" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


# ---------------------------------------------------------------------------
# Lifecycle


def _starts_and_closes() -> list[tuple[str, str]]:
    return [(e[0], e[1]) for e in EVENTS if e[0] in ("start", "close")]


async def test_plugins_start_once_and_close_when_replaced_and_idle(
        upstream: UpstreamFactory) -> None:
    url = await upstream()
    GATES.update(entered=asyncio.Event(), release=asyncio.Event(), closed=asyncio.Event())

    def life_config(tag: str) -> str:
        # Two routes with equal configs share one instance.
        return yaml_text(config(url, [route("a", "/a", {"t_life": {"tag": tag}}),
                                      route("b", "/", {"t_life": {"tag": tag}})]))

    gw = Gateway(parse_config(life_config("v1")))
    await gw.start()
    try:
        base = "http://{}:{}".format(*gw.addresses[0])
        assert _starts_and_closes() == [("start", "v1")]
        async with aiohttp.ClientSession() as http:
            slow = asyncio.create_task(http.get(base + "/slow"))
            await asyncio.wait_for(GATES["entered"].wait(), 5)

            await gw.reload(parse_config(life_config("v2")))
            assert _starts_and_closes() == [("start", "v1"), ("start", "v2")]
            async with http.get(base + "/a") as resp:
                assert resp.status == 200
            await asyncio.sleep(0.05)
            assert ("close", "v1") not in _starts_and_closes()  # /slow is still in flight

            GATES["release"].set()
            async with await slow as resp:
                assert resp.status == 200
            await asyncio.wait_for(GATES["closed"].wait(), 5)
            assert _starts_and_closes()[-1] == ("close", "v1")
    finally:
        await gw.stop()
    assert _starts_and_closes() == [("start", "v1"), ("start", "v2"), ("close", "v1"),
                                    ("close", "v2")]


async def test_a_plugin_that_fails_to_start_fails_the_load(upstream: UpstreamFactory) -> None:
    url = await upstream()
    text = yaml_text(config(url, [route("a", "/a", {"t_life": {"tag": "ok"}}),
                                  route("b", "/", {"t_fail_start": {}})]))
    gw = Gateway(parse_config(text))
    with pytest.raises(ConfigError) as info:
        await gw.start()
    [issue] = info.value.issues
    assert issue.path == "routes[1].plugins.t_fail_start"
    assert issue.line == next(i + 1 for i, line in enumerate(text.splitlines())
                              if "t_fail_start" in line)
    assert "no licence for this plugin" in issue.message
    # What had started is closed again.
    assert _starts_and_closes() == [("start", "ok"), ("close", "ok")]


async def test_a_reload_that_fails_to_start_keeps_the_old_config(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    url = await upstream()
    gw = await gateway(config(url, [route("r", "/", {"t_life": {"tag": "old"}})]))
    bad = parse_config(yaml_text(config(url, [
        route("r", "/", {"t_life": {"tag": "new"}, "t_cfg": {}}),
        route("s", "/s", {"t_life": {"tag": "broken", "fail_start": True}}),
    ])))
    with pytest.raises(ConfigError) as info:
        await gw.gateway.reload(bad)
    assert info.value.issues[0].path == "routes[1].plugins.t_life"
    assert _starts_and_closes() == [("start", "old"), ("start", "new"), ("close", "new")]
    async with http.get(gw.url + "/") as resp:
        assert resp.status == 200
        assert "X-Cfg" not in (await resp.json())["headers"]


# ---------------------------------------------------------------------------
# A plugin that raises


@pytest.mark.parametrize("hook", ["on_request_headers", "on_request_body",
                                  "on_response_headers"])
async def test_a_plugin_exception_is_a_500_json_error_for_that_request(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession,
        tmp_path: Path, caplog: pytest.LogCaptureFixture, hook: str) -> None:
    log_file = tmp_path / "access.log"
    gw = await gateway(config(await upstream(), [route("r", "/", {"t_raise": {"hook": hook}})],
                              access_log={"enabled": True, "path": str(log_file)}))
    async with http.post(gw.url + "/boom", data=b"payload") as resp:
        data = await assert_json_error(resp, 500)
    assert any("kaboom" in str(r.exc_info[1]) for r in caplog.records
               if r.exc_info and r.levelno >= logging.ERROR)
    # The gateway keeps serving, on the same route.
    async with http.post(gw.url + "/fine", data=b"payload") as resp:
        assert resp.status == 200
        assert (await resp.json())["body"] == "payload"
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(r["path"], r["status"], r["request_id"]) for r in records] == [
        ("/boom", 500, data["request_id"]), ("/fine", 200, records[1]["request_id"])]


async def test_a_plugin_exception_mid_body_cuts_the_response_off(
        gateway: GatewayFactory, upstream: UpstreamFactory, http: aiohttp.ClientSession) -> None:
    url = await upstream(streaming_app(b"a" * 10, b"b" * 10))
    gw = await gateway(config(url, [route("r", "/", {"t_raise": {"hook": "on_response_body"}})]))
    # Too late for a status: the client must see a broken body, never a complete-looking one.
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(gw.url + "/boom") as resp:
            await resp.read()
    async with http.get(gw.url + "/fine") as resp:
        assert await resp.read() == b"a" * 10 + b"b" * 10


# ---------------------------------------------------------------------------
# Discovery


def test_headers_is_discoverable_through_its_entry_point() -> None:
    from traffic.headers import HeadersPlugin

    assert "headers" in available_plugins()
    assert plugin_class("headers") is HeadersPlugin
    [ep] = [ep for ep in entry_points(group="bastion.plugins") if ep.name == "headers"]
    assert ep.load() is HeadersPlugin
    # Registered plugins are listed beside the installed ones.
    assert {"t_cfg", "t_gate"} <= set(available_plugins())


def test_a_plugin_needs_a_name() -> None:
    class Nameless(Plugin[EmptyConfig]):
        pass

    with pytest.raises(ValueError, match="no name"):
        register_plugin(Nameless)
