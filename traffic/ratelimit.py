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

import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qsl

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from proxy.flow import Flow
from proxy.plugin import Group, Plugin, PluginContext
from proxy.store import LimitCheck, LimitState, MemoryStore, StoreError

log = logging.getLogger("bastion.ratelimit")

__all__ = ["RateLimitConfig", "RateLimitPlugin", "Rejection", "Rule", "RuleKey"]

KeyType = Literal["ip", "consumer", "path", "route", "header", "query", "cookie"]
_NAMED: Final = ("header", "query", "cookie")
_PLAIN: Final = ("ip", "consumer", "path", "route")

_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Characters a route name, consumer name or path may keep readable in a key;
# no ":" (the key's separator) outside the final value segment.
_READABLE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@+~/")
_READABLE_MAX: Final = 64
# The in-process fallback limiter's bound on keys (two per key and window).
_LOCAL_MAX_KEYS: Final = 200_000
# Store errors are logged at most this often (seconds); metrics count each one.
_WARN_EVERY: Final = 10.0
_MAX_WINDOW: Final = 366 * 86400.0
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _parse_window(value: Any) -> Any:
    """Seconds as a number, or a string like ``500ms``, ``10s``, ``1m``, ``1h``, ``1d``."""
    if isinstance(value, str):
        m = _DURATION.fullmatch(value)
        if not m:
            raise ValueError(f"not a duration: {value!r} (use e.g. 10s, 1m, 1h, 1d, 500ms)")
        return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if isinstance(value, bool):
        raise ValueError("a window is a duration, not a boolean")
    return value


Window = Annotated[float, BeforeValidator(_parse_window)]


# ---------------------------------------------------------------------------
# Config


