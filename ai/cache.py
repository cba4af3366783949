"""The ``ai-cache`` plugin: answer repeated chat completions from the store.

    plugins:
      ai-proxy: {...}
      ai-cache:
        ttl: 1h                  # how long an answer is kept
        scope: global            # or consumer: each consumer has its own entries
        max_temperature: 0       # explicit temperatures above this are not cached
        max_entry_bytes: 256KiB  # larger answers are not stored

An exact-match cache: a chat-completions request whose model, messages and
answer-shaping parameters are byte-for-byte those of an earlier successful one
gets the earlier answer, without a provider being called. It works on the
exchange record ``ai-proxy`` keeps (``ai.exchange``), so it runs *after*
ai-proxy in the ``AI`` group (priority 950 < 1000), and before the other AI
plugins (``ai-token-ratelimit`` at 900, ``ai-statistics`` at 100):

* ``on_request_body``: ai-proxy has checked the request and started the record
  (nothing has gone upstream yet: the gateway forwards once every request hook
  has run). The cache looks the key up; on a hit it answers with
  ``flow.respond(...)``, a whole JSON completion or, for a streaming client, one
  body holding the whole ``text/event-stream`` (role chunk, content chunks,
  finish chunk, usage chunk when asked, ``data: [DONE]``), and marks the record
  ``cached`` with zero tokens. The provider is never called.
* ``on_done``: after a miss, the completed record (``completion_text``,
  ``finish_reason``, usage) is stored, whether the client streamed or not, so
  either kind of client can be answered from it. Only complete, successful
  answers are stored: status 200, no error, finish reason ``stop`` or
  ``length``, some text, no tool calls.

The key is the SHA-256 of canonical JSON (sorted keys, no whitespace, integral
floats as integers) of: the route, the provider and model the request goes to,
the consumer (``scope: consumer``), and the request body minus the fields that do
not change the answer (``stream``, ``stream_options``, ``user``, ``metadata``,
``store``, ``service_tier``, ``prompt_cache_key``, ``safety_identifier``; ``n``
when it is 1). Every other field counts, including ones this module does not
know, so a new parameter can only split entries, never mix two answers. Store
keys are ``ai-cache:<route>:<sha256 hex>``.

Responses carry ``X-Bastion-Cache: hit``, ``miss`` (looked up, not found; the
answer will be stored if it qualifies) or ``bypass`` (the request is not
cacheable, see ``_uncacheable``). A store failure is a miss, and a failed write
is only logged: the cache never fails a request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ai.exchange import AiExchange, exchange
from ai.openai_format import DONE_EVENT, JSON, Usage, chunk, encode_data, usage_dict
from proxy.config import Config, ConfigPath, Duration, Size
from proxy.flow import Flow
from proxy.plugin import Group, Plugin, PluginContext
from proxy.store import StoreError

log = logging.getLogger("bastion.ai.cache")

__all__ = ["CACHE_HEADER", "AiCacheConfig", "AiCachePlugin", "cache_key"]

CACHE_HEADER: Final = "X-Bastion-Cache"
_KEY_PREFIX: Final = "ai-cache:"
_FORMAT: Final = 1  # version of the key material and of the stored entry
# Request fields that do not change the answer: left out of the key.
_NOT_IN_KEY: Final = frozenset({"stream", "stream_options", "user", "metadata", "store",
                                "service_tier", "prompt_cache_key", "safety_identifier"})
_CACHEABLE_FINISH: Final = frozenset({"stop", "length"})
# A streamed replay cuts the text into content chunks of at most this many characters.
_REPLAY_PIECE: Final = 1024
_WARN_EVERY: Final = 10.0
_FALSE: Final = frozenset({"", "0", "false", "off", "no"})


class AiCacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: How long an answer is kept.
    ttl: Duration = 3600.0
    #: global: one entry per request, whoever asks. consumer: entries are per
    #: consumer (the auth plugin's), and anonymous requests are not cached.
    scope: Literal["global", "consumer"] = "global"
    #: Requests with an explicit temperature above this are not cached (nor
    #: looked up). Requests without one are. None: whatever the temperature.
    max_temperature: float | None = Field(default=0.0, ge=0)
    #: Largest stored entry (its JSON: the text, the finish reason, the usage).
    max_entry_bytes: Size = 256 << 10
    #: A request carrying this header (any value but 0/false/off/no) neither
    #: reads nor fills the cache. None: no such header.
    skip_header: str | None = "X-Bastion-Cache-Skip"

    @field_validator("ttl")
    @classmethod
    def _positive_ttl(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError("ttl must be a positive duration")
        return v

    @field_validator("max_entry_bytes")
    @classmethod
    def _entry_size(cls, v: int) -> int:
        if v < 256:
            raise ValueError("max_entry_bytes must be at least 256 bytes")
        return v


@dataclass(slots=True)
class _Flight:
    #: Store key of a request that missed: set only while its answer may be stored.
    key: str | None = None
    #: The request offers tools: watch the answer for tool calls (never stored).
    watch_tools: bool = False
    saw_tool_calls: bool = False


@dataclass(frozen=True, slots=True)
class _Entry:
    model: str
    content: str
    finish_reason: str
    usage: Usage | None


def _normalized(value: Any) -> Any:
    """JSON with integral floats as integers, so ``0`` and ``0.0`` make one key."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def cache_key(ex: AiExchange, consumer: str | None = None) -> str:
    """The store key of the exchange's request (see the module docstring)."""
    body = {k: v for k, v in ex.request.items() if k not in _NOT_IN_KEY}
    if body.get("n") == 1:
        del body["n"]
    material = {"v": _FORMAT, "route": ex.route, "provider": ex.provider,
                "provider_model": ex.provider_model, "consumer": consumer, "request": body}
    canonical = json.dumps(_normalized(material), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_KEY_PREFIX}{ex.route}:{digest}"


