"""The ``ai-proxy`` plugin: an OpenAI-compatible front for several LLM providers, with failover.

    plugins:
      ai-proxy:
        providers:
          openai:    {type: openai, api_keys: ["${OPENAI_KEY_1}", "${OPENAI_KEY_2}"]}
          anthropic: {type: anthropic, api_keys: ["${ANTHROPIC_KEY}"]}
        models:
          gpt-4o: {provider: openai, model: gpt-4o-2024-08-06, fallback: [claude]}
          claude: {provider: anthropic, model: claude-3-5-sonnet-latest}
        default: gpt-4o          # for a model the map does not name (else 404)

Clients call ``POST .../chat/completions`` (streamed or not), ``POST
.../embeddings`` and ``GET .../models`` (answered here, from ``models``), with
the OpenAI SDK or anything speaking its API. The path's ending picks the API,
so the route's prefix is free (``/v1/`` usually).

How a request goes:

1. ``on_request_headers``: the API is known from the path; ``/models`` is
   answered at once. Every client header except a short allowlist is removed
   (the client's own key: ``Authorization``, ``api-key``, ``x-api-key``, its
   cookies, its address), so nothing of the client's reaches a provider.
2. ``on_request_body`` (the whole body, buffered up to ``max_request_bytes``):
   the JSON is checked (a malformed request gets a 400 in OpenAI's error
   format), the model resolved to a list of targets (the model, then its
   ``fallback`` entries), and for each target the provider's request is built:
   path, body (the model name differs per provider, Anthropic's format differs
   altogether) and auth header from the provider's key pool. They go into
   ``flow.upstream_targets``, with ``fallback_on`` as
   ``flow.upstream_retry_statuses``: the gateway tries them in order, moving on
   after a connection failure, a timeout before the response headers, or one of
   those statuses. The exchange record (``ai.exchange``) starts here.
3. ``on_response_headers``: ``flow.upstream_target`` says who answered; its
   key is set aside after a 401/403/429. Errors are buffered and rewritten to
   OpenAI's error format; other answers are read (and translated, for
   Anthropic) as whole JSON bodies or event by event for streams.
4. ``on_response_body``: streams go through ``proxy.sse.SSEParser`` (an event
   split across TCP reads is reassembled; several in one read are all
   delivered) and out as soon as each event is complete.
5. ``on_done``: the exchange record is closed whatever happened.

ai-proxy has the highest priority in the ``AI`` group, so the other AI plugins
see its work: the exchange record from their request hooks on, and
OpenAI-format response chunks in their response hooks.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ai.exchange import AiExchange, Api, start_exchange
from ai.openai_format import (
    JSON,
    embedding_input_text,
    error_body,
    finish_reason_of,
    last_user_text,
    prompt_text,
    response_text,
    usage_of,
)
from ai.providers import Provider, ProviderConfig, RequestError, StreamTranslator, make_provider
from proxy.flow import Flow, LocalResponse, UpstreamTarget
from proxy.plugin import Group, Plugin, PluginContext
from proxy.sse import SSEBufferOverflow, SSEParser

log = logging.getLogger("bastion.ai")

__all__ = ["AiProxyConfig", "AiProxyPlugin", "ModelRoute", "ModelTarget"]

# Request headers a provider may see; everything else the client sent is
# dropped (its credentials above all). `forward_headers` adds to the list.
_FORWARD = frozenset({"content-type", "accept", "user-agent", "x-request-id", "openai-beta",
                      "anthropic-beta"})
# The client's own API key, wherever a client SDK puts it.
_CLIENT_KEY_HEADERS = ("Authorization", "api-key", "x-api-key", "x-goog-api-key")
# Provider response headers that describe the gateway's account, not the answer.
_DROP_RESPONSE = ("Set-Cookie", "openai-organization", "openai-project",
                  "anthropic-organization-id")
_MODELS_PATH = re.compile(r"/models(?:/(?P<id>.+))?$")
_ERROR_BODY_LIMIT = 1 << 20

_PathApi = Literal["chat", "embeddings", "models"]


class ModelTarget(BaseModel):
    """A provider and the model name to send it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    #: The provider's model name (an Azure deployment name for Azure). None:
    #: the name the client asked for (for a `models` entry: its key).
    model: str | None = None


