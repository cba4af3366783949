"""ai-proxy through a real gateway, against fake OpenAI, Azure and Anthropic servers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from ai.exchange import AiExchange
from ai.providers import ProviderConfig, make_provider
from proxy.config import ConfigError, parse_config
from proxy.sse import SSEEvent, SSEParser
from tests.ai.conftest import AiGatewayFactory, FakeFactory, Seen, read_events
from tests.ai.fakes import (
    ANTHROPIC_USAGE,
    Drop,
    FakeProvider,
    Reply,
    Sleep,
    Wait,
    anthropic_error,
    anthropic_events,
    anthropic_message,
    chop,
    openai_chunks,
    openai_completion,
    openai_error,
    openai_stream,
    sse,
    tiny_writes,
)
from tests.conftest import free_tcp_port

CHAT = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Hi"}]}
CLAUDE = {**CHAT, "model": "claude"}
GPT = "gpt-4o-2024-08-06"
SONNET = "claude-3-5-sonnet-latest"


def openai_provider(f: FakeProvider, keys: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": f.base_url, "api_keys": keys or ["sk-openai-1"], **kw}


def anthropic_provider(f: FakeProvider, **kw: Any) -> dict[str, Any]:
    return {"type": "anthropic", "base_url": f.base_url, "api_keys": ["sk-ant-1"], **kw}


def both(openai: FakeProvider, anthropic: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"openai": openai_provider(openai),
                      "anthropic": anthropic_provider(anthropic)},
        "models": {"gpt-4o": {"provider": "openai", "model": GPT},
                   "claude": {"provider": "anthropic", "model": SONNET}},
        **extra,
    }


def data_of(events: list[SSEEvent]) -> list[Any]:
    """Each event's JSON with `created` zeroed (it is the gateway's clock), or the raw text."""
    out: list[Any] = []
    for e in events:
        try:
            d = json.loads(e.data)
        except ValueError:
            out.append(e.data)
            continue
        if isinstance(d, dict) and isinstance(d.get("created"), int):
            d["created"] = 0
        out.append(d)
    return out


def claude_chunk(delta: dict[str, Any], finish: str | None = None,
                 model: str = SONNET) -> dict[str, Any]:
    return {"id": "msg_fake1", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def tokens(ex: AiExchange | None) -> tuple[int | None, int | None, int | None]:
    assert ex is not None
    return ex.prompt_tokens, ex.completion_tokens, ex.total_tokens


async def post(http: aiohttp.ClientSession, url: str, body: Any,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


# ---------------------------------------------------------------------------
# OpenAI


async def test_openai_chat_passes_through_with_the_provider_model_and_key(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        assert await resp.json() == openai_completion(GPT)
    [got] = openai.received
    assert got.path_qs == "/v1/chat/completions"
    assert got.body == {**CHAT, "model": GPT}
    assert got.headers["Authorization"] == "Bearer sk-openai-1"
    assert got.headers["Accept-Encoding"] == "identity"
    assert anthropic.received == []
    [seen] = recorded
    ex = seen.at_done
    assert ex is not None and ex.complete
    assert (ex.api, ex.route, ex.consumer, ex.requested_model, ex.provider, ex.provider_type,
            ex.provider_model, ex.streaming) == (
        "chat", "ai", None, "gpt-4o", "openai", "openai", GPT, False)
    assert ex.prompt_text == "Be brief.\nHi" and ex.last_user_text == "Hi"
    assert ex.completion_text == "Hello from openai" and ex.finish_reason == "stop"
    assert tokens(ex) == (11, 4, 15) and ex.cached_tokens == 0
    assert ex.status == 200 and ex.error is None and ex.attempts == 1 and not ex.cached
    assert ex.time_to_first_token is not None and ex.duration is not None
    assert ex.time_to_first_token <= ex.duration
    # Plugins after ai-proxy see a finished record on their end=True call.
    assert seen.at_end is not None and seen.at_end.complete and tokens(seen.at_end) == (11, 4, 15)


async def test_openai_stream_relays_every_event_and_counts_usage_the_client_did_not_ask_for(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        events = await read_events(resp)
    # The gateway asked for usage; the client, who did not, gets the plain stream.
    assert openai.received[0].body["stream_options"] == {"include_usage": True}
    assert data_of(events) == [{**c, "created": 0} for c in openai_chunks(GPT, False)] + ["[DONE]"]
    ex = recorded[0].at_done
    assert ex is not None and ex.streaming and tokens(ex) == (11, 4, 15)
    assert ex.completion_text == "Hello" and ex.finish_reason == "stop"
    assert ex.time_to_first_token is not None and ex.error is None


async def test_openai_stream_with_include_usage_is_byte_for_byte_the_providers(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(gw.url + "/v1/chat/completions", json=body) as resp:
        raw = await resp.read()
    assert raw == b"".join(openai_stream(GPT, True))
    assert openai.received[0].body == {**body, "model": GPT}
    assert tokens(recorded[0].at_done) == (11, 4, 15)


async def test_always_stream_usage_sends_the_usage_chunk_unasked(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic, always_stream_usage=True))
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        raw = await resp.read()
    assert raw == b"".join(openai_stream(GPT, True))


async def test_events_split_into_tiny_writes_are_reassembled(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    stream = openai_stream(GPT, True, parts=["a", "b", "c", "d", "e"])
    openai.replies.append(Reply(writes=tiny_writes(stream, 5)))
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(gw.url + "/v1/chat/completions", json=body) as resp:
        assert await resp.read() == b"".join(stream)
    anthropic.replies.append(Reply(writes=tiny_writes(anthropic_events(SONNET), 3)))
    async with http.post(gw.url + "/v1/chat/completions", json={**body, "model": "claude"}) as resp:
        events = await read_events(resp)
    assert [d["choices"][0]["delta"].get("content") for d in data_of(events)[1:3]] == [
        "Hello", " from claude"]
    assert data_of(events)[-1] == "[DONE]"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_each_event_reaches_the_client_before_the_next_is_sent(
        kind: str, fake: FakeFactory, ai_gateway: AiGatewayFactory,
        http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    if kind == "openai":
        events, provider, model = openai_stream(GPT, False), openai, "gpt-4o"
    else:
        events, provider, model = anthropic_events(SONNET), anthropic, "claude"
    gates = [asyncio.Event() for _ in events]
    writes: list[Any] = []
    for ev, gate in zip(events, gates, strict=True):
        writes += [Wait(gate), ev]
    provider.replies.append(Reply(writes=writes))
    gates[0].set()
    async with http.post(gw.url + "/v1/chat/completions",
                         json={**CHAT, "model": model, "stream": True}) as resp:
        parser = SSEParser()
        got: list[SSEEvent] = []
        for i, gate in enumerate(gates):
            gate.set()
            # Whatever client-side event this provider event makes must arrive
            # now, while the provider waits for the next gate.
            produces = not (kind == "anthropic" and i in (1, 2, 5))  # block start, ping, stop
            if i == len(gates) - 1:
                produces = True
            if produces:
                before = len(got)
                while len(got) == before:
                    data = await asyncio.wait_for(resp.content.readany(), 5)
                    assert data, "the stream ended early"
                    got += parser.feed(data)
        assert await resp.content.read() == b""
    if kind == "openai":
        assert [e.raw for e in got] == events
    else:
        assert [d["choices"][0]["delta"] if isinstance(d, dict) and d["choices"] else d
                for d in data_of(got)] == [
            {"role": "assistant", "content": ""}, {"content": "Hello"},
            {"content": " from claude"}, {}, "[DONE]"]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_translation_is_the_same_wherever_the_stream_is_cut(kind: str) -> None:
    """Every split point of the provider's stream (and one byte at a time) gives the
    client the same events and the exchange the same counts."""
    if kind == "openai":
        stream = b"".join(openai_stream(GPT, True))
    else:
        stream = b"".join(anthropic_events(SONNET))
    provider = make_provider("p", ProviderConfig(type=kind, base_url="http://x"))  # type: ignore[arg-type]

    def run(chunks: list[bytes]) -> tuple[list[Any], tuple[int | None, ...], str]:
        ex = AiExchange(api="chat", route="r", consumer=None, requested_model="m",
                        streaming=True, prompt_text="")
        translator = provider.stream(ex, False, True, 1 << 20)
        parser = SSEParser()
        out = b""
        for c in chunks:
            for e in parser.feed(c):
                out += translator.event(e)
        for e in parser.close():
            out += translator.event(e)
        out += translator.end()
        events = SSEParser().feed(out)
        return data_of(events), tokens(ex), ex.completion_text

    whole = run([stream])
    assert whole[0][-1] == "[DONE]" and whole[2] in ("Hello", "Hello from claude")
    assert all("usage" not in d for d in whole[0] if isinstance(d, dict))
    for i in range(1, len(stream)):
        assert run([stream[:i], stream[i:]]) == whole, i
    assert run([stream[i:i + 1] for i in range(len(stream))]) == whole


# ---------------------------------------------------------------------------
# Anthropic


async def test_anthropic_request_and_response_are_translated(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    body = {**CLAUDE, "temperature": 0.2, "stop": "END", "user": "u-42"}
    status, got = await post(http, gw.url + "/v1/chat/completions", body,
                             {"Authorization": "Bearer client-key"})
    assert status == 200
    assert isinstance(got["created"], int)
    assert {**got, "created": 0} == {
        "id": "msg_fake1", "object": "chat.completion", "created": 0, "model": SONNET,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from claude"},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 6, "total_tokens": 27}}
    [req] = anthropic.received
    assert req.path_qs == "/v1/messages"
    assert req.body == {"model": SONNET, "max_tokens": 4096,
                        "messages": [{"role": "user", "content": "Hi"}],
                        "system": "Be brief.", "temperature": 0.2, "stop_sequences": ["END"],
                        "metadata": {"user_id": "u-42"}}
    assert req.headers["x-api-key"] == "sk-ant-1"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in req.headers
    ex = recorded[0].at_done
    assert ex is not None and tokens(ex) == (21, 6, 27)
    assert (ex.provider, ex.provider_type, ex.provider_model) == ("anthropic", "anthropic", SONNET)
    assert ex.completion_text == "Hello from claude"


@pytest.mark.parametrize("include_usage", [True, False])
async def test_anthropic_stream_becomes_openai_chunks(
        include_usage: bool, fake: FakeFactory, ai_gateway: AiGatewayFactory,
        http: aiohttp.ClientSession, recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    body: dict[str, Any] = {**CLAUDE, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    async with http.post(gw.url + "/v1/chat/completions", json=body) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        events = await read_events(resp)
    assert anthropic.received[0].body["stream"] is True
    assert "stream_options" not in anthropic.received[0].body
    expected: list[Any] = [
        claude_chunk({"role": "assistant", "content": ""}),
        claude_chunk({"content": "Hello"}),
        claude_chunk({"content": " from claude"}),
        claude_chunk({}, "stop"),
    ]
    if include_usage:
        expected.append({"id": "msg_fake1", "object": "chat.completion.chunk", "created": 0,
                         "model": SONNET, "choices": [],
                         "usage": {"prompt_tokens": 21, "completion_tokens": 6,
                                   "total_tokens": 27}})
    assert data_of(events) == [*expected, "[DONE]"]
    assert all(e.event == "message" for e in events)
    seen = recorded[0]
    # Later plugins saw OpenAI chunks, not Anthropic events.
    assert b"content_block_delta" not in b"".join(seen.chunks)
    ex = seen.at_done
    assert ex is not None and tokens(ex) == (21, 6, 27) and ex.streaming
    assert ex.completion_text == "Hello from claude" and ex.finish_reason == "stop"
    assert ex.time_to_first_token is not None and ex.error is None


async def test_anthropic_usage_counts_cache_reads_and_writes_as_prompt_tokens(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    message = anthropic_message(SONNET)
    message["usage"] = {**ANTHROPIC_USAGE, "cache_creation_input_tokens": 100,
                        "cache_read_input_tokens": 50}
    anthropic.replies.append(Reply(json=message))
    _, got = await post(http, gw.url + "/v1/chat/completions", CLAUDE)
    assert got["usage"] == {"prompt_tokens": 171, "completion_tokens": 6, "total_tokens": 177,
                            "prompt_tokens_details": {"cached_tokens": 50}}
    ex = recorded[0].at_done
    assert tokens(ex) == (171, 6, 177) and ex is not None and ex.cached_tokens == 50


async def test_anthropic_tools_are_translated_both_ways(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    weather = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = {"model": "claude", "tool_choice": "required", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                                     {"type": "image_url",
                                      "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": "And Rome?"}],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather",
                                                    "parameters": weather}}]}
    message = {**anthropic_message(SONNET), "stop_reason": "tool_use", "content": [
        {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}}]}
    anthropic.replies.append(Reply(json=message))
    status, got = await post(http, gw.url + "/v1/chat/completions", body)
    assert status == 200
    assert got["choices"][0] == {
        "index": 0, "logprobs": None, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_2", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]}}
    sent = anthropic.received[0].body
    assert sent["tools"] == [{"name": "weather", "input_schema": weather,
                              "description": "Weather"}]
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "Weather in Paris?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AAAA"}}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "text", "text": "And Rome?"}]},
    ]


async def test_anthropic_streamed_tool_use_becomes_tool_call_deltas(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    events = [
        *anthropic_events(SONNET, parts=["Let me check."], end=False),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse({"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_9", "name": "weather", "input": {}}},
            "content_block_start"),
        sse({"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": "{\"city\": "}}, "content_block_delta"),
        sse({"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": "\"Rome\"}"}}, "content_block_delta"),
        sse({"type": "content_block_stop", "index": 1}, "content_block_stop"),
        sse({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
             "usage": {"output_tokens": 30}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    anthropic.replies.append(Reply(writes=chop(events)))
    async with http.post(gw.url + "/v1/chat/completions",
                         json={**CLAUDE, "stream": True}) as resp:
        got = data_of(await read_events(resp))
    assert got == [
        claude_chunk({"role": "assistant", "content": ""}),
        claude_chunk({"content": "Let me check."}),
        claude_chunk({"tool_calls": [{"index": 0, "id": "toolu_9", "type": "function",
                                      "function": {"name": "weather", "arguments": ""}}]}),
        claude_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}),
        claude_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Rome\"}"}}]}),
        claude_chunk({}, "tool_calls"),
        "[DONE]",
    ]


async def test_anthropic_errors_come_back_in_openai_format(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    anthropic.replies.append(Reply(status=400, json=anthropic_error(
        "invalid_request_error", "max_tokens: must be at most 8192")))
    status, got = await post(http, gw.url + "/v1/chat/completions", CLAUDE)
    assert (status, got) == (400, {"error": {
        "message": "max_tokens: must be at most 8192", "type": "invalid_request_error",
        "param": None, "code": None}})
    anthropic.replies.append(Reply(status=529, json=anthropic_error("overloaded_error",
                                                                     "Overloaded")))
    status, got = await post(http, gw.url + "/v1/chat/completions", {**CLAUDE, "stream": True})
    assert status == 503 and got["error"]["type"] == "overloaded_error"
    ex = recorded[-1].at_done
    assert ex is not None and ex.status == 503 and ex.error == "Overloaded"


async def test_a_mid_stream_anthropic_error_ends_the_stream_with_an_openai_error_event(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    events = [
        *anthropic_events(SONNET, parts=["Hel"], end=False),
        sse(anthropic_error("overloaded_error", "Overloaded"), "error"),
        # Nothing after an error reaches the client.
        sse({"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "lo"}}, "content_block_delta"),
    ]
    anthropic.replies.append(Reply(writes=chop(events)))
    async with http.post(gw.url + "/v1/chat/completions",
                         json={**CLAUDE, "stream": True}) as resp:
        assert resp.status == 200
        got = data_of(await asyncio.wait_for(read_events(resp), 5))
    assert got == [
        claude_chunk({"role": "assistant", "content": ""}),
        claude_chunk({"content": "Hel"}),
        {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None,
                   "code": None}},
    ]
    ex = recorded[0].at_done
    assert ex is not None and ex.error == "Overloaded" and ex.completion_text == "Hel"
    assert ex.prompt_tokens == 21  # from message_start; the output was never reported


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_that_stops_short_gets_an_error_event(
        kind: str, fake: FakeFactory, ai_gateway: AiGatewayFactory,
        http: aiohttp.ClientSession, recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    if kind == "openai":
        openai.replies.append(Reply(writes=chop(openai_stream(GPT, False)[:2])))
        model = "gpt-4o"
    else:
        anthropic.replies.append(Reply(writes=chop(anthropic_events(SONNET, end=False))))
        model = "claude"
    async with http.post(gw.url + "/v1/chat/completions",
                         json={**CHAT, "model": model, "stream": True}) as resp:
        got = data_of(await asyncio.wait_for(read_events(resp), 5))
    assert got[-1] == {"error": {
        "message": "the provider's stream ended before the answer was complete",
        "type": "upstream_error", "param": None, "code": "stream_incomplete"}}
    assert "[DONE]" not in got
    ex = recorded[0].at_done
    assert ex is not None and ex.error is not None and "ended before" in ex.error


async def test_a_dropped_provider_connection_never_hangs_the_client(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    stream = openai_stream(GPT, False)
    # Two whole events and half of the third, then the connection is gone.
    openai.replies.append(Reply(writes=[stream[0] + stream[1], Sleep(0.01),
                                        stream[2][:20], Sleep(0.01), Drop()]))
    received = b""
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        async with asyncio.timeout(5):
            async for data in resp.content.iter_any():
                received += data
    # Only whole events reached the client, never half of one, and the stream
    # ends cleanly with an error event (and no [DONE]): the answer is incomplete.
    whole = stream[0] + stream[1]
    assert received.startswith(whole)
    tail = received[len(whole):]
    assert tail.startswith(b"data: ") and tail.endswith(b"\n\n") and b"[DONE]" not in tail
    assert json.loads(tail[6:])["error"]["code"] == "upstream_disconnected"
    ex = recorded[0].at_done
    assert ex is not None and ex.complete
    assert ex.error == "the connection to the provider broke off mid-stream"


# ---------------------------------------------------------------------------
# Azure and other OpenAI-compatible servers


async def test_azure_uses_the_deployment_path_api_version_and_api_key(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    azure = await fake("azure")
    gw = await ai_gateway({
        "providers": {"azure": {"type": "azure", "base_url": azure.base_url,
                                "api_keys": ["azure-key-1"], "api_version": "2024-10-21"}},
        "models": {"gpt-4o": {"provider": "azure", "model": "prod-gpt4o"},
                   "embed": {"provider": "azure", "model": "prod-embed"}},
    })
    status, got = await post(http, gw.url + "/v1/chat/completions", CHAT,
                             {"api-key": "client-key"})
    assert status == 200 and got == openai_completion("prod-gpt4o")
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        events = await read_events(resp)
    assert data_of(events) == [{**c, "created": 0} for c in openai_chunks("prod-gpt4o", False)] \
        + ["[DONE]"]
    status, emb = await post(http, gw.url + "/v1/embeddings", {"model": "embed", "input": "hi"})
    assert status == 200 and emb["data"][0]["embedding"] == [0.25, -0.5, 0.125]
    paths = [r.path_qs for r in azure.received]
    assert paths == ["/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"] * 2 \
        + ["/openai/deployments/prod-embed/embeddings?api-version=2024-10-21"]
    for r in azure.received:
        assert r.headers["api-key"] == "azure-key-1" and "Authorization" not in r.headers
    assert [tokens(s.at_done) for s in recorded] == [(11, 4, 15), (11, 4, 15), (5, 0, 5)]


async def test_a_keyless_openai_compatible_server_under_a_base_path(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    local = await fake("openai")
    gw = await ai_gateway({
        "providers": {"ollama": {"type": "ollama", "base_url": local.url + "/ollama/v1"}},
        "default": {"provider": "ollama"},  # any model name, sent as the client wrote it
    })
    status, got = await post(http, gw.url + "/v1/chat/completions",
                             {**CHAT, "model": "llama3.2:3b"},
                             {"Authorization": "Bearer whatever"})
    assert status == 200 and got["model"] == "llama3.2:3b"
    [r] = local.received
    assert r.path_qs == "/ollama/v1/chat/completions"
    assert "Authorization" not in r.headers


async def test_openai_embeddings_and_their_usage(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    config = both(openai, anthropic)
    config["models"]["embed"] = {"provider": "openai", "model": "text-embedding-3-small"}
    gw = await ai_gateway(config)
    status, got = await post(http, gw.url + "/v1/embeddings",
                             {"model": "embed", "input": ["one", "two"]})
    assert status == 200 and len(got["data"]) == 2
    assert openai.received[0].path_qs == "/v1/embeddings"
    assert openai.received[0].body == {"model": "text-embedding-3-small", "input": ["one", "two"]}
    ex = recorded[0].at_done
    assert ex is not None and ex.api == "embeddings" and ex.prompt_text == "one\ntwo"
    assert tokens(ex) == (10, 0, 10)
    status, got = await post(http, gw.url + "/v1/embeddings", {"model": "claude", "input": "x"})
    assert status == 400 and got["error"]["param"] == "model"


# ---------------------------------------------------------------------------
# Models, keys, client credentials


async def test_models_are_listed_from_the_config(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    async with http.get(gw.url + "/v1/models") as resp:
        assert resp.status == 200
        listing = await resp.json()
    created = listing["data"][0]["created"]
    assert listing == {"object": "list", "data": [
        {"id": "gpt-4o", "object": "model", "created": created, "owned_by": "openai"},
        {"id": "claude", "object": "model", "created": created, "owned_by": "anthropic"}]}
    async with http.get(gw.url + "/v1/models/claude") as resp:
        assert (await resp.json())["id"] == "claude"
    async with http.get(gw.url + "/v1/models/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "model_not_found"
    assert openai.received == [] and anthropic.received == []


async def test_keys_are_used_round_robin(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    config = both(openai, anthropic)
    config["providers"]["openai"]["api_keys"] = ["k1", "k2", "k3"]
    gw = await ai_gateway(config)
    for _ in range(4):
        assert (await post(http, gw.url + "/v1/chat/completions", CHAT))[0] == 200
    assert openai.keys == ["k1", "k2", "k3", "k1"]


async def test_a_rate_limited_or_refused_key_sits_out_its_cooldown(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    config = both(openai, anthropic)
    config["providers"]["openai"]["api_keys"] = ["k1", "k2", "k3"]
    gw = await ai_gateway(config)
    openai.by_key["k1"] = Reply(status=429, json=openai_error(
        "Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded"),
        headers={"Retry-After": "0.3"})
    openai.by_key["k2"] = Reply(status=401, json=openai_error(
        "Incorrect API key provided: k2***. You can find your API key at ...",
        "invalid_request_error", "invalid_api_key"))
    status, got = await post(http, gw.url + "/v1/chat/completions", CHAT)
    assert (status, got) == (429, openai_error(
        "Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded"))
    status, got = await post(http, gw.url + "/v1/chat/completions", CHAT)
    # The gateway's key was refused, not the client's: a 502 that reveals nothing of it.
    assert status == 502 and got["error"]["code"] == "provider_auth_failed"
    assert "k2" not in json.dumps(got)
    for _ in range(3):
        assert (await post(http, gw.url + "/v1/chat/completions", CHAT))[0] == 200
    assert openai.keys == ["k1", "k2", "k3", "k3", "k3"]
    # k1's Retry-After (0.3 s) was shorter than the default cooldown: it is back.
    await asyncio.sleep(0.35)
    del openai.by_key["k1"]
    assert (await post(http, gw.url + "/v1/chat/completions", CHAT))[0] == 200
    assert openai.keys[-1] == "k1"
    assert recorded[0].at_done is not None and recorded[0].at_done.status == 429


async def test_the_clients_credentials_never_reach_a_provider(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(
        both(openai, anthropic),
        plugins={"auth": {"any_of": ["key-auth"], "key-auth": {"headers": ["x-api-key"]}}},
        consumers=[{"name": "alice", "credentials": [
            {"id": "alice-key", "type": "key-auth", "key": "client-secret"}]}])
    client_headers = {"Authorization": "Bearer client-secret", "api-key": "client-secret",
                      "x-api-key": "client-secret", "Cookie": "session=client-secret",
                      "X-Custom": "client-secret", "OpenAI-Beta": "assistants=v2"}
    for model in ("gpt-4o", "claude"):
        status, _ = await post(http, gw.url + "/v1/chat/completions", {**CHAT, "model": model},
                               client_headers)
        assert status == 200
    for r in openai.received + anthropic.received:
        for name, value in r.headers.items():
            assert "client-secret" not in value, name
        assert "X-Forwarded-For" not in r.headers and "X-Consumer-Username" not in r.headers
        assert r.headers["OpenAI-Beta"] == "assistants=v2"  # on the allowlist
    assert openai.received[0].headers["Authorization"] == "Bearer sk-openai-1"
    assert anthropic.received[0].headers["x-api-key"] == "sk-ant-1"
    assert [s.at_done.consumer for s in recorded if s.at_done] == ["alice", "alice"]
    # And without the key, the auth plugin refuses before any provider is called.
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT) as resp:
        assert resp.status == 401
    assert len(openai.received) == 1


# ---------------------------------------------------------------------------
# Failover


def with_fallback(openai: FakeProvider, anthropic: FakeProvider, **provider: Any) -> dict[str, Any]:
    config = both(openai, anthropic)
    config["models"]["gpt-4o"]["fallback"] = ["claude"]
    config["providers"]["openai"].update(provider)
    return config


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_failover_to_the_next_provider_on_429_and_5xx(
        status: int, fake: FakeFactory, ai_gateway: AiGatewayFactory,
        http: aiohttp.ClientSession, recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(with_fallback(openai, anthropic))
    openai.replies.append(Reply(status=status, json=openai_error("busy", "server_error")))
    status_, got = await post(http, gw.url + "/v1/chat/completions", CHAT)
    assert status_ == 200
    assert got["choices"][0]["message"]["content"] == "Hello from claude"
    assert len(openai.received) == 1
    assert anthropic.received[0].body["model"] == SONNET
    ex = recorded[0].at_done
    assert ex is not None
    assert (ex.provider, ex.provider_model, ex.attempts, ex.targets) == (
        "anthropic", SONNET, 2, 2)
    assert tokens(ex) == (21, 6, 27) and ex.requested_model == "gpt-4o"


async def test_failover_of_a_stream_translates_for_the_provider_that_answered(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(with_fallback(openai, anthropic))
    openai.replies.append(Reply(status=500, json=openai_error("boom", "server_error")))
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(gw.url + "/v1/chat/completions", json=body) as resp:
        got = data_of(await read_events(resp))
    assert got[1] == claude_chunk({"content": "Hello"})
    assert got[-2]["usage"] == {"prompt_tokens": 21, "completion_tokens": 6, "total_tokens": 27}
    assert got[-1] == "[DONE]"
    assert openai.received[0].body["stream_options"] == {"include_usage": True}
    assert anthropic.received[0].body["stream"] is True
    assert tokens(recorded[0].at_done) == (21, 6, 27)


async def test_failover_on_connection_refused(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(with_fallback(openai, anthropic,
                                        base_url=f"http://127.0.0.1:{free_tcp_port()}/v1"))
    status, got = await post(http, gw.url + "/v1/chat/completions", CHAT)
    assert status == 200 and got["model"] == SONNET
    ex = recorded[0].at_done
    assert ex is not None and ex.provider == "anthropic" and ex.attempts == 2


async def test_failover_on_a_timeout_before_the_first_byte(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(with_fallback(openai, anthropic, read_timeout=0.3))
    openai.replies.append(Reply(json=openai_completion(GPT), delay=10))
    async with asyncio.timeout(5):
        async with http.post(gw.url + "/v1/chat/completions",
                             json={**CHAT, "stream": True}) as resp:
            got = data_of(await read_events(resp))
    assert resp.status == 200 and got[1] == claude_chunk({"content": "Hello"})
    assert len(openai.received) == 1 and len(anthropic.received) == 1


async def test_a_failed_fallback_key_sits_out_and_the_last_answer_stands(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession,
        recorded: list[Seen]) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(with_fallback(openai, anthropic, api_keys=["a", "b"]))
    openai.by_key["a"] = Reply(status=429, json=openai_error("slow down", "requests"))
    for _ in range(3):
        assert (await post(http, gw.url + "/v1/chat/completions", CHAT))[0] == 200
    # "a" failed over once, then sat out: round-robin alone would have used it again.
    assert openai.keys == ["a", "b", "b"]
    assert [s.at_done.provider for s in recorded if s.at_done] == [
        "anthropic", "openai", "openai"]
    # Every target failing: the last one's answer is what the client gets.
    openai.by_key["b"] = Reply(status=429, json=openai_error("slow down", "requests"))
    anthropic.replies.append(Reply(status=529, json=anthropic_error("overloaded_error",
                                                                     "Overloaded")))
    status, got = await post(http, gw.url + "/v1/chat/completions", CHAT)
    assert status == 503 and got["error"]["message"] == "Overloaded"


async def test_no_provider_reachable(
        ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession, recorded: list[Seen]) -> None:
    dead = f"http://127.0.0.1:{free_tcp_port()}"
    gw = await ai_gateway({
        "providers": {"a": {"type": "openai", "base_url": dead + "/v1", "api_keys": ["a1"]},
                      "b": {"type": "anthropic", "base_url": dead, "api_keys": ["b1"]}},
        "models": {"m": {"provider": "a", "fallback": [{"provider": "b", "model": "c"}]}},
    })
    async with asyncio.timeout(5):
        status, got = await post(http, gw.url + "/v1/chat/completions", {**CHAT, "model": "m"})
    assert status == 502
    # The gateway answers this one itself, in OpenAI's error shape (flow.error_body).
    assert got["error"]["type"] == "upstream_error" and got["error"]["code"] == "gateway_502"
    ex = recorded[0].at_done
    assert ex is not None and ex.complete and ex.status == 502 and ex.error


# ---------------------------------------------------------------------------
# Client errors


async def test_malformed_requests_get_openai_errors(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    url = gw.url + "/v1/chat/completions"
    async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) \
            as resp:
        assert resp.status == 400
        assert await resp.json() == {"error": {"message": "the request body is not valid JSON",
                                               "type": "invalid_request_error", "param": None,
                                               "code": None}}
    cases: list[tuple[Any, int, str | None]] = [
        ({"model": "gpt-4o"}, 400, "messages"),
        ({"model": "gpt-4o", "messages": []}, 400, "messages"),
        ({"model": "gpt-4o", "messages": ["hi"]}, 400, "messages[0]"),
        ({"model": "gpt-4o", "messages": CHAT["messages"], "stream": "yes"}, 400, "stream"),
        ({"messages": CHAT["messages"]}, 400, "model"),
        ({"model": "gpt-5", "messages": CHAT["messages"]}, 404, "model"),
        ({**CLAUDE, "n": 2}, 400, "n"),
        ([1, 2], 400, None),
    ]
    for body, status, param in cases:
        got_status, got = await post(http, url, body)
        assert (got_status, got["error"]["param"]) == (status, param), body
        assert got["error"]["type"] == "invalid_request_error"
    async with http.get(url) as resp:
        assert resp.status == 405
    async with http.post(gw.url + "/v1/completions", json={}) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_url"
    async with http.post(url) as resp:
        assert resp.status == 400
    assert openai.received == [] and anthropic.received == []


async def test_provider_errors_pass_through_in_openai_format(
        fake: FakeFactory, ai_gateway: AiGatewayFactory, http: aiohttp.ClientSession) -> None:
    openai, anthropic = await fake("openai"), await fake("anthropic")
    gw = await ai_gateway(both(openai, anthropic))
    error = openai_error("Invalid 'messages[1].content'", "invalid_request_error",
                         "invalid_value", "messages[1].content")
    openai.replies.append(Reply(status=400, json=error))
    assert await post(http, gw.url + "/v1/chat/completions", CHAT) == (400, error)
    openai.replies.append(Reply(status=404, json={"error": "model 'x' not found"}))  # Ollama's
    assert await post(http, gw.url + "/v1/chat/completions", CHAT) == (404, {"error": {
        "message": "model 'x' not found", "type": "invalid_request_error", "param": None,
        "code": None}})


def test_config_errors_name_the_bad_reference() -> None:
    def load(plugin: dict[str, Any]) -> None:
        parse_config(json.dumps({
            "listeners": [{"address": "127.0.0.1:0"}],
            "services": {"s": {"endpoints": [{"url": "http://127.0.0.1:1"}]}},
            "routes": [{"name": "r", "match": {"path_prefix": "/"}, "service": "s",
                        "plugins": {"ai-proxy": plugin}}]}))

    openai = {"type": "openai", "api_keys": ["k"]}
    with pytest.raises(ConfigError, match="no provider 'nope'"):
        load({"providers": {"openai": openai}, "models": {"m": {"provider": "nope"}}})
    with pytest.raises(ConfigError, match="no model 'ghost'"):
        load({"providers": {"openai": openai},
              "models": {"m": {"provider": "openai", "fallback": ["ghost"]}}})
    with pytest.raises(ConfigError, match="needs a base_url"):
        load({"providers": {"az": {"type": "azure"}}, "models": {"m": {"provider": "az"}}})
    with pytest.raises(ConfigError) as err:
        load({"providers": {"openai": {"type": "openai", "api_keys": ["sk-secret", ""]}},
              "models": {"m": {"provider": "openai"}}})
    assert "sk-secret" not in str(err.value)