class RuleKey(BaseModel):
    """What a rule counts by: ip, consumer, path, route, or {header|query|cookie: NAME}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: KeyType
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data in _NAMED:
                raise ValueError(f"by: {data} needs a name, e.g. {{{data}: NAME}}")
            if data not in _PLAIN:
                raise ValueError(f"unknown key {data!r}: use one of {', '.join(_PLAIN)}, "
                                 "or {header|query|cookie: NAME}")
            return {"type": data}
        if isinstance(data, Mapping) and "type" not in data:
            if len(data) == 1:
                ((kind, name),) = data.items()
                if kind in _NAMED:
                    if not isinstance(name, str):
                        raise ValueError(f"by: {{{kind}: NAME}} takes a name, not {name!r}")
                    return {"type": kind, "name": name}
            raise ValueError("by is one of ip, consumer, path, route, "
                             "or a single {header|query|cookie: NAME}")
        return data

    @model_validator(mode="after")
    def _name(self) -> RuleKey:
        if self.type in _NAMED:
            name = self.name
            if not name:
                raise ValueError(f"by: {self.type} needs a name")
            if self.type in ("header", "cookie") and not _TOKEN_CHARS.issuperset(name):
                raise ValueError(f"not a valid {self.type} name: {name!r}")
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
                raise ValueError(f"control characters in the {self.type} name {name!r}")
        elif self.name is not None:
            raise ValueError(f"by: {self.type} takes no name")
        return self

    def describe(self) -> str:
        return self.type if self.name is None else f"{self.type}:{self.name}"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Identifies the rule in store keys, metrics and decisions.
    name: str
    by: RuleKey
    limit: int = Field(ge=1, le=10**12)
    # Seconds, or "500ms", "10s", "1m", "1h", "1d".
    window: Window = Field(gt=0, le=_MAX_WINDOW, allow_inf_nan=False)
    # "route": counts are per route; "global": every route with a rule of this
    # name shares one count per key (each still applies its own limit).
    scope: Literal["route", "global"] = "route"
    # by: ip only. Addresses are counted per network of this size: an IPv6
    # client usually has a whole /64 to rotate through.
    ipv4_prefix: int = Field(32, ge=1, le=32)
    ipv6_prefix: int = Field(64, ge=1, le=128)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _RULE_NAME.fullmatch(v):
            raise ValueError(f"rule names are 1-64 of A-Z a-z 0-9 _ . - (not starting with "
                             f"a punctuation mark): {v!r}")
        return v

    @field_validator("window")
    @classmethod
    def _check_window(cls, v: float) -> float:
        if v < 0.001:
            raise ValueError("a window is at least 1ms")
        return v

    @model_validator(mode="after")
    def _prefixes_for_ip(self) -> Rule:
        if self.by.type != "ip":
            given = {"ipv4_prefix", "ipv6_prefix"} & self.model_fields_set
            if given:
                raise ValueError(f"{', '.join(sorted(given))} applies to by: ip only")
        return self


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


class RateLimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(min_length=1)
    # X-RateLimit-Limit/-Remaining/-Reset on every answer (Retry-After is
    # always sent with a refusal).
    quota_headers: bool = True
    rejection: Rejection = Rejection()
    # Store failure: True limits per process in memory, False refuses.
    fail_open: bool = True
    # With fail_open, each limit is divided by this in the per-process fallback
    # (e.g. the number of gateway processes sharing the Redis).
    local_divisor: int = Field(1, ge=1, le=1_000_000)
    unavailable_status: int = Field(503, ge=400, le=599)
    unavailable_message: str = "rate limit store unavailable"

    @field_validator("rules")
    @classmethod
    def _unique(cls, v: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in v:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
        return v


# ---------------------------------------------------------------------------
# Keys


def _digest(value: str) -> str:
    return "#" + hashlib.blake2b(value.encode("utf-8", "surrogateescape"),
                                 digest_size=16).hexdigest()


def _readable(value: str) -> str:
    """The value itself when short and plain, else its digest."""
    if len(value) <= _READABLE_MAX and _READABLE.issuperset(value):
        return "=" + value
    return _digest(value)


@lru_cache(maxsize=8192)
def ip_bucket(ip: str, ipv4_prefix: int = 32, ipv6_prefix: int = 64) -> str:
    """The key segment for a client address: the address, or its network."""
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    except ValueError:
        return _digest(ip)  # not an address (a unix socket peer, say): counted as it is
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        else:
            addr = ipaddress.IPv6Address(addr.packed)  # drop any %zone
    prefix = ipv4_prefix if addr.version == 4 else ipv6_prefix
    if prefix == addr.max_prefixlen:
        return "=" + str(addr)
    return "=" + str(ipaddress.ip_network((addr, prefix), strict=False))


def _cookie(flow: Flow, name: str) -> str | None:
    for header in flow.request_headers.getall("Cookie", ()):
        for part in header.split(";"):
            key, sep, value = part.partition("=")
            if sep and key.strip() == name:
                return value.strip()
    return None


def _query(flow: Flow, name: str) -> str | None:
    if not flow.query_string:
        return None
    for key, value in parse_qsl(flow.query_string, keep_blank_values=True):
        if key == name:
            return value
    return None


def _extractor(rule: Rule) -> Callable[[Flow], str | None]:
    """A function giving the rule's key segment for a request (None: the rule does not apply)."""
    by = rule.by
    if by.type == "ip":
        v4, v6 = rule.ipv4_prefix, rule.ipv6_prefix
        return lambda flow: ip_bucket(flow.client_ip, v4, v6)
    if by.type == "route":
        return lambda flow: "-"
    if by.type == "path":
        return lambda flow: _readable(flow.path)
    if by.type == "consumer":
        def consumer(flow: Flow) -> str | None:
            name = getattr(flow.consumer, "name", None) if flow.consumer is not None else None
            return _readable(name) if isinstance(name, str) and name else None
        return consumer
    assert by.name is not None
    name = by.name
    get: Callable[[Flow, str], str | None]
    if by.type == "header":
        def get(flow: Flow, name: str) -> str | None:
            return flow.request_headers.get(name)
    elif by.type == "query":
        get = _query
    else:
        get = _cookie

    def named(flow: Flow) -> str | None:
        value = get(flow, name)
        return _digest(value) if value else None  # absent or empty: the rule does not apply
    return named


def _route_segment(route: str, rule: Rule) -> str:
    if rule.scope == "global":
        return "*"
    if route and len(route) <= _READABLE_MAX and _READABLE.issuperset(route):
        return route
    return _digest(route)


def _window_ms(window: float) -> int:
    return max(1, round(window * 1000))


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
                _Bound(rule, _extractor(rule),
                       f"rl:{_route_segment(route, rule)}:{rule.name}:{_window_ms(rule.window)}:",
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
