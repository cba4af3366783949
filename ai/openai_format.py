"""Reading and writing the OpenAI API's JSON: requests, responses, stream chunks, errors.

OpenAI's chat-completions format is the one clients speak to Bastion and the one
every AI plugin reads, whichever provider answered (``ai-proxy`` translates the
others). These helpers are small, total functions over parsed JSON: they never
raise on a shape they do not expect, they return an empty value instead, because a
provider's output is not ours to trust.

    usage = usage_of(response_json)          # Usage | None
    text = prompt_text(request["messages"])  # every message's text, one per line
    for event in parser.feed(chunk):         # proxy.sse.SSEParser
        if is_done(event):
            ...
        data = event_json(event)             # dict | None
        delta = delta_text(data)             # the text this chunk adds
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.sse import SSEEvent, encode_event

__all__ = [
    "DONE",
    "DONE_EVENT",
    "JSON",
    "Usage",
    "chunk",
    "content_text",
    "delta_text",
    "dumps",
    "embedding_input_text",
    "encode_data",
    "error_body",
    "error_event",
    "event_json",
    "finish_reason_of",
    "has_output",
    "is_done",
    "last_user_text",
    "model_of",
    "prompt_text",
    "response_text",
    "usage_dict",
    "usage_of",
]

JSON = dict[str, Any]

# The sentinel OpenAI sends as the last event of a stream: ``data: [DONE]``.
DONE = "[DONE]"
DONE_EVENT = encode_event(DONE)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts, as OpenAI's ``usage`` object has them.

    ``cached_tokens`` is the part of ``prompt_tokens`` served from the provider's
    prompt cache (``usage.prompt_tokens_details.cached_tokens``; Anthropic's cache
    reads), 0 when not reported.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def usage_of(data: Any) -> Usage | None:
    """The ``usage`` of a response or stream chunk; None when it carries none.

    A missing ``completion_tokens`` (embeddings) counts as 0, a missing
    ``total_tokens`` as the sum of the two others.
    """
    if not isinstance(data, Mapping):
        return None
    usage = data.get("usage")
    if not isinstance(usage, Mapping):
        return None
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    total = _int(usage.get("total_tokens"))
    if prompt is None and completion is None and total is None:
        return None
    prompt = prompt or 0
    completion = completion or 0
    cached = 0
    details = usage.get("prompt_tokens_details")
    if isinstance(details, Mapping):
        cached = _int(details.get("cached_tokens")) or 0
    return Usage(prompt, completion, prompt + completion if total is None else total, cached)


def usage_dict(usage: Usage) -> JSON:
    """``usage`` as OpenAI writes it (``prompt_tokens_details`` only with cached tokens)."""
    out: JSON = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return out


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content
                 if isinstance(p, Mapping) and p.get("type") in ("text", "input_text")
                 and isinstance(p.get("text"), str)]
        return "\n".join(texts)
    return ""


def prompt_text(messages: Any) -> str:
    """The text of every message (system prompt included), one message per line."""
    if not isinstance(messages, list):
        return ""
    texts = (content_text(m.get("content")) for m in messages if isinstance(m, Mapping))
    return "\n".join(t for t in texts if t)


def last_user_text(messages: Any) -> str:
    """The text of the last ``user`` message ("" when there is none)."""
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, Mapping) and m.get("role") == "user":
                return content_text(m.get("content"))
    return ""


def embedding_input_text(value: Any) -> str:
    """The text of an embeddings ``input`` (a string or strings; token arrays have none)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(v for v in value if isinstance(v, str))
    return ""


def model_of(data: Any) -> str | None:
    if isinstance(data, Mapping):
        model = data.get("model")
        if isinstance(model, str):
            return model
    return None


def _choices(data: Any) -> list[Mapping[str, Any]]:
    if not isinstance(data, Mapping):
        return []
    choices = data.get("choices")
    if not isinstance(choices, list):
        return []
    return [c for c in choices if isinstance(c, Mapping)]


def _first_choice(data: Any) -> Mapping[str, Any] | None:
    """Choice 0 (with ``n`` > 1, each stream chunk may carry any one choice)."""
    for choice in _choices(data):
        if choice.get("index", 0) == 0:
            return choice
    return None


def response_text(data: Any) -> str:
    """The text of a non-streamed chat completion (choice 0)."""
    choice = _first_choice(data)
    message = choice.get("message") if choice is not None else None
    return content_text(message.get("content")) if isinstance(message, Mapping) else ""


def delta_text(data: Any) -> str:
    """The text a stream chunk adds to choice 0 (its ``delta.content``)."""
    choice = _first_choice(data)
    delta = choice.get("delta") if choice is not None else None
    if isinstance(delta, Mapping) and isinstance(delta.get("content"), str):
        return str(delta["content"])
    return ""


def has_output(data: Any) -> bool:
    """Whether a stream chunk carries generated output (text, reasoning, tool calls)."""
    for choice in _choices(data):
        delta = choice.get("delta")
        if isinstance(delta, Mapping) and any(
                delta.get(k) for k in ("content", "tool_calls", "reasoning_content", "refusal",
                                       "function_call")):
            return True
    return False


def finish_reason_of(data: Any) -> str | None:
    """Choice 0's ``finish_reason`` (None while it is still generating)."""
    choice = _first_choice(data)
    reason = choice.get("finish_reason") if choice is not None else None
    return reason if isinstance(reason, str) else None


def is_done(event: SSEEvent) -> bool:
    return event.data.strip() == DONE


def event_json(event: SSEEvent) -> JSON | None:
    """An event's data as a JSON object; None for ``[DONE]`` or anything else."""
    try:
        data = json.loads(event.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def dumps(data: Any) -> str:
    """Compact JSON, as OpenAI writes it."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def encode_data(data: Any) -> bytes:
    """One ``data: <json>`` event."""
    return encode_event(dumps(data))


def chunk(id: str, created: int, model: str, delta: Mapping[str, Any],
          finish_reason: str | None = None) -> JSON:
    """A ``chat.completion.chunk`` with one choice."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": dict(delta), "logprobs": None,
                     "finish_reason": finish_reason}],
    }


def error_body(message: str, type: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> JSON:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_event(message: str, type: str = "upstream_error", code: str | None = None) -> bytes:
    """A stream's error event as OpenAI sends it (``data: {"error": {...}}``)."""
    return encode_data(error_body(message, type, code))
