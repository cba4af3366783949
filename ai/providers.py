"""Provider adapters: OpenAI (and everything OpenAI-compatible), Azure OpenAI, Anthropic.

Clients always speak OpenAI's API to Bastion. A provider adapter turns one
OpenAI request into the provider's request (path, JSON body, auth headers) and
the provider's answer back into OpenAI's format:

* ``build()``: the request for one model at this provider (raises
  ``RequestError`` when the request cannot be expressed there);
* ``translate()``: a non-streamed success body;
* ``stream()``: a ``StreamTranslator`` for a streamed answer, fed one SSE event
  at a time (events come from ``proxy.sse.SSEParser``, already reassembled
  whatever the TCP chunking), returning the client's bytes for it;
* ``error()``: a provider error, as ``(status, OpenAI error body)``.

Each provider also owns a ``KeyPool``: its API keys, used round-robin, with a
key set aside for a while after the provider refused it (401/403) or rate
limited it (429). Keys are never logged: logs name a key by its position.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ai.exchange import AiExchange
from ai.openai_format import (
    DONE_EVENT,
    JSON,
    Usage,
    chunk,
    content_text,
    delta_text,
    dumps,
    encode_data,
    error_body,
    error_event,
    event_json,
    finish_reason_of,
    has_output,
    is_done,
    usage_dict,
    usage_of,
)
from proxy.sse import SSEEvent

log = logging.getLogger("bastion.ai")

__all__ = [
    "AnthropicProvider",
    "AzureProvider",
    "KeyPool",
    "OpenAIProvider",
    "Provider",
    "ProviderConfig",
    "ProviderRequest",
    "ProviderType",
    "RequestError",
    "StreamTranslator",
    "make_provider",
]

ProviderType = Literal["openai", "azure", "anthropic", "openai-compatible", "deepseek", "qwen",
                       "moonshot", "ollama", "vllm"]

# Where each type lives unless `base_url` says otherwise. The OpenAI-style ones
# end in their API version, as the OpenAI SDK's base_url does.
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "deepseek": "https://api.deepseek.com/v1",
    "qwen": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "moonshot": "https://api.moonshot.cn/v1",
    "ollama": "http://127.0.0.1:11434/v1",
}
_NEEDS_BASE_URL = frozenset({"azure", "openai-compatible", "vllm"})
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class ProviderConfig(BaseModel):
    """One provider account: where it is, how to authenticate, how long to wait."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ProviderType
    #: The API's base URL (OpenAI-style providers: up to and including ``/v1``;
    #: Azure: ``https://<resource>.openai.azure.com``; Anthropic: without ``/v1``).
    base_url: str | None = None
    #: Keys, used round-robin. Write them as ``${ENV_VAR}``; none for a keyless
    #: local server (Ollama, vLLM).
    api_keys: list[SecretStr] = Field(default_factory=list)
    #: Seconds a key is set aside after a 401/403/429 (429: or its Retry-After).
    key_cooldown: float = Field(default=60.0, ge=0)
    #: Azure: the ``api-version`` query parameter.
    api_version: str = "2024-10-21"
    #: Anthropic: the ``anthropic-version`` header.
    anthropic_version: str = "2023-06-01"
    #: Anthropic: ``max_tokens`` when the client sets none (Anthropic requires one).
    max_tokens: int = Field(default=4096, ge=1)
    #: OpenAI-style: ask for usage in streams (``stream_options.include_usage``) so
    #: tokens are counted even when the client did not ask; the extra usage is
    #: hidden from such clients. Turn off for servers that reject the option.
    stream_usage: bool = True
    #: Extra headers for every request to this provider (``OpenAI-Organization``...).
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout: float = Field(default=10.0, gt=0)
    #: Longest wait for the response headers, then between two body chunks:
    #: past it before the headers, the next target is tried.
    read_timeout: float = Field(default=120.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {v!r}")
        if parts.query or parts.fragment:
            raise ValueError("base_url takes no query or fragment")
        return v.rstrip("/")

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, v: list[SecretStr]) -> list[SecretStr]:
        for i, key in enumerate(v):
            text = key.get_secret_value()
            if not text.strip():
                raise ValueError(f"api_keys[{i}] is empty")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"api_keys[{i}] contains CR, LF or NUL")
        return v

    @field_validator("headers", mode="before")
    @classmethod
    def _check_headers(cls, v: Any) -> Any:
        if not isinstance(v, Mapping):
            return v
        out = {}
        for name, value in v.items():
            name = str(name)
            if not name or not _TOKEN_CHARS.issuperset(name):
                raise ValueError(f"not a valid header name: {name!r}")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"{name}: header values cannot contain CR, LF or NUL")
            out[name] = text
        return out

    @model_validator(mode="after")
    def _check_type(self) -> ProviderConfig:
        if self.base_url is None and self.type in _NEEDS_BASE_URL:
            raise ValueError(f"a provider of type {self.type} needs a base_url")
        return self

    @property
    def url(self) -> str:
        return self.base_url or DEFAULT_BASE_URLS[self.type]


