"""Fake LLM providers: aiohttp apps speaking OpenAI, Azure OpenAI and Anthropic wire formats.

Each fake records every request it receives and answers as the real API does
(paths, auth headers, JSON shapes, SSE framing). A test may script answers:

* ``fake.replies.append(Reply(...))``: the next request gets it (FIFO);
* ``fake.by_key[key] = Reply(...)``: every request made with that API key gets it;
* otherwise the default answer for the request (JSON, or a stream when asked).

A ``Reply`` gives a status and JSON, or a stream as a list of writes: bytes,
``Sleep`` (flush, then pause), ``Wait`` (flush, then wait for an asyncio.Event
the test sets) and ``Drop`` (cut the connection). ``chop()`` cuts a stream so
that events straddle writes and writes hold several events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDictProxy

Kind = Literal["openai", "azure", "anthropic"]
JSON = dict[str, Any]

CREATED = 1_700_000_000


@dataclass
class Sleep:
    seconds: float = 0.01


@dataclass
class Wait:
    event: asyncio.Event


@dataclass
class Drop:
    """Close the connection abruptly (no end of the chunked body)."""


Write = bytes | Sleep | Wait | Drop


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    # A streamed (text/event-stream) body, as the writes to make.
    writes: list[Write] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering at all (cut short when the fake is released).
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path_qs: str
    headers: CIMultiDictProxy[str]
    body: Any

    @property
    def key(self) -> str | None:
        return provider_key(self.headers)


def provider_key(headers: CIMultiDictProxy[str]) -> str | None:
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:]
    return headers.get("api-key") or headers.get("x-api-key")


def sse(data: Any, event: str | None = None) -> bytes:
    """One event as the providers write it: compact JSON (OpenAI) on one data line."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def chop(events: Sequence[bytes], pause: float = 0.005) -> list[Write]:
    """The stream cut in the middle of every other event, a short pause after each write.

    So one write ends with half an event and the next carries its rest plus
    whole events: both ways a parser can be wrong.
    """
    stream = b"".join(events)
    cuts = [0]
    pos = 0
    for i, ev in enumerate(events):
        if i % 2 == 1:
            cuts.append(pos + len(ev) // 2)
        pos += len(ev)
    cuts.append(len(stream))
    out: list[Write] = []
    for a, b in itertools.pairwise(cuts):
        if b > a:
            out += [stream[a:b], Sleep(pause)]
    return out


def tiny_writes(events: Sequence[bytes], size: int = 7) -> list[Write]:
    stream = b"".join(events)
    out: list[Write] = []
    for i in range(0, len(stream), size):
        out += [stream[i:i + size], Sleep(0)]
    return out


# ---------------------------------------------------------------------------
# OpenAI wire format


def openai_completion(model: str, text: str = "Hello from openai",
                      usage: tuple[int, int] = (11, 4)) -> JSON:
    return {
        "id": "chatcmpl-fake1", "object": "chat.completion", "created": CREATED, "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0,
                     "message": {"role": "assistant", "content": text, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                  "total_tokens": usage[0] + usage[1],
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}},
    }


def openai_chunks(model: str, include_usage: bool, parts: Sequence[str] = ("Hel", "lo"),
                  usage: tuple[int, int] = (11, 4)) -> list[JSON]:
    """The chunk objects of a streamed completion, as OpenAI sends them."""
    def chunk(delta: JSON, finish: str | None = None) -> JSON:
        c: JSON = {"id": "chatcmpl-fake1", "object": "chat.completion.chunk",
                   "created": CREATED, "model": model, "system_fingerprint": "fp_fake",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish}]}
        if include_usage:
            c["usage"] = None
        return c

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"content": p}) for p in parts]
    out.append(chunk({}, "stop"))
    if include_usage:
        out.append({"id": "chatcmpl-fake1", "object": "chat.completion.chunk",
                    "created": CREATED, "model": model, "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                              "total_tokens": usage[0] + usage[1]}})
    return out


def openai_stream(model: str, include_usage: bool, **kwargs: Any) -> list[bytes]:
    return [sse(c) for c in openai_chunks(model, include_usage, **kwargs)] + [sse("[DONE]")]


def openai_embeddings(model: str, inputs: Any) -> JSON:
    n = len(inputs) if isinstance(inputs, list) else 1
    return {"object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": [0.25, -0.5, 0.125]}
                     for i in range(n)],
            "model": model, "usage": {"prompt_tokens": 5 * n, "total_tokens": 5 * n}}


def openai_error(message: str, type: str, code: str | None = None,
                 param: str | None = None) -> JSON:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# ---------------------------------------------------------------------------
# Anthropic wire format

ANTHROPIC_USAGE = {"input_tokens": 21, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0, "output_tokens": 6}