class ModelRoute(ModelTarget):
    """A model as clients name it: where it goes, and where to go next on failure."""

    #: Tried in order after a 429/5xx/timeout/refused connection: names of other
    #: `models` entries, or targets. None: the plugin-wide `fallback`.
    fallback: list[str | ModelTarget] | None = None


class AiProxyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: dict[str, ProviderConfig] = Field(min_length=1)
    #: Model names clients use -> provider and model. Listed by GET /v1/models.
    models: dict[str, ModelRoute] = Field(default_factory=dict)
    #: For a model `models` does not name: the name of a `models` entry, or a
    #: target (with no `model`, the client's model name goes to that provider
    #: as is). None: such requests get 404 model_not_found.
    default: str | ModelRoute | None = None
    #: Fallback for models that set none.
    fallback: list[str | ModelTarget] = Field(default_factory=list)
    #: Statuses that move a request on to the next target (if there is one).
    fallback_on: list[int] = Field(default_factory=lambda: [429, 500, 502, 503, 504, 529])
    #: Send streaming clients the final usage chunk even when they did not ask
    #: (``stream_options.include_usage``).
    always_stream_usage: bool = False
    #: Request headers passed to providers besides the built-in allowlist.
    forward_headers: list[str] = Field(default_factory=list)
    max_request_bytes: int = Field(default=10 << 20, ge=1024)
    #: Largest non-streamed response read (and translated); larger Anthropic
    #: answers get a 502, larger OpenAI-style ones pass unread.
    max_response_bytes: int = Field(default=32 << 20, ge=1024)
    #: Largest single SSE event from a provider; past it the stream ends with an error.
    max_event_bytes: int = Field(default=1 << 20, ge=1024)

    @field_validator("fallback_on")
    @classmethod
    def _check_statuses(cls, v: list[int]) -> list[int]:
        for status in v:
            if not 400 <= status <= 599:
                raise ValueError(f"fallback_on takes 4xx and 5xx statuses, got {status}")
        return v

    @model_validator(mode="after")
    def _check_references(self) -> AiProxyConfig:
        def target(t: str | ModelTarget, where: str) -> None:
            if isinstance(t, str):
                if t not in self.models:
                    raise ValueError(f"{where}: no model {t!r} in models")
            elif t.provider not in self.providers:
                raise ValueError(f"{where}: no provider {t.provider!r} in providers")

        for name, route in self.models.items():
            target(ModelTarget(provider=route.provider), f"models.{name}")
            for i, f in enumerate(route.fallback or ()):
                target(f, f"models.{name}.fallback[{i}]")
        if self.default is not None:
            target(self.default, "default")
            if isinstance(self.default, ModelRoute):
                for i, f in enumerate(self.default.fallback or ()):
                    target(f, f"default.fallback[{i}]")
        for i, f in enumerate(self.fallback):
            target(f, f"fallback[{i}]")
        if not self.models and self.default is None:
            raise ValueError("name some models, or a default")
        return self


# ---------------------------------------------------------------------------
# Per-request state


@dataclass(eq=False)
class _TargetMeta:
    """What ai-proxy needs back from ``flow.upstream_target`` (its ``meta``)."""

    index: int
    provider: Provider
    model: str
    injected_usage: bool
    # Set when the gateway reads the target's headers, i.e. when it is tried.
    key_index: int | None = None
    tried: bool = False