class RequestError(Exception):
    """The client's request cannot be sent to this provider (a 400 for the client)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    path: str  # after the base URL, with its query
    body: bytes
    # True when the gateway asked for stream usage the client did not ask for.
    injected_usage: bool = False


# ---------------------------------------------------------------------------
# Keys


class KeyPool:
    """API keys used round-robin; a key that failed sits out its cooldown.

    When every key is cooling down, the one that comes back first is used
    anyway: a provider is never refused for want of a key.
    """

    def __init__(self, keys: Sequence[SecretStr], cooldown: float) -> None:
        self._keys = [k.get_secret_value() for k in keys]
        self.cooldown = cooldown
        self._until = [0.0] * len(self._keys)
        self._next = 0

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:  # never the keys themselves
        return f"KeyPool({len(self._keys)} keys)"

    def pick(self) -> int | None:
        """The index of the next key to use; None when the provider has no keys."""
        n = len(self._keys)
        if not n:
            return None
        now = time.monotonic()
        for step in range(n):
            i = (self._next + step) % n
            if self._until[i] <= now:
                self._next = i + 1
                return i
        i = min(range(n), key=self._until.__getitem__)
        self._next = i + 1
        return i

    def key(self, index: int) -> str:
        return self._keys[index]

    def cool(self, index: int, seconds: float | None = None) -> None:
        """Set key ``index`` aside for ``seconds`` (default: the pool's cooldown)."""
        if 0 <= index < len(self._keys):
            wait = self.cooldown if seconds is None else seconds
            self._until[index] = max(self._until[index], time.monotonic() + wait)

    def cooling(self, index: int) -> bool:
        return self._until[index] > time.monotonic()


# ---------------------------------------------------------------------------
# Streams


class StreamTranslator:
    """Turns a provider's SSE events into the client's OpenAI ``chat.completion.chunk``s.

    It records what passes in the exchange (text, usage, finish reason, time
    to first token). Whatever happens, the client gets whole events only: after
    the stream's normal end (``finished``) or an error (``failed``) further
    events are dropped, and a stream that ends without either gets an error
    event from ``end()``.
    """

    def __init__(self, ex: AiExchange, client_usage: bool, max_text: int = 1 << 22) -> None:
        self.ex = ex
        self.client_usage = client_usage
        self.max_text = max_text
        self.finished = False
        self.failed = False

    @property
    def over(self) -> bool:
        return self.finished or self.failed

    def event(self, event: SSEEvent) -> bytes:
        raise NotImplementedError

    def end(self) -> bytes:
        """The provider's stream is over: an error event if it ended too soon."""
        return self.fail("the provider's stream ended before the answer was complete",
                         code="stream_incomplete")

    def fail(self, message: str, type: str = "upstream_error", code: str | None = None) -> bytes:
        """End the client's stream with an error event (once; nothing after it)."""
        if self.over:
            return b""
        self.failed = True
        if self.ex.error is None:
            self.ex.error = message
        return error_event(message, type, code)

    def _text(self, text: str) -> None:
        if text and len(self.ex.completion_text) < self.max_text:
            self.ex.completion_text += text


class OpenAIStream(StreamTranslator):
    """OpenAI-format streams pass through byte for byte, read on the way.

    With ``strip_usage`` (the gateway asked for usage the client did not ask
    for), the usage-only chunk is dropped and ``"usage": null`` removed from the
    others, so the client gets the stream it asked for.
    """

    def __init__(self, ex: AiExchange, client_usage: bool, strip_usage: bool,
                 max_text: int = 1 << 22) -> None:
        super().__init__(ex, client_usage, max_text)
        self.strip_usage = strip_usage

    def event(self, event: SSEEvent) -> bytes:
        if self.over:
            return b""
        if is_done(event):
            self.finished = True
            return event.raw
        data = event_json(event)
        if data is None:
            return event.raw
        if "error" in data and not data.get("choices"):
            message, type, code = _error_parts(data, "the provider reported an error")
            return self.fail(message, type or "upstream_error", code)
        usage = usage_of(data)
        if usage is not None:
            self.ex.set_usage(usage)
        if has_output(data):
            self.ex.mark_first_token()
        self._text(delta_text(data))
        reason = finish_reason_of(data)
        if reason is not None:
            self.ex.finish_reason = reason
        if self.strip_usage and "usage" in data:
            if not data.get("choices"):
                return b""
            del data["usage"]
            return encode_data(data)
        return event.raw


_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _finish_reason(stop_reason: Any) -> str | None:
    if not isinstance(stop_reason, str):
        return None
    return _STOP_REASONS.get(stop_reason, "stop")


def _anthropic_usage(counts: Mapping[str, Any]) -> Usage:
    def n(name: str) -> int:
        v = counts.get(name)
        return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0

    cache_read = n("cache_read_input_tokens")
    prompt = n("input_tokens") + n("cache_creation_input_tokens") + cache_read
    completion = n("output_tokens")
    return Usage(prompt, completion, prompt + completion, cache_read)


class AnthropicStream(StreamTranslator):
    """Anthropic's Messages event stream as OpenAI chat-completion chunks.

    ``message_start`` becomes the role chunk; text and tool-use blocks become
    ``content`` and ``tool_calls`` deltas; ``message_delta`` the finish-reason
    chunk; ``message_stop`` the usage chunk (when the client wants usage) and
    ``[DONE]``; ``error`` an OpenAI-style error event. ``ping`` and thinking
    blocks produce nothing.
    """

    def __init__(self, ex: AiExchange, client_usage: bool, max_text: int = 1 << 22) -> None:
        super().__init__(ex, client_usage, max_text)
        self.id = ""
        self.model = ex.provider_model
        self.created = int(time.time())
        self.counts: dict[str, Any] = {}
        # Content block index -> OpenAI tool_calls index.
        self.tools: dict[int, int] = {}

    def _chunk(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> bytes:
        return encode_data(chunk(self.id, self.created, self.model, delta, finish_reason))

    def _count(self, usage: Any) -> None:
        if isinstance(usage, Mapping):
            self.counts.update({k: v for k, v in usage.items() if v is not None})
            self.ex.set_usage(_anthropic_usage(self.counts))

    def event(self, event: SSEEvent) -> bytes:
        if self.over:
            return b""
        data = event_json(event)
        if data is None:
            log.debug("ignoring a non-JSON Anthropic event %r", event.event)
            return b""
        kind = data.get("type", event.event)
        if kind == "message_start":
            message = data.get("message")
            if isinstance(message, Mapping):
                self.id = str(message.get("id") or "")
                self.model = str(message.get("model") or self.model)
                self._count(message.get("usage"))
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            self._count(data.get("usage"))
            delta = data.get("delta")
            reason = _finish_reason(delta.get("stop_reason")) if isinstance(delta, Mapping) \
                else None
            if reason is None:
                return b""
            self.ex.finish_reason = reason
            return self._chunk({}, reason)
        if kind == "message_stop":
            self.finished = True
            out = b""
            if self.client_usage:
                usage = _anthropic_usage(self.counts)
                out = encode_data({"id": self.id, "object": "chat.completion.chunk",
                                   "created": self.created, "model": self.model,
                                   "choices": [], "usage": usage_dict(usage)})
            return out + DONE_EVENT
        if kind == "error":
            message, type, code = _error_parts(data, "the provider reported an error")
            return self.fail(message, type or "upstream_error", code)
        return b""  # ping, content_block_stop, and events added to the API later

    def _block_start(self, data: Mapping[str, Any]) -> bytes:
        block = data.get("content_block")
        if not isinstance(block, Mapping):
            return b""
        if block.get("type") == "text":
            text = block.get("text")
            if isinstance(text, str) and text:
                return self._text_chunk(text)
            return b""
        if block.get("type") == "tool_use":
            index = data.get("index")
            tool = self.tools[index if isinstance(index, int) else -1] = len(self.tools)
            self.ex.mark_first_token()
            return self._chunk({"tool_calls": [{
                "index": tool, "id": str(block.get("id") or ""), "type": "function",
                "function": {"name": str(block.get("name") or ""), "arguments": ""}}]})
        return b""

    def _block_delta(self, data: Mapping[str, Any]) -> bytes:
        delta = data.get("delta")
        if not isinstance(delta, Mapping):
            return b""
        if delta.get("type") == "text_delta":
            text = delta.get("text")
            return self._text_chunk(text) if isinstance(text, str) and text else b""
        if delta.get("type") == "input_json_delta":
            index = data.get("index")
            tool = self.tools.get(index if isinstance(index, int) else -1)
            partial = delta.get("partial_json")
            if tool is None or not isinstance(partial, str) or not partial:
                return b""
            return self._chunk({"tool_calls": [{"index": tool,
                                                "function": {"arguments": partial}}]})
        return b""  # thinking, signatures, citations

    def _text_chunk(self, text: str) -> bytes:
        self.ex.mark_first_token()
        self._text(text)
        return self._chunk({"content": text})


# ---------------------------------------------------------------------------
# Errors


def _error_parts(data: Any, fallback: str) -> tuple[str, str | None, str | None]:
    """(message, type, code) from the error shapes providers use."""
    err: Any = data.get("error") if isinstance(data, Mapping) else None
    if isinstance(err, Mapping):
        message = err.get("message")
        type = err.get("type")
        code = err.get("code")
    else:
        message = err if isinstance(err, str) else (
            data.get("message") if isinstance(data, Mapping) else None)
        type = code = None
    return (message if isinstance(message, str) and message else fallback,
            type if isinstance(type, str) and type else None,
            None if code is None or isinstance(code, dict | list) else str(code))


def _default_error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def client_status(status: int) -> int:
    """The status a client gets for a provider's error status."""
    if status in (401, 403):
        return 502  # the gateway's credentials, not the client's, were refused
    if status >= 500 and status not in (500, 502, 503, 504):
        return 503  # Anthropic's 529 "overloaded" and other private codes
    if status < 400:
        return 502  # a redirect or other non-answer
    return status


# ---------------------------------------------------------------------------
# Providers


class Provider:
    """A configured provider: request and response translation plus its key pool."""

    #: Whether response bodies are rewritten (not just read) on their way back.
    translates: ClassVar[bool] = False
    serves_embeddings: ClassVar[bool] = True

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config
        self.type: str = config.type
        self.base_url = config.url
        self.pool = KeyPool(config.api_keys, config.key_cooldown)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.base_url!r})"

    def auth_headers(self, key: str | None) -> dict[str, str]:
        raise NotImplementedError

    def build(self, api: str, request: JSON, model: str, stream: bool) -> ProviderRequest:
        raise NotImplementedError

    def translate(self, api: str, data: JSON) -> JSON:
        return data

    def stream(self, ex: AiExchange, client_usage: bool, injected_usage: bool,
               max_text: int) -> StreamTranslator:
        raise NotImplementedError

    def error(self, status: int, body: bytes) -> tuple[int, JSON]:
        """A provider's error answer as (client status, OpenAI error body)."""
        out = client_status(status)
        if status in (401, 403):
            return out, error_body(
                f"the provider {self.name!r} refused the gateway's credentials (HTTP {status})",
                "upstream_auth_error", "provider_auth_failed")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        message, type, code = _error_parts(
            data, f"the provider {self.name!r} answered HTTP {status}")
        param = None
        if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
            p = data["error"].get("param")
            param = p if isinstance(p, str) else None
        return out, error_body(message, type or _default_error_type(status), code, param)


