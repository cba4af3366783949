"""The ``rate-limit`` plugin: "at most N requests per W" limits, shared through the store.

    plugins:
      rate-limit:
        rules:
          - {name: per-ip, by: ip, limit: 100, window: 10s}
          - {name: per-key, by: {header: X-API-Key}, limit: 1000, window: 1m}
        fail_open: true          # Redis down: limit per process instead (default)

Each request is checked against every rule whose key it has, in one atomic
``store.limit`` call (one Redis round trip however many rules): admitted only
if every rule has room, and then every rule is charged; a refused request
charges none. A rule keyed on something the request lacks (a header, query
parameter, cookie or consumer) does not apply to it; ``ip``, ``path`` and
``route`` keys are always present.

Counting is the store's sliding-window counter (Cloudflare's approximation:
the previous fixed window weighted by how much of it still overlaps, plus the
current one). Store keys are ``rl:<route or *>:<rule>:<window ms>:<value>``;
IPs, consumer names and paths are kept readable when short and plain, every
other value (and any long one) is a 128-bit BLAKE2b digest, so keys stay
bounded and header or cookie values (often secrets) never reach Redis as such.

When the store fails (``StoreError``): with ``fail_open`` the request is
decided by a per-process in-memory limiter owned by this plugin instance (each
limit divided by ``local_divisor``), otherwise it is refused with
``unavailable_status`` (503). Nothing is retried: the store bounds each call
by ``store.timeout_ms`` and its circuit breaker skips a dead Redis at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from proxy.flow import Flow
from proxy.limits import (
    LimiterConfig,
    Rule,
    RuleKey,
    key_extractor,
    route_segment,
    unique_rule_names,
    window_ms,
)
from proxy.plugin import Group, Plugin, PluginContext
from proxy.store import LimitCheck, LimitState, MemoryStore, StoreError

log = logging.getLogger("bastion.ratelimit")

__all__ = ["RateLimitConfig", "RateLimitPlugin", "Rejection", "Rule", "RuleKey"]

# The in-process fallback limiter's bound on keys (two per key and window).
_LOCAL_MAX_KEYS: Final = 200_000
# Store errors are logged at most this often (seconds); metrics count each one.
_WARN_EVERY: Final = 10.0
# ---------------------------------------------------------------------------
# Config


class Rejection(BaseModel):
    """The answer to a request over a limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int = Field(429, ge=400, le=599)
    # In the gateway's JSON error body ({"error": message, "request_id": ...}).
    message: str = "rate limit exceeded"
    # A body of your own instead of the JSON error, sent with content_type.
    body: str | None = None
    content_type: str = "text/plain; charset=utf-8"

    @field_validator("content_type")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if not v or any(c in v for c in "\r\n\0"):
            raise ValueError("content_type is one non-empty line")
        return v


class RateLimitConfig(LimiterConfig):
    rules: list[Rule] = Field(min_length=1)
    _unique_names = field_validator("rules")(unique_rule_names)
    # X-RateLimit-Limit/-Remaining/-Reset on every answer (Retry-After is
    # always sent with a refusal).
    quota_headers: bool = True
    rejection: Rejection = Rejection()


# ---------------------------------------------------------------------------
# Keys


# ---------------------------------------------------------------------------
# The plugin


@dataclass(frozen=True, slots=True)
class _Bound:
    """A rule as one route applies it: its key prefix and metric children."""

    rule: Rule
    extract: Callable[[Flow], str | None]
    prefix: str
    local_limit: int
    allowed: Any
    limited: Any


def _tightest(states: Sequence[LimitState]) -> LimitState:
    return min(states, key=lambda s: (s.remaining, -s.retry_after, -s.reset, s.limit))


def _seconds(value: float) -> int:
    """Whole seconds, rounded up, never below 1."""
    return max(1, math.ceil(value - 1e-9))


def quota_headers(state: LimitState) -> dict[str, str]:
    """X-RateLimit-* for the most restrictive rule's state.

    Reset is when the rule's current window ends (the count starts to fade),
    and never earlier than a request would be admitted again.
    """
    return {
        "X-RateLimit-Limit": str(state.limit),
        "X-RateLimit-Remaining": str(state.remaining),
        "X-RateLimit-Reset": str(_seconds(max(state.reset, state.retry_after))),
    }


