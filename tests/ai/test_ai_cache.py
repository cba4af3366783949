"""ai-cache through a real gateway, in front of a fake OpenAI, on the memory store and on Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from ai.cache import cache_key
from ai.exchange import AiExchange
from proxy.config import ConfigError, parse_config
from proxy.store import Store
from tests.ai.conftest import AiGatewayFactory, FakeFactory, Seen, read_events
from tests.ai.fakes import (
    Drop,
    FakeProvider,
    Reply,
    Sleep,
    openai_chunks,
    openai_completion,
    openai_error,
    sse,
)
from tests.conftest import InProcessGateway, free_tcp_port

GPT = "gpt-4o-2024-08-06"
CHAT: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                                        {"role": "user", "content": "Hi"}]}
STREAM: dict[str, Any] = {**CHAT, "stream": True}
STREAM_USAGE: dict[str, Any] = {**STREAM, "stream_options": {"include_usage": True}}


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {"type": "memory"}
    return {"type": "redis", "url": request.getfixturevalue("redis_url"),
            "prefix": request.getfixturevalue("redis_prefix")}


def proxy_config(openai: FakeProvider) -> dict[str, Any]:
    return {"providers": {"openai": {"type": "openai", "base_url": openai.base_url,
                                     "api_keys": ["sk-openai-1"]}},
            "models": {"gpt-4o": {"provider": "openai", "model": GPT},
                       "gpt-4o-mini": {"provider": "openai", "model": "gpt-4o-mini"}}}


async def cached_gateway(ai_gateway: AiGatewayFactory, openai: FakeProvider,
                         store: dict[str, Any], **cache: Any) -> InProcessGateway:
    return await ai_gateway(proxy_config(openai), plugins={"ai-cache": cache}, store=store)


class Answer:
    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes,
                 truncated: bool = False) -> None:
        self.status, self.headers, self.body = status, headers, body
        self.truncated = truncated

    @property
    def cache(self) -> str | None:
        return self.headers.get("X-Bastion-Cache")

    def json(self) -> Any:
        return json.loads(self.body)


async def call(http: aiohttp.ClientSession, gw: InProcessGateway, body: Any,
               headers: dict[str, str] | None = None, lenient: bool = False) -> Answer:
    """POST a chat completion; ``lenient``: a body cut off mid-way is returned, not raised."""
    async with http.post(gw.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        try:
            return Answer(resp.status, resp.headers, await resp.read())
        except aiohttp.ClientPayloadError:
            if not lenient:
                raise
            return Answer(resp.status, resp.headers, b"", truncated=True)


def runtime_store(gw: InProcessGateway) -> Store:
    rt = gw.gateway.runtime
    assert rt is not None
    return rt.store


async def entries(gw: InProcessGateway, expect: int | None = None) -> list[str]:
    """The cache's keys in the gateway's store (waiting, up to 2 s, until there are ``expect``)."""
    store = runtime_store(gw)
    for _ in range(200):
        keys = await store.scan("ai-cache:")
        if expect is None or len(keys) == expect:
            return keys
        await asyncio.sleep(0.01)
    return keys


def stream_text(body: bytes) -> str:
    text = ""
    for block in body.decode().split("\n\n"):
        if block.startswith("data: {"):
            for choice in json.loads(block[6:]).get("choices") or []:
                text += choice["delta"].get("content") or ""
    return text


# ---------------------------------------------------------------------------
# Hits and misses


async def test_json_miss_then_hit_calls_the_provider_once(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        store: dict[str, Any], recorded: list[Seen]) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, store)
    first = await call(http, gw, CHAT)
    assert first.status == 200 and first.cache == "miss"
    assert first.json() == openai_completion(GPT)
    assert await entries(gw, 1) == [f"ai-cache:ai:{cache_key_of(recorded[0].at_done)}"]

    second = await call(http, gw, CHAT)
    assert second.status == 200 and second.cache == "hit"
    assert second.headers["Content-Type"] == "application/json"
    assert len(openai.received) == 1
    data = second.json()
    assert data == {
        "id": f"chatcmpl-cache-{second.headers['X-Request-Id']}",
        "object": "chat.completion", "created": data["created"], "model": GPT,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from openai",
                                             "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        # The client gets the usage the answer had; the record counts no provider tokens.
        "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}}
    miss_ex, hit_ex = recorded[0].at_done, recorded[1].at_done
    assert miss_ex is not None and not miss_ex.cached and miss_ex.total_tokens == 15
    assert hit_ex is not None and hit_ex.cached and hit_ex.complete
    assert (hit_ex.prompt_tokens, hit_ex.completion_tokens, hit_ex.total_tokens,
            hit_ex.cached_tokens) == (0, 0, 0, 0)
    assert (hit_ex.status, hit_ex.error, hit_ex.attempts) == (200, None, 0)
    assert hit_ex.completion_text == "Hello from openai" and hit_ex.finish_reason == "stop"
    assert hit_ex.time_to_first_token is not None and hit_ex.duration is not None


def cache_key_of(ex: AiExchange | None) -> str:
    assert ex is not None
    return cache_key(ex).rsplit(":", 1)[1]


async def test_stream_miss_then_stream_hit_and_json_hit(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        store: dict[str, Any], recorded: list[Seen]) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, store)
    first = await call(http, gw, STREAM)
    assert first.cache == "miss" and stream_text(first.body) == "Hello"
    await entries(gw, 1)

    again = await call(http, gw, STREAM)
    assert again.status == 200 and again.cache == "hit"
    assert again.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert stream_text(again.body) == "Hello"
    assert again.body.endswith(b"data: [DONE]\n\n")

    as_json = await call(http, gw, CHAT)
    assert as_json.cache == "hit"
    assert as_json.json()["choices"][0]["message"]["content"] == "Hello"
    assert as_json.json()["usage"]["total_tokens"] == 15  # the stream's usage was recorded
    assert len(openai.received) == 1
    assert [s.at_done.cached for s in recorded if s.at_done] == [False, True, True]


async def test_json_miss_then_stream_hit(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        store: dict[str, Any]) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, store)
    assert (await call(http, gw, CHAT)).cache == "miss"
    await entries(gw, 1)
    async with http.post(gw.url + "/v1/chat/completions", json=STREAM) as resp:
        assert resp.headers["X-Bastion-Cache"] == "hit"
        events = await read_events(resp)
    assert events[-1].data == "[DONE]"
    chunks = [json.loads(e.data) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == \
        "Hello from openai"
    assert len(openai.received) == 1


async def test_the_replayed_stream_is_exactly_openais_format(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, {"type": "memory"})
    assert (await call(http, gw, STREAM_USAGE)).cache == "miss"
    hit = await call(http, gw, STREAM_USAGE)
    assert hit.cache == "hit" and hit.headers["Cache-Control"] == "no-cache"
    created = json.loads(hit.body.split(b"\n", 1)[0][6:])["created"]
    head = (f'{{"id":"chatcmpl-cache-{hit.headers["X-Request-Id"]}",'
            f'"object":"chat.completion.chunk","created":{created},"model":"{GPT}",')

    def choice(delta: str, finish: str = "null") -> str:
        return (f'data: {head}"choices":[{{"index":0,"delta":{delta},"logprobs":null,'
                f'"finish_reason":{finish}}}],"usage":null}}\n\n')

    assert hit.body.decode() == (
        choice('{"role":"assistant","content":""}')
        + choice('{"content":"Hello"}')
        + choice("{}", '"stop"')
        + f'data: {head}"choices":[],"usage":{{"prompt_tokens":11,"completion_tokens":4,'
          '"total_tokens":15}}\n\n'
        + "data: [DONE]\n\n")

    # Without include_usage: no usage anywhere, and no usage chunk.
    plain = await call(http, gw, STREAM)
    assert plain.cache == "hit" and b"usage" not in plain.body
    assert plain.body.count(b"data: ") == 4
    assert len(openai.received) == 1


async def test_a_long_answer_replays_in_several_content_chunks(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai = await fake("openai")
    text = "".join(f"word{i} " for i in range(600))  # ~4.7k characters
    openai.replies.append(Reply(json=openai_completion(GPT, text=text)))
    gw = await cached_gateway(ai_gateway, openai, {"type": "memory"})
    await call(http, gw, CHAT)
    hit = await call(http, gw, STREAM)
    assert hit.cache == "hit" and stream_text(hit.body) == text
    assert hit.body.count(b'"delta":{"content":') == 5  # 1024 characters at most per chunk


# ---------------------------------------------------------------------------
# The key


async def test_parameters_that_change_the_answer_make_different_entries(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        store: dict[str, Any]) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, store)
    other_messages = [{"role": "user", "content": "Hi!"}]
    cases: list[tuple[dict[str, Any], str]] = [
        (CHAT, "miss"),
        ({**CHAT, "user": "bob", "metadata": {"a": "b"}, "store": False}, "hit"),
        ({**CHAT, "n": 1}, "hit"),
        ({**CHAT, "temperature": 0}, "miss"),      # explicit 0 is not "unset"
        ({**CHAT, "temperature": 0.0}, "hit"),     # but 0 and 0.0 are one value
        ({**CHAT, "max_tokens": 5}, "miss"),
        ({**CHAT, "max_tokens": 6}, "miss"),
        ({**CHAT, "seed": 7}, "miss"),
        ({**CHAT, "top_p": 0.5}, "miss"),
        ({**CHAT, "stop": ["\n"]}, "miss"),
        ({**CHAT, "response_format": {"type": "json_object"}}, "miss"),
        ({**CHAT, "tools": [{"type": "function", "function": {"name": "f"}}]}, "miss"),
        ({**CHAT, "messages": other_messages}, "miss"),
        ({**CHAT, "model": "gpt-4o-mini"}, "miss"),
        ({**CHAT, "max_tokens": 5}, "hit"),
        ({**CHAT, "seed": 7, "user": "carol"}, "hit"),
    ]
    got = []
    for body, _ in cases:
        answer = await call(http, gw, body)
        assert answer.status == 200
        got.append(answer.cache)
        await entries(gw, sum(1 for c in got if c == "miss"))
    assert got == [want for _, want in cases]
    assert len(openai.received) == sum(1 for _, want in cases if want == "miss")


def test_the_key_ignores_key_order_and_separates_routes_and_consumers() -> None:
    def ex(route: str = "ai", **request: Any) -> AiExchange:
        return AiExchange(api="chat", route=route, consumer=None, requested_model="m",
                          streaming=False, prompt_text="", provider="p", provider_model="m",
                          request=request)

    msgs = [{"role": "user", "content": "x"}]
    a = cache_key(ex(model="m", messages=msgs, temperature=0))
    assert a.startswith("ai-cache:ai:") and len(a) == len("ai-cache:ai:") + 64
    assert cache_key(ex(temperature=0.0, messages=msgs, model="m", stream=True)) == a
    other = cache_key(ex("other", model="m", messages=msgs, temperature=0))
    assert other.startswith("ai-cache:other:") and other[-64:] != a[-64:]
    assert cache_key(ex(model="m", messages=msgs, temperature=0), "alice") != a
    assert cache_key(ex(model="m", messages=msgs, temperature=0), "alice") != \
        cache_key(ex(model="m", messages=msgs, temperature=0), "bob")


async def test_consumer_scope_keeps_consumers_apart_and_skips_anonymous_requests(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai = await fake("openai")
    gw = await ai_gateway(
        proxy_config(openai),
        plugins={"auth": {"any_of": ["key-auth"], "key-auth": {"headers": ["x-api-key"]}},
                 "ai-cache": {"scope": "consumer"}},
        consumers=[{"name": n, "credentials": [{"id": f"{n}-key", "type": "key-auth",
                                                "key": f"{n}-secret"}]}
                   for n in ("alice", "bob")])
    alice, bob = {"x-api-key": "alice-secret"}, {"x-api-key": "bob-secret"}
    assert (await call(http, gw, CHAT, alice)).cache == "miss"
    assert (await call(http, gw, CHAT, alice)).cache == "hit"
    assert (await call(http, gw, CHAT, bob)).cache == "miss"
    assert (await call(http, gw, CHAT, bob)).cache == "hit"
    assert len(openai.received) == 2
    # A route without authentication: no consumer, so nothing is cached.
    open_gw = await cached_gateway(ai_gateway, openai, {"type": "memory"}, scope="consumer")
    for _ in range(2):
        anonymous = await call(http, open_gw, CHAT)
        assert anonymous.status == 200 and anonymous.cache == "bypass"
    assert len(openai.received) == 4


# ---------------------------------------------------------------------------
# What is not cached


async def test_uncacheable_requests_bypass_the_cache(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, {"type": "memory"}, max_temperature=0.5)
    bodies = [{**CHAT, "n": 2}, {**CHAT, "temperature": 0.7}, {**CHAT, "logprobs": True}]
    for body in [*bodies, *bodies]:
        answer = await call(http, gw, body)
        assert answer.status == 200 and answer.cache == "bypass"
    skip = {"X-Bastion-Cache-Skip": "1"}
    for _ in range(2):
        assert (await call(http, gw, CHAT, skip)).cache == "bypass"
    assert len(openai.received) == 8
    assert await entries(gw) == []
    # At or below max_temperature, it is cached.
    assert (await call(http, gw, {**CHAT, "temperature": 0.5})).cache == "miss"
    assert (await call(http, gw, {**CHAT, "temperature": 0.5})).cache == "hit"
    assert (await call(http, gw, CHAT, {"X-Bastion-Cache-Skip": "off"})).cache == "miss"


async def test_any_temperature_is_cached_with_max_temperature_null(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, {"type": "memory"}, max_temperature=None)
    assert (await call(http, gw, {**CHAT, "temperature": 1.5})).cache == "miss"
    assert (await call(http, gw, {**CHAT, "temperature": 1.5})).cache == "hit"


async def test_errors_and_broken_streams_are_not_cached(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        store: dict[str, Any], recorded: list[Seen]) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, store)
    chunks = [sse(c) for c in openai_chunks(GPT, False)]
    openai.replies += [
        Reply(status=500, json=openai_error("boom", "server_error")),
        Reply(status=400, json=openai_error("bad", "invalid_request_error")),
        # Cut off mid-stream: the connection drops.
        Reply(writes=[chunks[0], chunks[1], Sleep(0.01), Drop()]),
        # A finish chunk, then the stream ends without [DONE].
        Reply(writes=[*chunks, Sleep(0.01)]),
        # An error event mid-stream.
        Reply(writes=[chunks[0], chunks[1], sse(openai_error("overloaded", "server_error")),
                      sse("[DONE]")]),
        # No finish reason at all.
        Reply(writes=[chunks[0], chunks[1], sse("[DONE]")]),
    ]
    got = [await call(http, gw, body, lenient=True) for body in (CHAT, CHAT, *[STREAM] * 4)]
    assert [(a.status, a.cache) for a in got] == [(500, "miss"), (400, "miss")] + \
        [(200, "miss")] * 4
    assert await entries(gw) == []
    assert [s.at_done.error is not None for s in recorded if s.at_done] == \
        [True, True, True, True, True, False]  # the last one merely lacks a finish reason
    # Nothing was stored: the next request goes to the provider, and that one is kept.
    assert (await call(http, gw, STREAM)).cache == "miss"
    assert len(await entries(gw, 1)) == 1
    assert (await call(http, gw, CHAT)).cache == "hit"
    assert len(openai.received) == 7


def tool_call_completion(content: str | None, finish: str) -> dict[str, Any]:
    body = openai_completion(GPT)
    body["choices"][0]["message"] = {
        "role": "assistant", "content": content, "refusal": None,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]}
    body["choices"][0]["finish_reason"] = finish
    return body


async def test_tool_calls_and_empty_answers_are_not_cached_but_length_is(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, {"type": "memory"})
    tools = {**CHAT, "tools": [{"type": "function", "function": {"name": "f"}}]}
    openai.replies += [
        Reply(json=tool_call_completion(None, "tool_calls")),
        Reply(json=tool_call_completion(None, "stop")),       # a forced tool choice
        Reply(json=tool_call_completion("Calling f.", "stop")),
        Reply(json=openai_completion(GPT, text="")),
    ]
    for body in (tools, tools, tools, CHAT):
        assert (await call(http, gw, body)).cache == "miss"
    assert await entries(gw) == []
    length = openai_completion(GPT, text="Hel")
    length["choices"][0]["finish_reason"] = "length"
    openai.replies.append(Reply(json=length))
    assert (await call(http, gw, {**CHAT, "max_tokens": 1})).cache == "miss"
    hit = await call(http, gw, {**CHAT, "max_tokens": 1})
    assert hit.cache == "hit" and hit.json()["choices"][0]["finish_reason"] == "length"


async def test_entries_over_max_entry_bytes_are_not_stored(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, {"type": "memory"}, max_entry_bytes="1KiB")
    openai.replies.append(Reply(json=openai_completion(GPT, text="x" * 2000)))
    assert (await call(http, gw, CHAT)).cache == "miss"
    assert (await call(http, gw, CHAT)).cache == "miss"  # the default, small answer: kept
    assert (await call(http, gw, CHAT)).cache == "hit"


async def test_entries_expire_after_the_ttl(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        store: dict[str, Any]) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, store, ttl="400ms")
    assert (await call(http, gw, CHAT)).cache == "miss"
    assert (await call(http, gw, CHAT)).cache == "hit"
    [key] = await entries(gw, 1)
    remaining = await runtime_store(gw).ttl(key)
    assert remaining is not None and 0 < remaining <= 0.4
    await asyncio.sleep(0.6)
    assert (await call(http, gw, CHAT)).cache == "miss"
    assert (await call(http, gw, CHAT)).cache == "hit"
    assert len(openai.received) == 2


# ---------------------------------------------------------------------------
# The store failing


async def test_a_dead_redis_means_misses_and_every_request_is_served(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai = await fake("openai")
    dead = {"type": "redis", "url": f"redis://127.0.0.1:{free_tcp_port()}/0",
            "timeout_ms": 100}
    gw = await cached_gateway(ai_gateway, openai, dead)
    for body in (CHAT, CHAT, STREAM, STREAM, CHAT):
        answer = await call(http, gw, body)
        assert answer.status == 200 and answer.cache == "miss"
        assert "Hello" in (stream_text(answer.body) if body is STREAM else answer.body.decode())
    assert len(openai.received) == 5
    gw.gateway.metrics.flush()
    registry = gw.gateway.metrics.registry
    failures = sum(registry.get_sample_value("bastion_ai_cache_store_errors_total",
                                             {"op": op, "kind": kind}) or 0
                   for op in ("get", "set") for kind in ("error", "timeout", "circuit_open"))
    assert failures == 10
    hits = registry.get_sample_value("bastion_plugin_decisions_total",
                                     {"plugin": "ai-cache", "action": "miss"})
    assert hits == 5


async def test_an_unreadable_entry_is_a_miss_and_is_replaced(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai = await fake("openai")
    gw = await cached_gateway(ai_gateway, openai, {"type": "memory"})
    assert (await call(http, gw, CHAT)).cache == "miss"
    [key] = await entries(gw, 1)
    await runtime_store(gw).set(key, b'{"v": 99}', 60)
    assert (await call(http, gw, CHAT)).cache == "miss"
    assert (await call(http, gw, CHAT)).cache == "hit"


# ---------------------------------------------------------------------------
# Config


def test_ai_cache_needs_ai_proxy_on_its_route() -> None:
    text = """
services: {up: {endpoints: [{url: "http://127.0.0.1:9"}]}}
routes:
  - name: web
    match: {path_prefix: /}
    service: up
    plugins:
      ai-cache: {ttl: 10m}
"""
    with pytest.raises(ConfigError, match="ai-cache needs ai-proxy"):
        parse_config(text, "<test>")
    with pytest.raises(ConfigError, match="ttl"):
        parse_config(text.replace("ttl: 10m", "ttl: 0"), "<test>")