def _encode_entry(ex: AiExchange) -> bytes:
    usage = None
    if ex.total_tokens is not None:
        usage = usage_dict(Usage(ex.prompt_tokens or 0, ex.completion_tokens or 0,
                                 ex.total_tokens, ex.cached_tokens or 0))
    return json.dumps({"v": _FORMAT, "model": ex.provider_model or ex.requested_model,
                       "content": ex.completion_text, "finish_reason": ex.finish_reason,
                       "usage": usage, "stored": int(time.time())},
                      separators=(",", ":"), ensure_ascii=False).encode()


def _decode_entry(raw: bytes) -> _Entry | None:
    """A stored entry; None for anything this version did not write."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != _FORMAT:
        return None
    model, content, reason = data.get("model"), data.get("content"), data.get("finish_reason")
    if not (isinstance(model, str) and isinstance(content, str) and isinstance(reason, str)):
        return None
    usage = None
    u = data.get("usage")
    if isinstance(u, dict):
        details = u.get("prompt_tokens_details")
        cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
        try:
            usage = Usage(int(u["prompt_tokens"]), int(u["completion_tokens"]),
                          int(u["total_tokens"]), int(cached))
        except (KeyError, TypeError, ValueError):
            return None
    return _Entry(model, content, reason, usage)


def _usage_json(usage: Usage | None) -> JSON:
    return usage_dict(usage if usage is not None else Usage())


def replay_json(entry: _Entry, id: str, created: int) -> JSON:
    """The entry as a non-streamed ``chat.completion``."""
    return {
        "id": id, "object": "chat.completion", "created": created, "model": entry.model,
        "choices": [{"index": 0,
                     "message": {"role": "assistant", "content": entry.content, "refusal": None},
                     "logprobs": None, "finish_reason": entry.finish_reason}],
        "usage": _usage_json(entry.usage),
    }


def replay_stream(entry: _Entry, id: str, created: int, include_usage: bool) -> bytes:
    """The entry as a whole OpenAI event stream, as a provider would have sent it."""
    def event(delta: JSON, finish: str | None = None) -> bytes:
        c = chunk(id, created, entry.model, delta, finish)
        if include_usage:
            c["usage"] = None  # as OpenAI does on every chunk but the last when usage is on
        return encode_data(c)

    text = entry.content
    out = [event({"role": "assistant", "content": ""})]
    out += [event({"content": text[i:i + _REPLAY_PIECE]})
            for i in range(0, len(text), _REPLAY_PIECE)]
    out.append(event({}, entry.finish_reason))
    if include_usage:
        out.append(encode_data({"id": id, "object": "chat.completion.chunk", "created": created,
                                "model": entry.model, "choices": [],
                                "usage": _usage_json(entry.usage)}))
    out.append(DONE_EVENT)
    return b"".join(out)


class AiCachePlugin(Plugin[AiCacheConfig]):
    name = "ai-cache"
    group = Group.AI
    # After ai-proxy (1000): its record and checks come first. Nothing has been
    # sent upstream when this plugin's on_request_body runs (the gateway
    # forwards after the whole chain), so a hit still saves the provider call;
    # and the response hooks see OpenAI-format chunks. Before ai-token-ratelimit
    # (900): a hit costs no tokens, so it is not held to a token budget. AI
    # plugins after this one do not get on_request_body for a hit (a local
    # answer ends the chain), but they all get on_done, the record marked cached.
    priority = 950
    config_model = AiCacheConfig
    response_body_streaming = True

    def __init__(self, config: AiCacheConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self._store_errors = ctx.metrics.counter(
            "bastion_ai_cache_store_errors_total",
            "Store failures seen by ai-cache (a failed lookup counts as a miss, a failed "
            "write is dropped), by operation and kind", ["op", "kind"])
        self._last_warning = -math.inf

    @classmethod
    def check_config(cls, config: Config,
                     uses: Sequence[tuple[ConfigPath, BaseModel]]) -> list[tuple[ConfigPath, str]]:
        problems: list[tuple[ConfigPath, str]] = []
        for path, _ in uses:
            if len(path) < 2 or path[0] != "routes" or not isinstance(path[1], int):
                continue  # global: applies to AI routes, ignored on the others
            plugins = config.routes[path[1]].plugins
            on = plugins.get("ai-proxy", config.plugins.get("ai-proxy", False))
            if on is False or (isinstance(on, dict) and on.get("enabled") is False):
                problems.append((path, "ai-cache needs ai-proxy on the same route"))
        return problems

    # ------------------------------------------------------------- requests

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        if not end:
            return chunk
        ex = exchange(flow)
        if ex is None or ex.api != "chat" or ex.cached or ex.complete:
            return chunk
        consumer = ex.consumer
        why = self._uncacheable(flow, ex)
        if why is not None:
            flow.add_response_header(CACHE_HEADER, "bypass")
            flow.decide(self.name, "bypass", reason=why)
            return chunk
        key = cache_key(ex, consumer if self.config.scope == "consumer" else None)
        raw: bytes | None = None
        try:
            raw = await self.ctx.store.get(key)
        except StoreError as exc:
            self._store_failed("get", exc)
        entry = _decode_entry(raw) if raw is not None else None
        if entry is None:
            st = flow.state(self, _Flight)
            st.key = key
            st.watch_tools = bool(ex.request.get("tools") or ex.request.get("functions"))
            flow.add_response_header(CACHE_HEADER, "miss")
            flow.decide(self.name, "miss")
            return chunk
        self._answer(flow, ex, entry)
        return b""

    def _uncacheable(self, flow: Flow, ex: AiExchange) -> str | None:
        """Why this request is neither looked up nor stored; None when it may be."""
        skip = self.config.skip_header
        if skip is not None:
            value = flow.request.headers.get(skip)
            if value is not None and value.strip().lower() not in _FALSE:
                return "skip header"
        req = ex.request
        n = req.get("n")
        if n is not None and n != 1:
            return "n > 1"
        temperature = req.get("temperature")
        limit = self.config.max_temperature
        if temperature is not None and limit is not None and (
                not isinstance(temperature, int | float) or temperature > limit):
            return "temperature"
        # Parts of an answer the record does not keep: a replay would lack them.
        if req.get("logprobs") or req.get("top_logprobs") is not None:
            return "logprobs"
        modalities = req.get("modalities")
        if req.get("audio") is not None or (isinstance(modalities, list)
                                            and "audio" in modalities):
            return "audio"
        if self.config.scope == "consumer" and ex.consumer is None:
            return "anonymous"
        return None

    def _answer(self, flow: Flow, ex: AiExchange, entry: _Entry) -> None:
        created = int(time.time())
        id = f"chatcmpl-cache-{flow.request_id}"
        if ex.streaming:
            options = ex.request.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            flow.respond(200, replay_stream(entry, id, created, usage), {
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache", CACHE_HEADER: "hit"})
        else:
            body = json.dumps(replay_json(entry, id, created), ensure_ascii=False).encode()
            flow.respond(200, body, {"Content-Type": "application/json", CACHE_HEADER: "hit"})
        # The record: answered here, no provider tokens spent.
        ex.cached = True
        ex.attempts = 0
        ex.completion_text = entry.content
        ex.finish_reason = entry.finish_reason
        ex.set_usage(Usage())
        ex.mark_first_token()
        ex.finish(200)
        flow.decide(self.name, "hit")

    # ------------------------------------------------------------ responses

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        st = flow.state(self, _Flight)
        if st.watch_tools and not st.saw_tool_calls and (
                b'"tool_calls"' in chunk or b'"function_call"' in chunk):
            st.saw_tool_calls = True
        return chunk

    async def on_done(self, flow: Flow) -> None:
        st = flow.state(self, _Flight)
        key = st.key
        if key is None:
            return
        st.key = None
        ex = exchange(flow)
        if ex is None or not self._storable(flow, ex, st):
            return
        data = _encode_entry(ex)
        if len(data) > self.config.max_entry_bytes:
            flow.decide(self.name, "too-large", bytes=len(data))
            return
        try:
            await self.ctx.store.set(key, data, self.config.ttl)
        except StoreError as exc:
            self._store_failed("set", exc)
            return
        flow.decide(self.name, "stored")

    @staticmethod
    def _storable(flow: Flow, ex: AiExchange, st: _Flight) -> bool:
        """A complete, successful text answer: nothing cut off, failed or partial."""
        return (ex.complete and not ex.cached and ex.error is None and ex.status == 200
                and flow.response_status == 200 and flow.upstream_error is None
                and ex.finish_reason in _CACHEABLE_FINISH and bool(ex.completion_text)
                and not st.saw_tool_calls)

    def _store_failed(self, op: str, exc: StoreError) -> None:
        self._store_errors.labels(op, exc.kind).inc()
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            log.warning("ai-cache: store %s failed (%s): %s; %s", op, exc.kind, exc,
                        "treated as a miss" if op == "get" else "answer not cached")
