"""Fixtures for the AI plugin tests: fake providers, a gateway in front of them, a recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import aiohttp
import pytest

from ai.exchange import AiExchange, exchange
from proxy.flow import Flow
from proxy.plugin import Group, Plugin, register_plugin
from proxy.sse import SSEEvent, SSEParser
from tests.ai.fakes import FakeProvider, Kind
from tests.conftest import InProcessGateway, free_tcp_port, service

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]
FakeFactory = Callable[[Kind], Awaitable[FakeProvider]]
AiGatewayFactory = Callable[..., Awaitable[InProcessGateway]]


@dataclass
class Seen:
    """What a plugin running after ai-proxy saw of one exchange."""

    chunks: list[bytes] = field(default_factory=list)
    # A copy of the record when the end=True body call reached this plugin.
    at_end: AiExchange | None = None
    at_done: AiExchange | None = None


@register_plugin
class ExchangeRecorder(Plugin[Any]):
    """An AI plugin after ai-proxy: records the exchange as other AI plugins would read it."""

    name = "test-ai-recorder"
    group = Group.AI
    priority = 0
    seen: ClassVar[list[Seen]] = []

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        seen = flow.state(self, Seen)
        if chunk:
            seen.chunks.append(chunk)
        ex = exchange(flow)
        if end and ex is not None:
            seen.at_end = replace(ex)
        return chunk

    async def on_done(self, flow: Flow) -> None:
        seen = flow.state(self, Seen)
        ex = exchange(flow)
        seen.at_done = ex
        if ex is not None:
            ExchangeRecorder.seen.append(seen)


@pytest.fixture
def recorded() -> list[Seen]:
    ExchangeRecorder.seen.clear()
    return ExchangeRecorder.seen


@pytest.fixture
async def fake(upstream: UpstreamFactory) -> AsyncIterator[FakeFactory]:
    """Start fake providers: ``openai = await fake("openai")``."""
    made: list[FakeProvider] = []

    async def make(kind: Kind) -> FakeProvider:
        f = FakeProvider(kind)
        f.url = await upstream(f.app)
        made.append(f)
        return f

    yield make
    for f in made:  # before the servers stop: nothing waits on a test that is over
        f.release()


@pytest.fixture
async def ai_gateway(gateway: GatewayFactory) -> AiGatewayFactory:
    """A gateway with one route, /v1/, running ai-proxy with ``config`` (and the recorder)."""

    async def start(config: dict[str, Any], *, plugins: dict[str, Any] | None = None,
                    **top: Any) -> InProcessGateway:
        return await gateway({
            "access_log": {"enabled": False},
            # ai-proxy picks the upstream itself: the route's service is never called.
            "services": {"unused": service(f"http://127.0.0.1:{free_tcp_port()}")},
            "routes": [{"name": "ai", "match": {"path_prefix": "/v1/"}, "service": "unused",
                        "plugins": {**(plugins or {}), "ai-proxy": config,
                                    "test-ai-recorder": {}}}],
            **top,
        })

    return start


async def read_events(resp: aiohttp.ClientResponse) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    async for data in resp.content.iter_any():
        events += parser.feed(data)
    events += parser.close()
    assert not parser.pending, f"half an event at the end: {parser.pending!r}"
    return events
