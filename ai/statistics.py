"""The ``ai-statistics`` plugin: token counts, latency and speed of every LLM call.

    plugins:
      ai-statistics:
        max_consumers: 1000      # distinct consumer label values per process, then "other"
        max_models: 100          # the same for models
        # models: [gpt-4o, claude-3-5-sonnet-latest]   # or an allow-list

It reads the exchange record ``ai-proxy`` keeps (``ai.exchange``) once the call
is over (``on_done``, where the record is final whatever happened) and

* adds to Prometheus metrics (served on the admin listener's ``/metrics``):

  - ``bastion_ai_tokens_total{route,consumer,provider,model,type}``: prompt and
    completion tokens as the provider reported them (``type`` is ``prompt`` or
    ``completion``; a call whose usage never came counts none: nothing is
    estimated here);
  - ``bastion_ai_requests_total{route,consumer,provider,model,status}``: calls by
    the HTTP status the client got;
  - ``bastion_ai_time_to_first_token_seconds{route,provider,model}``: streamed
    calls, from the request's arrival to the first generated token;
  - ``bastion_ai_request_duration_seconds{route,provider,model}``: successful
    calls, from arrival to the end of the answer;
  - ``bastion_ai_output_tokens_per_second{route,provider,model}``: successful
    calls that generated tokens: completion tokens over the generation time
    (for streams, the time after the first token; otherwise the whole call);

* records one ``usage`` decision in the access log (``decisions`` of the
  request's line) with the numbers of the call.

Labels: ``model`` is the model the provider was sent (``provider_model``: after
a failover, the fallback's), ``provider`` the provider that answered: ``cache``
when a cache plugin answered instead, "" when none did (a call refused before
it was made, by ``ai-token-ratelimit`` say, or no provider reachable).
``consumer`` is "" for anonymous calls. Consumer names come from the config,
but model names may come from clients (a ``default`` that passes unknown names
through), so both are capped per process: past ``max_consumers`` /
``max_models`` distinct values, new ones are counted as ``other``. Histograms
carry no consumer label at all (each child is a dozen series).
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from ai.exchange import AiExchange, exchange
from proxy.flow import Flow
from proxy.plugin import Group, Plugin, PluginContext

__all__ = ["AiStatisticsConfig", "AiStatisticsPlugin", "LabelCap", "tokens_per_second"]

PLUGIN_NAME: Final = "ai-statistics"
OTHER: Final = "other"

# Time to the first token: interactive chat lives under a second or two,
# reasoning models and long prompts take far longer.
_TTFT_BUCKETS: Final = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0,
                        30.0, 60.0)
_DURATION_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
                            300.0, 600.0)
_SPEED_BUCKETS: Final = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 75.0, 100.0, 150.0, 200.0,
                         300.0, 500.0, 1000.0)
# A stream's tokens all within this: they came in one read, not at generation speed.
_MIN_GENERATION_SECONDS: Final = 0.001


class AiStatisticsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Count in the Prometheus metrics.
    metrics: bool = True
    #: Record the ``usage`` decision in the access log.
    access_log: bool = True
    #: Label the counters with the consumer; off, it is "" everywhere (many
    #: consumers, or consumer names you do not want in Prometheus).
    consumer_label: bool = True
    #: Distinct consumer label values per process; later ones count as "other".
    max_consumers: int = Field(1000, ge=1, le=1_000_000)
    #: Distinct model label values per process; later ones count as "other".
    max_models: int = Field(100, ge=1, le=100_000)
    #: When set, the only model label values (others count as "other"), and
    #: ``max_models`` does not apply.
    models: list[str] | None = None


class LabelCap:
    """The first ``limit`` distinct values (or an allow-list) pass; the rest become "other"."""

    __slots__ = ("_allowed", "_limit", "_seen")

    def __init__(self, limit: int, allowed: frozenset[str] | None = None) -> None:
        self._limit = limit
        self._allowed = allowed
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if not value:
            return value
        if self._allowed is not None:
            return value if value in self._allowed else OTHER
        if value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        return OTHER


def tokens_per_second(ex: AiExchange) -> float | None:
    """Generation speed: completion tokens over the time spent generating them.

    For a stream, the time from the first token to the end (the wait for the
    first token is the TTFT's); for a plain answer, the whole call. None when
    nothing was generated, or a stream's tokens all came within a millisecond.
    """
    tokens, duration = ex.completion_tokens, ex.duration
    if not tokens or duration is None or duration <= 0:
        return None
    if ex.streaming and ex.time_to_first_token is not None:
        seconds = duration - ex.time_to_first_token
        # A stream that came all at once says nothing about generation speed.
        return tokens / seconds if seconds >= _MIN_GENERATION_SECONDS else None
    return tokens / duration


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class AiStatisticsPlugin(Plugin[AiStatisticsConfig]):
    name = PLUGIN_NAME
    group = Group.AI
    # After ai-proxy (1000) and the AI plugins that act on a call; it only
    # reads the final record in on_done, so its place matters little.
    priority = 100
    config_model = AiStatisticsConfig

    def __init__(self, config: AiStatisticsConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        m = ctx.metrics
        self._tokens = m.counter(
            "bastion_ai_tokens_total",
            "LLM tokens as providers reported them, by route, consumer, provider, model and "
            "type (prompt or completion)", ["route", "consumer", "provider", "model", "type"])
        self._requests = m.counter(
            "bastion_ai_requests_total",
            "LLM calls by route, consumer, provider, model and the status the client got",
            ["route", "consumer", "provider", "model", "status"])
        self._ttft = m.histogram(
            "bastion_ai_time_to_first_token_seconds",
            "Streamed LLM calls: seconds from the request's arrival to the first generated "
            "token", ["route", "provider", "model"], buckets=_TTFT_BUCKETS)
        self._duration = m.histogram(
            "bastion_ai_request_duration_seconds",
            "Successful LLM calls: seconds from the request's arrival to the end of the answer",
            ["route", "provider", "model"], buckets=_DURATION_BUCKETS)
        self._speed = m.histogram(
            "bastion_ai_output_tokens_per_second",
            "Successful LLM calls: completion tokens per second of generation (streams: after "
            "the first token)", ["route", "provider", "model"], buckets=_SPEED_BUCKETS)
        allowed = frozenset(config.models) if config.models is not None else None
        self._consumer = LabelCap(config.max_consumers)
        self._model = LabelCap(config.max_models, allowed)
        # Label children, looked up once (labels() costs more than the increment).
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    async def on_done(self, flow: Flow) -> None:
        ex = exchange(flow)
        if ex is None:
            return
        speed = tokens_per_second(ex)
        if self.config.metrics:
            self._count(ex, speed)
        if self.config.access_log:
            detail: dict[str, Any] = {
                "api": ex.api,
                "model": ex.requested_model,
                "provider": ex.provider,
                "provider_model": ex.provider_model,
                "stream": ex.streaming,
                "status": ex.status,
                "prompt_tokens": ex.prompt_tokens,
                "completion_tokens": ex.completion_tokens,
                "total_tokens": ex.total_tokens,
                "cached_tokens": ex.cached_tokens,
                "ttft_ms": _ms(ex.time_to_first_token),
                "duration_ms": _ms(ex.duration),
                "tokens_per_second": None if speed is None else round(speed, 2),
                "attempts": ex.attempts,
            }
            if ex.cached:
                detail["cached"] = True
            if ex.error is not None:
                detail["error"] = ex.error
            flow.decide(self.name, "usage", **detail)

    def _count(self, ex: AiExchange, speed: float | None) -> None:
        route = ex.route
        consumer = self._consumer(ex.consumer or "") if self.config.consumer_label else ""
        # "cache": a cache plugin answered; "": no provider did (refused before
        # the call, or none reachable).
        provider = "cache" if ex.cached else ex.provider if ex.attempts else ""
        model = self._model(ex.provider_model or ex.requested_model)
        self._child(self._requests, route, consumer, provider, model, str(ex.status)).inc()
        for kind, n in (("prompt", ex.prompt_tokens), ("completion", ex.completion_tokens)):
            if n is not None and n > 0:
                self._child(self._tokens, route, consumer, provider, model, kind).inc(n)
        if ex.streaming and ex.time_to_first_token is not None:
            self._child(self._ttft, route, provider, model).observe(ex.time_to_first_token)
        if 200 <= ex.status < 300 and ex.error is None:
            if ex.duration is not None:
                self._child(self._duration, route, provider, model).observe(ex.duration)
            if speed is not None:
                self._child(self._speed, route, provider, model).observe(speed)