class RateLimitPlugin(Plugin[RateLimitConfig]):
    name = "rate-limit"
    group = Group.TRAFFIC
    # Early in TRAFFIC: refuse before other traffic plugins do any work.
    priority = 100
    config_model = RateLimitConfig

    def __init__(self, config: RateLimitConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        # The fail-open fallback: per process, per plugin instance.
        self._local = MemoryStore(max_keys=_LOCAL_MAX_KEYS)
        self._routes: dict[str, tuple[_Bound, ...]] = {}
        self._decisions = ctx.metrics.counter(
            "bastion_ratelimit_decisions_total",
            "Rate-limit verdicts per rule: allowed (every applicable rule of an admitted "
            "request) or limited (each rule that had no room)", ["route", "rule", "result"])
        self._store_errors = ctx.metrics.counter(
            "bastion_ratelimit_store_errors_total",
            "Store failures seen by the rate-limit plugin, by kind, and what it did "
            "(fallback: decided by the in-process limiter; refused: answered unavailable)",
            ["route", "kind", "action"])
        self._error_counts: dict[tuple[str, str, str], Any] = {}
        self._last_warning = -math.inf

    async def close(self) -> None:
        await self._local.close()

    def _bind(self, route: str) -> tuple[_Bound, ...]:
        bound = self._routes.get(route)
        if bound is None:
            divisor = self.config.local_divisor
            bound = self._routes[route] = tuple(
                _Bound(rule, key_extractor(rule),
                       f"rl:{route_segment(route, rule)}:{rule.name}:{window_ms(rule.window)}:",
                       max(1, rule.limit // divisor),
                       self._decisions.labels(route, rule.name, "allowed"),
                       self._decisions.labels(route, rule.name, "limited"))
                for rule in self.config.rules)
        return bound

    async def on_request_headers(self, flow: Flow) -> None:
        route = flow.route.name if flow.route is not None else ""
        applied: list[_Bound] = []
        checks: list[LimitCheck] = []
        for b in self._bind(route):
            value = b.extract(flow)
            if value is not None:
                applied.append(b)
                checks.append(LimitCheck(b.prefix + value, b.rule.limit, b.rule.window))
        if not checks:
            return
        try:
            admitted, states = await self.ctx.store.limit(checks)
        except StoreError as exc:
            if not self.config.fail_open:
                self._store_failed(route, exc, "refused")
                flow.decide(self.name, "unavailable", kind=exc.kind)
                flow.respond_error(self.config.unavailable_status,
                                   self.config.unavailable_message)
                return
            self._store_failed(route, exc, "fallback")
            flow.decide(self.name, "fallback", kind=exc.kind)
            local = [LimitCheck(c.key, b.local_limit, c.window)
                     for b, c in zip(applied, checks, strict=True)]
            admitted, states = await self._local.limit(local)
        if admitted:
            for b in applied:
                b.allowed.inc()
            if self.config.quota_headers:
                headers = quota_headers(_tightest(states))
                flow.state(self, lambda: headers)
            return
        self._reject(flow, applied, states)

    def _reject(self, flow: Flow, applied: Sequence[_Bound],
                states: Sequence[LimitState]) -> None:
        # The rules that had no room (the others had, but are not charged either).
        blocking = [(b, s) for b, s in zip(applied, states, strict=True) if s.retry_after > 0]
        for b, _ in blocking:
            b.limited.inc()
        headers = {"Retry-After": str(_seconds(max(s.retry_after for s in states)))}
        if self.config.quota_headers:
            headers.update(quota_headers(_tightest(states)))
        flow.decide(self.name, "limited", rules=[b.rule.name for b, _ in blocking])
        rejection = self.config.rejection
        if rejection.body is None:
            flow.respond_error(rejection.status, rejection.message, headers)
        else:
            headers["Content-Type"] = rejection.content_type
            flow.respond(rejection.status, rejection.body.encode(), headers)

    async def on_response_headers(self, flow: Flow) -> None:
        headers: dict[str, str] | None = flow.state(self, _no_headers)
        if headers:
            flow.response_headers.update(headers)

    def _store_failed(self, route: str, exc: StoreError, action: str) -> None:
        key = (route, exc.kind, action)
        child = self._error_counts.get(key)
        if child is None:
            child = self._error_counts[key] = self._store_errors.labels(*key)
        child.inc()
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            log.warning("rate-limit store failed (%s): %s; %s", exc.kind, exc,
                        "limiting per process in memory" if action == "fallback"
                        else "refusing requests (fail_open is off)")


def _no_headers() -> dict[str, str] | None:
    return None