def anthropic_message(model: str, text: str = "Hello from claude") -> JSON:
    return {"id": "msg_fake1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": dict(ANTHROPIC_USAGE)}


def anthropic_events(model: str, parts: Sequence[str] = ("Hello", " from claude"),
                     end: bool = True) -> list[bytes]:
    """A Messages stream exactly as Anthropic frames it (event: line, then data: line)."""
    start_usage = {**ANTHROPIC_USAGE, "output_tokens": 1}
    events = [
        sse({"type": "message_start", "message": {
            "id": "msg_fake1", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}},
            "message_start"),
        sse({"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}}, "content_block_start"),
        b'event: ping\ndata: {"type": "ping"}\n\n',
    ]
    events += [sse({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": p}}, "content_block_delta")
               for p in parts]
    if end:
        events += [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse({"type": "message_delta",
                 "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                 "usage": {"output_tokens": 6}}, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]
    return events


def anthropic_error(type: str, message: str) -> JSON:
    return {"type": "error", "error": {"type": type, "message": message}}


# ---------------------------------------------------------------------------
# The fake server


class FakeProvider:
    """One provider account on a local port; ``url`` is set once it is served."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.url = ""
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.by_key: dict[str, Reply] = {}
        self.released = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    @property
    def base_url(self) -> str:
        """What the gateway's `base_url` for this provider is (as each SDK has it)."""
        return self.url + "/v1" if self.kind == "openai" else self.url

    @property
    def keys(self) -> list[str | None]:
        return [r.key for r in self.received]

    def release(self) -> None:
        self.released.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.released.wait(), seconds)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        rec = Received(request.method, request.path_qs, request.headers, body)
        self.received.append(rec)
        refused = self._check(request)
        if refused is not None:
            return refused
        key = rec.key
        if key is not None and key in self.by_key:
            reply = self.by_key[key]
        elif self.replies:
            reply = self.replies.pop(0)
        else:
            reply = self._default(request.path, body if isinstance(body, dict) else {})
        if reply.delay:
            await self._pause(reply.delay)
        if reply.writes is None:
            return web.json_response(reply.json, status=reply.status, headers=reply.headers)
        return await self._stream(request, reply)

    def _check(self, request: web.Request) -> web.Response | None:
        """Refuse what the real API refuses: wrong path, missing credentials or version."""
        path = request.path
        if self.kind == "openai":
            if not path.endswith(("/chat/completions", "/embeddings")):
                return web.json_response(openai_error("Invalid URL", "invalid_request_error",
                                                      "unknown_url"), status=404)
        elif self.kind == "azure":
            if not (path.startswith("/openai/deployments/")
                    and path.endswith(("/chat/completions", "/embeddings"))):
                return web.json_response({"error": {"code": "404", "message": "Resource not "
                                                    "found"}}, status=404)
            if "api-version" not in request.query:
                return web.json_response({"error": {"code": "404", "message": "api-version "
                                                    "missing"}}, status=404)
            if "api-key" not in request.headers:
                return web.json_response({"error": {"code": "401", "message": "Access denied "
                                                    "due to missing subscription key."}},
                                         status=401)
        else:
            if path != "/v1/messages":
                return web.json_response(anthropic_error("not_found_error", "Not Found"),
                                         status=404)
            if "x-api-key" not in request.headers:
                return web.json_response(anthropic_error(
                    "authentication_error", "x-api-key header is required"), status=401)
            if "anthropic-version" not in request.headers:
                return web.json_response(anthropic_error(
                    "invalid_request_error", "anthropic-version: header is required"), status=400)
        return None

    def _default(self, path: str, body: JSON) -> Reply:
        model = str(body.get("model", ""))
        if self.kind == "anthropic":
            if body.get("stream"):
                return Reply(writes=chop(anthropic_events(model)))
            return Reply(json=anthropic_message(model))
        if path.endswith("/embeddings"):
            return Reply(json=openai_embeddings(model, body.get("input")))
        if body.get("stream"):
            options = body.get("stream_options") or {}
            return Reply(writes=chop(openai_stream(model, options.get("include_usage") is True)))
        return Reply(json=openai_completion(model))

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        resp = web.StreamResponse(status=reply.status, headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
            **reply.headers})
        await resp.prepare(request)
        for w in reply.writes or ():
            if isinstance(w, bytes):
                await resp.write(w)
            elif isinstance(w, Sleep):
                await asyncio.sleep(w.seconds)
            elif isinstance(w, Wait):
                waiter = asyncio.ensure_future(w.event.wait())
                release = asyncio.ensure_future(self.released.wait())
                await asyncio.wait({waiter, release}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                release.cancel()
            else:
                assert request.transport is not None
                request.transport.abort()
                return resp
        await resp.write_eof()
        return resp
