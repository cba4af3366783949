"""The ``ai-token-ratelimit`` plugin: at most N LLM tokens per window, shared through the store.

    plugins:
      ai-token-ratelimit:
        rules:
          - {name: tpm, by: consumer, limit: 20000, window: 1m}
          - {name: tpd, by: consumer, limit: 1000000, window: 1d,
             overrides: {team-search: 5000000}}         # by: consumer only
          - {name: per-key, by: {header: X-API-Key}, limit: 10000, window: 1m}
        completion_reserve: 256  # reserved for answers whose request sets no max_tokens
        fail_open: true          # Redis down: limit per process instead (default)

Rules are those of ``rate-limit`` (``by`` ip, consumer, path, route, or
``{header|query|cookie: NAME}``; ``scope``; keys made the same way and the same
sliding-window counter), counting tokens instead of requests. Headers and
cookies are read from what the client sent (ai-proxy has removed them from the
provider's request by the time this plugin runs). A request must
have gone through ``ai-proxy`` first (same route, which runs before this in the
``AI`` group): its exchange record gives the prompt, the consumer and,
afterwards, the tokens used.

Check, reserve, settle
----------------------

How many tokens a call uses is only known once it is over, so the limit works
in two steps:

1. ``on_request_body`` (after ai-proxy has parsed the request): every rule that
   applies is checked and charged in one atomic ``store.limit`` call with a
   *reservation*: the prompt's estimated size (characters / ``chars_per_token``)
   plus what the answer may use (``max_completion_tokens`` or ``max_tokens``
   times ``n``, else ``completion_reserve``), capped at the rule's limit. The
   request is admitted only if every rule has room for it (``used + reservation
   <= limit``); otherwise it gets 429 in OpenAI's error format with
   ``Retry-After`` and ``X-RateLimit-*-Tokens``, and nothing is charged. This is
   what OpenAI's own rate limiter does with ``max_tokens``.
2. ``on_done``: the reservation is settled against the tokens actually used
   (``total_tokens`` of the exchange record; when the provider never reported
   usage, prompt and completion text lengths / ``chars_per_token``; a call that
   produced nothing, or an answer from a cache, uses 0). A surplus reservation
   is given back to the fixed window it was taken from; tokens beyond it are
   added to the current window.

So the count holds the settled tokens of finished calls plus the reservations
of calls in flight, and the only tokens a check cannot see are those calls in
flight use *beyond their reservation*. With ``e = max(0, used - reserved)`` per
call, the tokens charged within one count of a rule are at most ``limit`` plus
the ``e`` of the calls in flight when the last one was admitted, that one
included (so at most ``limit + sum(e)`` over all admitted calls). That is
exactly ``limit`` when every request sets ``max_tokens`` and the prompt
estimate is not short. With ``reserve: false`` one token is reserved and the
bound becomes the classic "charge after" lag: ``limit - 1`` plus the whole
usage of the last admitted call and of every call then in flight.

When the store fails (``StoreError``), as ``rate-limit``: with ``fail_open`` the
call is checked and later settled against a per-process in-memory limiter
(limits divided by ``local_divisor``), otherwise it is refused with
``unavailable_status``. A settlement that fails is lost (the reservation stays
charged) and counted in ``bastion_ai_token_ratelimit_store_errors_total``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ai.exchange import AiExchange, exchange
from ai.openai_format import error_body
from proxy.flow import Flow
from proxy.limits import (
    LimiterConfig,
    Rule,
    key_extractor,
    route_segment,
    unique_rule_names,
    window_ms,
)
from proxy.plugin import Group, Plugin, PluginContext
from proxy.store import LimitCheck, LimitState, MemoryStore, StoreError

log = logging.getLogger("bastion.ai.token_ratelimit")

__all__ = [
    "AiTokenRateLimitConfig",
    "AiTokenRateLimitPlugin",
    "TokenRejection",
    "TokenRule",
    "estimate_tokens",
    "token_headers",
]

PLUGIN_NAME: Final = "ai-token-ratelimit"
_MAX_TOKENS: Final = 10**12
_LOCAL_MAX_KEYS: Final = 200_000
_WARN_EVERY: Final = 10.0


# ---------------------------------------------------------------------------
# Config


class TokenRule(Rule):
    """A ``rate-limit`` rule whose ``limit`` counts tokens per ``window``."""

    #: by: consumer only: consumer name -> its own limit for this rule.
    overrides: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_for_consumers(self) -> TokenRule:
        if self.overrides and self.by.type != "consumer":
            raise ValueError("overrides applies to by: consumer only")
        for name, limit in self.overrides.items():
            if not 1 <= limit <= _MAX_TOKENS:
                raise ValueError(f"overrides: the limit of {name!r} must be 1 to {_MAX_TOKENS}")
        return self


class TokenRejection(BaseModel):
    """The answer to a call over a limit (OpenAI's error format, ``rate_limit_exceeded``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int = Field(429, ge=400, le=599)
    #: Start of the error message; the rule, its numbers and the wait follow.
    message: str = "Rate limit reached for tokens"


class AiTokenRateLimitConfig(LimiterConfig):
    rules: list[TokenRule] = Field(min_length=1)
    _unique_names = field_validator("rules")(unique_rule_names)
    #: Reserve the call's estimated tokens when it is admitted (and settle
    #: after). False reserves a single token: cheaper to admit, a looser bound.
    reserve: bool = True
    #: Tokens reserved for the answer when the request sets neither
    #: max_completion_tokens nor max_tokens.
    completion_reserve: int = Field(0, ge=0, le=_MAX_TOKENS)
    #: Characters per token for estimates (4 suits English; ~1 for Chinese or
    #: Japanese text, which makes estimates larger, i.e. safer).
    chars_per_token: float = Field(4.0, gt=0, le=100, allow_inf_nan=False)
    #: X-RateLimit-{Limit,Remaining,Reset}-Tokens on admitted calls too.
    quota_headers: bool = True
    rejection: TokenRejection = TokenRejection()
    unavailable_message: str = "the token rate limit store is unavailable"


# ---------------------------------------------------------------------------
# Helpers


def estimate_tokens(text: str, chars_per_token: float = 4.0) -> int:
    """A token count for ``text`` from its length (0 for no text)."""
    return math.ceil(len(text) / chars_per_token) if text else 0


def _count(value: Any) -> int | None:
    """A non-negative integer request field, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _go_duration(seconds: float) -> str:
    """A wait as OpenAI's x-ratelimit-reset-* headers write it: ``120ms``, ``12s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000 - 1e-6))}ms"
    whole = math.ceil(seconds - 1e-9)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _window_text(window: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if window >= size and (window / size).is_integer():
            return f"{int(window // size)}{unit}"
    return f"{window * 1000:g}ms"


# ---------------------------------------------------------------------------
# Keys: as rate-limit makes them, except that headers and cookies are the
# client's own. ai-proxy, which runs first, removes nearly every header from
# what goes to the provider (``flow.request_headers``).


def _seconds(value: float) -> int:
    """Whole seconds, rounded up, never below 1."""
    return max(1, math.ceil(value - 1e-9))


def _tightest(states: Sequence[LimitState]) -> LimitState:
    return min(states, key=lambda s: (s.remaining, -s.retry_after, -s.reset, s.limit))


def token_headers(state: LimitState) -> dict[str, str]:
    """X-RateLimit-*-Tokens, as OpenAI names them, for the most restrictive rule's state."""
    return {
        "X-RateLimit-Limit-Tokens": str(state.limit),
        "X-RateLimit-Remaining-Tokens": str(state.remaining),
        "X-RateLimit-Reset-Tokens": _go_duration(max(state.reset, state.retry_after)),
    }


# ---------------------------------------------------------------------------
# The plugin


@dataclass(frozen=True, slots=True)
class _Bound:
    """A rule as one route applies it: its key prefix and metric children."""

    rule: TokenRule
    extract: Callable[[Flow], str | None]
    prefix: str
    allowed: Any
    limited: Any

    def limit_for(self, consumer: str | None) -> int:
        if consumer is not None and self.rule.overrides:
            return self.rule.overrides.get(consumer, self.rule.limit)
        return self.rule.limit


@dataclass(slots=True)
class _Flight:
    """An admitted call: what was reserved where, to settle in on_done."""

    checks: list[LimitCheck]
    # Wall time of the reservation (its fixed windows).
    at: float
    # Reserved in the per-process fallback rather than the shared store.
    local: bool
    # The reservation before capping at each rule's limit.
    reserved: int
    headers: dict[str, str] | None = None


def _no_flight() -> _Flight | None:
    return None


class AiTokenRateLimitPlugin(Plugin[AiTokenRateLimitConfig]):
    name = PLUGIN_NAME
    group = Group.AI
    # After ai-proxy (1000) and ai-cache (950: a cache hit costs no provider tokens),
    # before the other AI plugins: a refused call costs them no work.
    priority = 900
    config_model = AiTokenRateLimitConfig

    def __init__(self, config: AiTokenRateLimitConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        # The fail-open fallback: per process, per plugin instance.
        self._local = MemoryStore(max_keys=_LOCAL_MAX_KEYS)
        self._routes: dict[str, tuple[_Bound, ...]] = {}
        m = ctx.metrics
        self._decisions = m.counter(
            "bastion_ai_token_ratelimit_decisions_total",
            "Token rate-limit verdicts per rule: allowed (every applicable rule of an "
            "admitted call) or limited (each rule that had no room)", ["route", "rule", "result"])
        self._store_errors = m.counter(
            "bastion_ai_token_ratelimit_store_errors_total",
            "Store failures seen by the token rate limit, by kind, and what it did (fallback: "
            "the in-process limiter decided; refused: answered unavailable; unsettled: a "
            "call's reservation could not be settled)", ["route", "kind", "action"])
        self._charged = m.counter(
            "bastion_ai_token_ratelimit_charged_tokens_total",
            "Tokens charged to token rate limits once calls ended, by route and source "
            "(usage: the provider's count; estimate: from text lengths)", ["route", "source"])
        self._children: dict[tuple[Any, ...], Any] = {}
        self._last_warning = -math.inf

    async def close(self) -> None:
        await self._local.close()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _bind(self, route: str) -> tuple[_Bound, ...]:
        bound = self._routes.get(route)
        if bound is None:
            bound = self._routes[route] = tuple(
                _Bound(rule, key_extractor(rule, client_headers=True),
                       f"aitl:{route_segment(route, rule)}:{rule.name}:"
                       f"{window_ms(rule.window)}:",
                       self._decisions.labels(route, rule.name, "allowed"),
                       self._decisions.labels(route, rule.name, "limited"))
                for rule in self.config.rules)
        return bound

    def reservation(self, ex: AiExchange) -> int:
        """Tokens to reserve for a call when it is admitted (at least 1)."""
        if not self.config.reserve:
            return 1
        prompt = estimate_tokens(ex.prompt_text, self.config.chars_per_token)
        completion = 0
        if ex.api == "chat":
            request = ex.request
            asked = _count(request.get("max_completion_tokens"))
            if asked is None:
                asked = _count(request.get("max_tokens"))
            completion = self.config.completion_reserve if asked is None else asked
            choices = _count(request.get("n"))
            if choices is not None and choices > 1:
                completion *= choices
        return max(1, prompt + completion)

    def used(self, ex: AiExchange) -> tuple[int, str]:
        """(tokens the call used, where the number comes from)."""
        if ex.cached:
            return 0, "cached"
        if ex.total_tokens is not None:
            return max(0, ex.total_tokens), "usage"
        if not 200 <= ex.status < 300 and not ex.completion_text:
            return 0, "none"  # no provider answered, or it refused: nothing generated
        cpt = self.config.chars_per_token
        return (estimate_tokens(ex.prompt_text, cpt)
                + estimate_tokens(ex.completion_text, cpt)), "estimate"

    # ------------------------------------------------------------ the check

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        if not end:
            return chunk
        ex = exchange(flow)
        if ex is None or ex.complete:
            return chunk
        route = ex.route
        wanted = self.reservation(ex)
        applied: list[_Bound] = []
        checks: list[LimitCheck] = []
        for b in self._bind(route):
            value = b.extract(flow)
            if value is not None:
                limit = b.limit_for(ex.consumer)
                applied.append(b)
                checks.append(LimitCheck(b.prefix + value, limit, b.rule.window,
                                         min(wanted, limit)))
        if not checks:
            return chunk
        now = time.time()
        local = False
        try:
            admitted, states = await self.ctx.store.limit(checks, now=now)
        except StoreError as exc:
            if not self.config.fail_open:
                self._store_failed(route, exc, "refused")
                flow.decide(self.name, "unavailable", kind=exc.kind)
                flow.respond(self.config.unavailable_status, error_body(
                    self.config.unavailable_message, "server_error",
                    "rate_limit_store_unavailable"))
                return b""
            self._store_failed(route, exc, "fallback")
            flow.decide(self.name, "fallback", kind=exc.kind)
            divisor = self.config.local_divisor
            checks = [LimitCheck(c.key, max(1, c.limit // divisor), c.window,
                                 min(c.cost, max(1, c.limit // divisor))) for c in checks]
            admitted, states = await self._local.limit(checks, now=now)
            local = True
        if not admitted:
            self._reject(flow, applied, checks, states, wanted)
            return b""
        for b in applied:
            b.allowed.inc()
        flight = _Flight(checks, now, local, wanted)
        if self.config.quota_headers:
            flight.headers = token_headers(_tightest(states))
        flow.state(self, lambda: flight)
        return chunk

    def _reject(self, flow: Flow, applied: Sequence[_Bound], checks: Sequence[LimitCheck],
                states: Sequence[LimitState], wanted: int) -> None:
        rows = list(zip(applied, checks, states, strict=True))
        # The rules without room for the reservation (the others are not charged either).
        blocking = [r for r in rows if r[2].used + r[1].cost > r[1].limit + 1e-9] or rows
        for b, _, _ in blocking:
            b.limited.inc()
        wait = max(s.retry_after for _, _, s in blocking)
        b, check, state = max(blocking, key=lambda r: r[2].retry_after)
        seconds = _seconds(wait)
        message = (f"{self.config.rejection.message} ({b.rule.name}: {check.limit} tokens per "
                   f"{_window_text(check.window)}): used {math.floor(state.used)}, requested "
                   f"{check.cost}. Please try again in {seconds}s.")
        headers = {"Retry-After": str(seconds),
                   "retry-after-ms": str(max(1, math.ceil(wait * 1000)))}
        if self.config.quota_headers:
            headers.update(token_headers(_tightest(states)))
        flow.decide(self.name, "limited", rules=[r[0].rule.name for r in blocking],
                    requested=wanted)
        flow.respond(self.config.rejection.status,
                     error_body(message, "rate_limit_exceeded", "rate_limit_exceeded"),
                     headers)

    async def on_response_headers(self, flow: Flow) -> None:
        flight = flow.state(self, _no_flight)
        if flight is not None and flight.headers:
            for name, value in flight.headers.items():
                # Replaces the provider's own (which describe the gateway's account).
                flow.response_headers[name] = value

    # ------------------------------------------------------------ the charge

    async def on_done(self, flow: Flow) -> None:
        flight = flow.state(self, _no_flight)
        ex = exchange(flow)
        if flight is None or ex is None:
            return
        tokens, source = self.used(ex)
        store = self._local if flight.local else self.ctx.store
        now = time.time()
        ops = []
        for c in flight.checks:
            diff = tokens - c.cost
            if diff > 0:
                # Beyond the reservation: counted now.
                ops.append(store.window_incr(c.key, c.window, diff, now=now))
            elif diff < 0 and math.floor(now / c.window) <= math.floor(flight.at / c.window) + 1:
                # Given back to the window it was taken from, while that window
                # still counts (current or previous).
                ops.append(store.window_incr(c.key, c.window, diff, now=flight.at))
        results = await asyncio.gather(*ops, return_exceptions=True)
        failed: StoreError | None = None
        for r in results:
            if isinstance(r, StoreError):
                failed = r
            elif isinstance(r, BaseException):
                raise r
        if failed is not None:
            self._store_failed(ex.route, failed, "unsettled")
            flow.decide(self.name, "unsettled", kind=failed.kind, tokens=tokens,
                        reserved=flight.reserved)
            return
        if tokens:
            self._child(self._charged, ex.route, source).inc(tokens)
        flow.decide(self.name, "charged", tokens=tokens, reserved=flight.reserved,
                    source=source)

    def _store_failed(self, route: str, exc: StoreError, action: str) -> None:
        self._child(self._store_errors, route, exc.kind, action).inc()
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            what = {"fallback": "limiting tokens per process in memory",
                    "refused": "refusing calls (fail_open is off)",
                    "unsettled": "a call's tokens were not charged"}[action]
            log.warning("ai-token-ratelimit store failed (%s): %s; %s", exc.kind, exc, what)