class OpenAIProvider(Provider):
    """OpenAI and every server speaking its API: DeepSeek, Qwen (DashScope's
    compatible mode), Moonshot, Ollama, vLLM... Only the model name changes."""

    _paths: ClassVar[dict[str, str]] = {"chat": "/chat/completions",
                                        "embeddings": "/embeddings"}

    def auth_headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key is not None else {}

    def path(self, api: str, model: str) -> str:
        return self._paths[api]

    def build(self, api: str, request: JSON, model: str, stream: bool) -> ProviderRequest:
        body = dict(request)
        body["model"] = model
        injected = False
        if api == "chat" and stream and self.config.stream_usage:
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, Mapping) else {}
            injected = options.get("include_usage") is not True
            options["include_usage"] = True
            body["stream_options"] = options
        return ProviderRequest(self.path(api, model), dumps(body).encode(), injected)

    def stream(self, ex: AiExchange, client_usage: bool, injected_usage: bool,
               max_text: int) -> StreamTranslator:
        return OpenAIStream(ex, client_usage, injected_usage and not client_usage, max_text)


class AzureProvider(OpenAIProvider):
    """Azure OpenAI: the model is a deployment, named in the path; the key goes in ``api-key``."""

    def auth_headers(self, key: str | None) -> dict[str, str]:
        return {"api-key": key} if key is not None else {}

    def path(self, api: str, model: str) -> str:
        return (f"/openai/deployments/{quote(model, safe='')}{self._paths[api]}"
                f"?api-version={quote(self.config.api_version, safe='')}")