class _ProviderHeaders(Mapping[str, str]):
    """A target's headers, with the API key picked from the pool only when the
    gateway reads them, i.e. when that target is actually tried: a fallback never
    used takes no turn in its provider's round-robin."""

    def __init__(self, base: Mapping[str, str], meta: _TargetMeta) -> None:
        self._base = base
        self._meta = meta
        self._headers: dict[str, str] | None = None

    def _resolve(self) -> dict[str, str]:
        if self._headers is None:
            meta = self._meta
            pool = meta.provider.pool
            meta.key_index = pool.pick()
            meta.tried = True
            key = None if meta.key_index is None else pool.key(meta.key_index)
            self._headers = {**self._base, **meta.provider.auth_headers(key)}
        return self._headers

    def __getitem__(self, name: str) -> str:
        return self._resolve()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolve())

    def __len__(self) -> int:
        return len(self._resolve())

    def __repr__(self) -> str:  # never a key in a log line
        names = list(self._headers or self._base)
        return f"<provider headers {names}, credentials hidden>"


@dataclass(eq=False)
class _Flight:
    api: _PathApi | None = None
    stream: bool = False
    client_usage: bool = False
    exchange: AiExchange | None = None
    mode: Literal["", "stream", "json", "error", "raw"] = ""
    meta: _TargetMeta | None = None
    upstream_status: int = 0
    parser: SSEParser | None = None
    translator: StreamTranslator | None = None
    skipped: list[_TargetMeta] = field(default_factory=list)


def _api_of(path: str) -> tuple[_PathApi, str | None] | None:
    if path.endswith("/chat/completions"):
        return "chat", None
    if path.endswith("/embeddings"):
        return "embeddings", None
    m = _MODELS_PATH.search(path)
    if m is not None:
        return "models", m.group("id")
    return None


def _openai_error(flow: Flow, status: int, message: str, type: str = "invalid_request_error",
                  code: str | None = None, param: str | None = None) -> None:
    flow.respond(status, error_body(message, type, code, param))


# ---------------------------------------------------------------------------
# The plugin


