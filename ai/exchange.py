"""The AI exchange record: what one LLM call was, for every AI plugin to read.

``ai-proxy`` starts the record when it has parsed a client's request and keeps it
up to date as the answer comes back; other AI plugins (statistics, token rate
limits, caches, guards) read it instead of parsing bodies again::

    from ai.exchange import exchange

    async def on_response_body(self, flow, chunk, end):
        ex = exchange(flow)
        if ex is not None and end:
            charge(ex.consumer, ex.total_tokens or 0)
        return chunk

When each field is known
------------------------

* From ``on_request_body`` of a plugin that runs after ``ai-proxy`` (ai-proxy has
  the highest priority in the ``AI`` group, so every other AI plugin does): the
  request fields: ``api``, ``route``, ``consumer``, ``requested_model``,
  ``streaming``, ``prompt_text``, ``request``, and ``provider``/``provider_model``
  of the *first* target (a fallback may answer instead, see below).
* From ``on_response_headers``: ``provider``, ``provider_type``,
  ``provider_model`` and ``attempts`` of the target that actually answered, and
  ``status``.
* In ``on_response_body``: the stream is translated by ai-proxy before later
  plugins see it, so every chunk they get is OpenAI-format and the counters
  (``completion_text``, token counts once the provider reported them,
  ``time_to_first_token``) already include it. On the ``end=True`` call,
  ``complete`` is true and everything is final.
* In ``on_done``: final, including for exchanges that never got a response body
  (local errors, all providers unreachable, a stream cut off mid-way: then
  ``error`` says why).

Token counts are ``None`` when the provider did not report them (a stream cut
off before its usage, a provider that sends none); they are never estimated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ai.openai_format import Usage

if TYPE_CHECKING:
    from proxy.flow import Flow

__all__ = ["AiExchange", "Api", "exchange", "start_exchange"]

Api = Literal["chat", "embeddings"]


@dataclass(eq=False)
class AiExchange:
    """One client call to an LLM API, as ``ai-proxy`` saw it. Times are in seconds."""

    # What was asked ------------------------------------------------------------
    #: "chat" (``/v1/chat/completions``) or "embeddings" (``/v1/embeddings``).
    api: Api
    #: Name of the matched route.
    route: str
    #: Name of the authenticated consumer (``flow.consumer.name``), None if anonymous.
    consumer: str | None
    #: The ``model`` the client sent (an alias from the ``models`` map, usually).
    requested_model: str
    #: Whether the client asked for a stream (``"stream": true``).
    streaming: bool
    #: The text of every message (system prompt included), one per line; for
    #: embeddings, the input strings. For caches, guards and logs.
    prompt_text: str
    #: The text of the last user message ("" for embeddings).
    last_user_text: str = ""
    #: The parsed OpenAI request body, as the client sent it. Read it, don't mutate it.
    request: dict[str, Any] = field(default_factory=dict, repr=False)

    # Who answered --------------------------------------------------------------
    #: Provider name (a key of ``providers`` in the config) of the target that
    #: answered; before that, the first target's.
    provider: str = ""
    #: Its type: "openai", "azure", "anthropic", "openai-compatible", ...
    provider_type: str = ""
    #: The model name sent to that provider (an Azure deployment, for Azure).
    provider_model: str = ""
    #: Targets tried so far: 1 when the first answered, 2 after one failover...
    attempts: int = 0
    #: How many targets the request had (the model and its fallbacks).
    targets: int = 0

    # The answer ----------------------------------------------------------------
    #: HTTP status the client got (0 until known).
    status: int = 0
    #: Why the exchange failed, when it did (a provider error message, a stream
    #: cut off, no provider reachable); None on success.
    error: str | None = None
    #: The text generated (first choice), as far as it came.
    completion_text: str = ""
    #: The (first choice's) finish reason in OpenAI terms: "stop", "length", "tool_calls"...
    finish_reason: str | None = None
    #: Prompt tokens as the provider counted them (Anthropic: input plus cache
    #: reads and writes); None until the provider reported usage.
    prompt_tokens: int | None = None
    #: Generated tokens (0 for embeddings); None until reported.
    completion_tokens: int | None = None
    #: prompt + completion; None until reported.
    total_tokens: int | None = None
    #: Part of prompt_tokens the provider served from its prompt cache.
    cached_tokens: int | None = None
    #: Seconds from the request's arrival to the first generated token reaching
    #: the gateway (streams), or to the complete answer (non-streamed calls).
    time_to_first_token: float | None = None
    #: Seconds from the request's arrival to the end of the response.
    duration: float | None = None
    #: True when the answer came from a cache rather than a provider (set by a
    #: cache plugin that answers; ai-proxy leaves it False).
    cached: bool = False
    #: True once the response is over (set before the end=True body call reaches
    #: plugins after ai-proxy, or in on_done at the latest).
    complete: bool = False

    #: ``time.perf_counter()`` when the request arrived (``flow.started``).
    started: float = field(default_factory=time.perf_counter, repr=False)

    def set_usage(self, usage: Usage) -> None:
        """Record the provider's token counts (each report replaces the previous)."""
        self.prompt_tokens = usage.prompt_tokens
        self.completion_tokens = usage.completion_tokens
        self.total_tokens = usage.total_tokens
        self.cached_tokens = usage.cached_tokens

    def mark_first_token(self) -> None:
        if self.time_to_first_token is None:
            self.time_to_first_token = time.perf_counter() - self.started

    def finish(self, status: int, error: str | None = None) -> None:
        """The response is over: freeze duration and status (idempotent)."""
        if self.complete:
            return
        self.complete = True
        self.status = status
        if error is not None and self.error is None:
            self.error = error
        self.duration = time.perf_counter() - self.started


@dataclass
class _Slot:
    exchange: AiExchange | None = None


class _Owner:
    """The key of the exchange's slot in ``flow.state`` (one for all AI plugins)."""

    __slots__ = ()


_OWNER = _Owner()


def exchange(flow: Flow) -> AiExchange | None:
    """The AI exchange of this flow, or None when no AI plugin started one."""
    return flow.state(_OWNER, _Slot).exchange


def start_exchange(flow: Flow, *, api: Api, requested_model: str, streaming: bool,
                   prompt_text: str, last_user_text: str = "",
                   request: dict[str, Any] | None = None) -> AiExchange:
    """Create the flow's exchange record (replacing any earlier one) and return it.

    ``route``, ``consumer`` and ``started`` come from the flow.
    """
    consumer = getattr(flow.consumer, "name", None) if flow.consumer is not None else None
    ex = AiExchange(
        api=api,
        route=flow.route.name if flow.route is not None else "",
        consumer=consumer if isinstance(consumer, str) else None,
        requested_model=requested_model,
        streaming=streaming,
        prompt_text=prompt_text,
        last_user_text=last_user_text,
        request=request if request is not None else {},
        started=flow.started,
    )
    flow.state(_OWNER, _Slot).exchange = ex
    return ex