class AnthropicProvider(Provider):
    """Anthropic's Messages API (``POST /v1/messages``), translated both ways."""

    translates = True
    serves_embeddings = False

    def auth_headers(self, key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": self.config.anthropic_version}
        if key is not None:
            headers["x-api-key"] = key
        return headers

    def build(self, api: str, request: JSON, model: str, stream: bool) -> ProviderRequest:
        if api != "chat":
            raise RequestError(f"the provider {self.name!r} serves no {api} API")
        return ProviderRequest("/v1/messages",
                               dumps(to_anthropic(request, model, stream,
                                                  self.config.max_tokens)).encode())

    def translate(self, api: str, data: JSON) -> JSON:
        return from_anthropic(data)

    def stream(self, ex: AiExchange, client_usage: bool, injected_usage: bool,
               max_text: int) -> StreamTranslator:
        return AnthropicStream(ex, client_usage, max_text)


def make_provider(name: str, config: ProviderConfig) -> Provider:
    if config.type == "anthropic":
        return AnthropicProvider(name, config)
    if config.type == "azure":
        return AzureProvider(name, config)
    return OpenAIProvider(name, config)


# ---------------------------------------------------------------------------
# OpenAI -> Anthropic Messages


def _anthropic_content(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        raise RequestError(f"{where}.content must be a string or an array of parts", where)
    blocks: list[JSON] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            blocks.append({"type": "image", "source": _image_source(url, f"{where}[{i}]")})
        else:
            raise RequestError(f"{where}.content[{i}]: content parts of type {kind!r} cannot "
                               "be sent to this provider", where)
    return blocks


def _image_source(url: Any, where: str) -> JSON:
    if not isinstance(url, str):
        raise RequestError(f"{where}: image_url.url must be a string", where)
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64":
            raise RequestError(f"{where}: only base64 data URLs are supported", where)
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise RequestError(f"{where}: image URLs must be http(s) or data: URLs", where)


def _blocks(content: str | list[JSON]) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _tool_choice(choice: Any, parallel: Any) -> JSON | None:
    out: JSON | None
    if choice is None or choice == "auto":
        out = {"type": "auto"} if parallel is False else None
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": str(choice["function"].get("name", ""))}
    else:
        raise RequestError("tool_choice must be auto, none, required or a function", "tool_choice")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def to_anthropic(req: Mapping[str, Any], model: str, stream: bool,
                 default_max_tokens: int) -> JSON:
    """An OpenAI chat-completions request as an Anthropic Messages request."""
    n = req.get("n")
    if n not in (None, 1):
        raise RequestError("this provider returns one choice per request (n must be 1)", "n")
    system: list[str] = []
    messages: list[JSON] = []

    def add(role: str, content: str | list[JSON]) -> None:
        if messages and messages[-1]["role"] == role:  # Anthropic merges turns: be explicit
            last = messages[-1]
            last["content"] = _blocks(last["content"]) + _blocks(content)
        else:
            messages.append({"role": role, "content": content})

    for i, m in enumerate(req["messages"]):
        where = f"messages[{i}]"
        role = m.get("role")
        if role in ("system", "developer"):
            text = content_text(m.get("content"))
            if text:
                system.append(text)
        elif role == "user":
            add("user", _anthropic_content(m.get("content"), where))
        elif role == "assistant":
            blocks = _blocks(_anthropic_content(m.get("content"), where))
            for call in m.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(fn, Mapping):
                    raise RequestError(f"{where}.tool_calls: each needs a function", where)
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except (TypeError, ValueError):
                    raise RequestError(f"{where}.tool_calls: arguments must be JSON",
                                       where) from None
                blocks.append({"type": "tool_use", "id": str(call.get("id", "")),
                               "name": str(fn.get("name", "")), "input": args})
            add("assistant", blocks)
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": str(m.get("tool_call_id", "")),
                          "content": content_text(m.get("content"))}])
        else:
            raise RequestError(f"{where}.role {role!r} is not supported", where)

    max_tokens = req.get("max_completion_tokens", req.get("max_tokens"))
    out: JSON = {"model": model,
                 "max_tokens": max_tokens if isinstance(max_tokens, int) and max_tokens > 0
                 else default_max_tokens,
                 "messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p"):
        if req.get(name) is not None:
            out[name] = req[name]
    stop = req.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = [s for s in stop if isinstance(s, str)]
    if isinstance(req.get("user"), str):
        out["metadata"] = {"user_id": req["user"]}
    tools = req.get("tools")
    if tools:
        converted = []
        for t in tools if isinstance(tools, list) else ():
            fn = t.get("function") if isinstance(t, Mapping) else None
            if not (isinstance(t, Mapping) and t.get("type") == "function"
                    and isinstance(fn, Mapping)):
                raise RequestError("only function tools are supported", "tools")
            tool: JSON = {"name": str(fn.get("name", "")),
                          "input_schema": fn.get("parameters") or {"type": "object",
                                                                   "properties": {}}}
            if isinstance(fn.get("description"), str):
                tool["description"] = fn["description"]
            converted.append(tool)
        out["tools"] = converted
    choice = _tool_choice(req.get("tool_choice"), req.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    if stream:
        out["stream"] = True
    return out


def from_anthropic(data: Mapping[str, Any]) -> JSON:
    """An Anthropic Messages response as an OpenAI chat completion."""
    texts: list[str] = []
    calls: list[JSON] = []
    content = data.get("content")
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            calls.append({"id": str(block.get("id", "")), "type": "function",
                          "function": {"name": str(block.get("name", "")),
                                       "arguments": dumps(block.get("input", {}))}})
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls
                     else None}
    if calls:
        message["tool_calls"] = calls
    out: JSON = {
        "id": str(data.get("id", "")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(data.get("model", "")),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": _finish_reason(data.get("stop_reason"))}],
    }
    usage = data.get("usage")
    if isinstance(usage, Mapping):
        out["usage"] = usage_dict(_anthropic_usage(usage))
    return out