class AiProxyPlugin(Plugin[AiProxyConfig]):
    name = "ai-proxy"
    group = Group.AI
    # First in the AI group: the other AI plugins read the exchange it starts
    # and see OpenAI-format responses.
    priority = 1000
    config_model = AiProxyConfig
    response_body_streaming = True

    def __init__(self, config: AiProxyConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.request_body_limit = config.max_request_bytes
        self.request_body_overflow = "reject"
        self.providers = {name: make_provider(name, cfg) for name, cfg in config.providers.items()}
        self.forward = _FORWARD | {h.lower() for h in config.forward_headers}
        self.retry_statuses = frozenset(config.fallback_on)
        self.created = int(time.time())
        self._failures = ctx.metrics.counter(
            "bastion_ai_provider_failures_total",
            "Provider attempts that failed before answering (connection, timeout or a "
            "fallback_on status) and were moved on from, or were the last, by provider",
            ["provider"])
        self._cooldowns = ctx.metrics.counter(
            "bastion_ai_key_cooldowns_total",
            "Provider API keys set aside after a refusal or a rate limit, by provider",
            ["provider"])

    # ------------------------------------------------------------- requests

    async def on_request_headers(self, flow: Flow) -> None:
        found = _api_of(flow.path)
        if found is None:
            _openai_error(flow, 404, f"Invalid URL ({flow.method} {flow.path})",
                          code="unknown_url")
            return
        api, model_id = found
        if api == "models":
            if flow.method not in ("GET", "HEAD"):
                _openai_error(flow, 405, f"Invalid method for {flow.path}: use GET",
                              code="method_not_allowed")
                return
            self._answer_models(flow, model_id)
            return
        if flow.method != "POST":
            _openai_error(flow, 405, f"Invalid method for {flow.path}: use POST",
                          code="method_not_allowed")
            return
        if not flow.request.body_exists:
            _openai_error(flow, 400, "the request needs a JSON body")
            return
        flow.state(self, _Flight).api = api
        flow.error_body = _gateway_error
        headers = flow.request_headers
        for name in {k.lower() for k in headers} - self.forward:
            headers.popall(name, None)

    def _answer_models(self, flow: Flow, model_id: str | None) -> None:
        def entry(name: str, route: ModelRoute) -> JSON:
            return {"id": name, "object": "model", "created": self.created,
                    "owned_by": route.provider}

        if model_id is None:
            flow.respond(200, {"object": "list",
                               "data": [entry(n, r) for n, r in self.config.models.items()]})
        elif model_id in self.config.models:
            flow.respond(200, entry(model_id, self.config.models[model_id]))
        else:
            _openai_error(flow, 404, f"The model `{model_id}` does not exist or you do not "
                          "have access to it.", code="model_not_found", param="model")

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        st = flow.state(self, _Flight)
        if not end or st.api not in ("chat", "embeddings"):
            return chunk
        api: Api = "chat" if st.api == "chat" else "embeddings"
        try:
            body = json.loads(chunk)
        except ValueError:
            _openai_error(flow, 400, "the request body is not valid JSON")
            return b""
        if not isinstance(body, dict):
            _openai_error(flow, 400, "the request body must be a JSON object")
            return b""
        problem = _check_request(api, body)
        if problem is not None:
            _openai_error(flow, 400, problem[1], param=problem[0])
            return b""
        model = body.get("model")
        requested = model if isinstance(model, str) else ""
        plan = self._plan(requested)
        if plan is None:
            if not requested:
                _openai_error(flow, 400, "you must provide a model parameter", param="model")
            else:
                _openai_error(flow, 404, f"The model `{requested}` does not exist or you do "
                              "not have access to it.", code="model_not_found", param="model")
            return b""
        stream = api == "chat" and body.get("stream") is True
        options = body.get("stream_options")
        st.stream = stream
        st.client_usage = stream and (self.config.always_stream_usage or (
            isinstance(options, dict) and options.get("include_usage") is True))
        targets = self._targets(flow, api, body, plan, stream)
        if targets is None:
            return b""
        first: _TargetMeta = targets[0].meta
        if api == "chat":
            messages = body["messages"]
            prompt, last = prompt_text(messages), last_user_text(messages)
        else:
            prompt, last = embedding_input_text(body.get("input")), ""
        ex = start_exchange(flow, api=api, requested_model=requested, streaming=stream,
                            prompt_text=prompt, last_user_text=last, request=body)
        ex.provider, ex.provider_type = first.provider.name, first.provider.type
        ex.provider_model, ex.targets = first.model, len(targets)
        st.exchange = ex
        flow.upstream_targets = targets
        flow.upstream_retry_statuses = self.retry_statuses
        return chunk

    def _plan(self, requested: str) -> list[tuple[Provider, str]] | None:
        """(provider, model) for the model asked for, then its fallbacks; None if unknown."""
        models = self.config.models
        route = models.get(requested)
        alias = requested
        if route is None:
            default = self.config.default
            if default is None:
                return None
            if isinstance(default, str):
                route, alias = models[default], default
            else:
                route = default
        plan = [(self.providers[route.provider], route.model or alias)]
        for f in route.fallback if route.fallback is not None else self.config.fallback:
            if isinstance(f, str):
                r = models[f]
                plan.append((self.providers[r.provider], r.model or f))
            else:
                plan.append((self.providers[f.provider], f.model or requested))
        unique: list[tuple[Provider, str]] = []
        for step in plan:
            if step not in unique:
                unique.append(step)
        return unique

    def _targets(self, flow: Flow, api: Api, body: JSON, plan: list[tuple[Provider, str]],
                 stream: bool) -> list[UpstreamTarget] | None:
        targets: list[UpstreamTarget] = []
        for i, (provider, model) in enumerate(plan):
            if api == "embeddings" and not provider.serves_embeddings:
                if i == 0:
                    _openai_error(flow, 400, f"the model `{body.get('model')}` does not "
                                  "serve embeddings", param="model")
                    return None
                continue
            try:
                req = provider.build(api, body, model, stream)
            except RequestError as exc:
                if i == 0:
                    _openai_error(flow, 400, exc.message, param=exc.param)
                    return None
                log.info("fallback %s/%s skipped: %s", provider.name, model, exc.message)
                continue
            meta = _TargetMeta(len(targets), provider, model, req.injected_usage)
            base = {"Content-Type": "application/json", "Accept-Encoding": "identity",
                    **provider.config.headers}
            targets.append(UpstreamTarget(
                url=provider.base_url, name=provider.name, path=req.path,
                headers=_ProviderHeaders(base, meta), remove_headers=_CLIENT_KEY_HEADERS,
                body=req.body, connect_timeout=provider.config.connect_timeout,
                read_timeout=provider.config.read_timeout, meta=meta))
        return targets

    # ------------------------------------------------------------ responses

    async def on_response_headers(self, flow: Flow) -> None:
        st = flow.state(self, _Flight)
        ex = st.exchange
        target = flow.upstream_target
        meta = target.meta if target is not None else None
        if ex is None or not isinstance(meta, _TargetMeta):
            return
        st.meta = meta
        self._note_skipped(st, flow, meta.index)
        provider = meta.provider
        ex.provider, ex.provider_type, ex.provider_model = provider.name, provider.type, meta.model
        ex.attempts = meta.index + 1
        status = st.upstream_status = flow.response_status
        headers = flow.response_headers
        for name in _DROP_RESPONSE:
            headers.popall(name, None)
        provider_id = headers.popall("X-Request-Id", None)
        if provider_id:
            headers["X-Provider-Request-Id"] = provider_id[0]
        if status in (401, 403, 429) and meta.key_index is not None:
            retry_after = _retry_after(headers.get("Retry-After")) if status == 429 else None
            provider.pool.cool(meta.key_index, retry_after)
            self._cooldowns.labels(provider.name).inc()
            log.warning("provider %s answered %d: key #%d set aside", provider.name, status,
                        meta.key_index + 1)
        ex.status = status
        if not 200 <= status < 300:
            st.mode = "error"
            flow.response_status = ex.status = provider.error(status, b"")[0]
            headers["Content-Type"] = "application/json"
            headers.popall("Content-Encoding", None)
            flow.buffer_response_body(_ERROR_BODY_LIMIT, "reject")
            return
        content_type = headers.get("Content-Type", "").lower()
        encoded = headers.get("Content-Encoding", "identity").lower() != "identity"
        if st.stream and content_type.startswith("text/event-stream") and not encoded:
            st.mode = "stream"
            st.parser = SSEParser(max_event_bytes=self.config.max_event_bytes)
            st.translator = provider.stream(ex, st.client_usage, meta.injected_usage,
                                            self.config.max_response_bytes)
            headers["Content-Type"] = "text/event-stream; charset=utf-8"
            headers["Cache-Control"] = "no-cache"
            return
        if encoded and not provider.translates:
            st.mode = "raw"  # compressed after all: pass on unread
            return
        st.mode = "json"
        headers["Content-Type"] = "application/json"
        flow.buffer_response_body(self.config.max_response_bytes,
                                  "reject" if provider.translates else "truncate")

    def _note_skipped(self, st: _Flight, flow: Flow, upto: int) -> None:
        """Targets tried before ``upto`` failed (why, the gateway does not say): their keys
        sit out a cooldown, so that a rate-limited key is not the next one picked."""
        for t in (flow.upstream_targets or [])[:upto]:
            meta = t.meta
            if isinstance(meta, _TargetMeta) and meta.tried and meta not in st.skipped:
                st.skipped.append(meta)
                self._failures.labels(meta.provider.name).inc()
                if meta.key_index is not None and len(meta.provider.pool) > 1:
                    meta.provider.pool.cool(meta.key_index)
                    self._cooldowns.labels(meta.provider.name).inc()
                log.info("provider %s (%s) failed", meta.provider.name, meta.model)

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        st = flow.state(self, _Flight)
        ex, meta = st.exchange, st.meta
        if ex is None or meta is None:
            return chunk
        if st.mode == "stream":
            return self._stream_body(flow, st, ex, chunk, end)
        if st.mode == "json":
            return self._json_body(flow, ex, meta, chunk)
        if st.mode == "error":
            status, err = meta.provider.error(st.upstream_status, chunk)
            flow.response_status = status
            ex.finish(status, str(err["error"]["message"]))
            return json.dumps(err).encode()
        if end:
            ex.mark_first_token()
            ex.finish(flow.response_status)
        return chunk

    def _stream_body(self, flow: Flow, st: _Flight, ex: AiExchange, chunk: bytes,
                     end: bool) -> bytes:
        parser, translator = st.parser, st.translator
        assert parser is not None and translator is not None
        out: list[bytes] = []
        if not translator.over:
            try:
                events = parser.close() if end else parser.feed(chunk)
            except SSEBufferOverflow:
                out.append(translator.fail(
                    f"the provider sent an event over {self.config.max_event_bytes} bytes",
                    code="event_too_large"))
                events = []
            for event in events:
                out.append(translator.event(event))
        if end:
            if flow.upstream_error is not None:
                out.append(translator.fail("the connection to the provider broke off mid-stream",
                                           code="upstream_disconnected"))
            out.append(translator.end())
            ex.finish(flow.response_status)
        return b"".join(out)

    def _json_body(self, flow: Flow, ex: AiExchange, meta: _TargetMeta, body: bytes) -> bytes:
        provider = meta.provider
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if provider.translates:
                flow.respond(502, error_body(
                    f"the provider {provider.name!r} sent an unreadable answer", "upstream_error",
                    "bad_provider_response"))
                ex.finish(502, "unreadable provider response")
                return b""
            ex.mark_first_token()
            ex.finish(flow.response_status)  # too large to read, or not JSON: passed as is
            return body
        out = provider.translate(ex.api, data)
        usage = usage_of(out)
        if usage is not None:
            ex.set_usage(usage)
        if ex.api == "chat":
            ex.completion_text = response_text(out)
            ex.finish_reason = finish_reason_of(out)
        ex.mark_first_token()
        ex.finish(flow.response_status)
        return json.dumps(out, ensure_ascii=False).encode() if provider.translates else body

    async def on_done(self, flow: Flow) -> None:
        st = flow.state(self, _Flight)
        ex = st.exchange
        if ex is None or ex.complete:
            return
        error: str | None = None
        if st.mode == "stream":
            error = "the provider's stream broke off"
        elif st.mode == "" and flow.upstream_target is not None and flow.responded:
            # No target answered: every one tried failed.
            targets = flow.upstream_targets or []
            self._note_skipped(st, flow, len(targets))
            if flow.local_response is not None:
                error = _local_error(flow.local_response.body) or "no provider answered"
        ex.finish(flow.response_status, error)


# ---------------------------------------------------------------------------
# Helpers


def _gateway_error(status: int, message: str) -> LocalResponse:
    """The gateway's own errors (no provider answered, body too large) in OpenAI's shape."""
    kind = "upstream_error" if status in (502, 503, 504) else "invalid_request_error"
    body = json.dumps(error_body(message, kind, f"gateway_{status}")).encode()
    return LocalResponse(status, body, CIMultiDict({"Content-Type": "application/json"}))


def _check_request(api: Api, body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(param, message) for a request that cannot be valid; None if it may be."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        return "model", "model must be a string"
    if api == "embeddings":
        value = body.get("input")
        if not (isinstance(value, str) and value) and not (isinstance(value, list) and value):
            return "input", "input must be a non-empty string or array"
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages", "messages must be a non-empty array of messages"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            return f"messages[{i}]", f"messages[{i}] must be an object with a role"
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream", "stream must be a boolean"
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return "stream_options", "stream_options must be an object"
    return None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


def _local_error(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        err = err.get("message")
    return err if isinstance(err, str) else None
