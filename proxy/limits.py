"""Keyed limits: the rule model and request keys every limiter plugin shares.

A rule counts requests (or tokens) per key: the client IP (per network),
the consumer, the path, the route, or a header, query parameter or cookie.
``key_extractor`` turns a rule into a function giving a request's key
segment (None when the rule does not apply to it); values that are long or
not plain are hashed, so store keys stay bounded and secrets (API keys used
as keys) never reach the store in clear. The ``rate-limit`` and
``ai-token-ratelimit`` plugins both build their store keys from these.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Annotated, Any, Final, Literal, TypeVar
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

__all__ = ["KeyType", "LimiterConfig", "Rule", "RuleKey", "Window", "digest", "ip_bucket",
           "key_extractor", "readable", "route_segment", "unique_rule_names", "window_ms"]

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


def digest(value: str) -> str:
    return "#" + hashlib.blake2b(value.encode("utf-8", "surrogateescape"),
                                 digest_size=16).hexdigest()


def readable(value: str) -> str:
    """The value itself when short and plain, else its digest."""
    if len(value) <= _READABLE_MAX and _READABLE.issuperset(value):
        return "=" + value
    return digest(value)


@lru_cache(maxsize=8192)
def ip_bucket(ip: str, ipv4_prefix: int = 32, ipv6_prefix: int = 64) -> str:
    """The key segment for a client address: the address, or its network."""
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    except ValueError:
        return digest(ip)  # not an address (a unix socket peer, say): counted as it is
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        else:
            addr = ipaddress.IPv6Address(addr.packed)  # drop any %zone
    prefix = ipv4_prefix if addr.version == 4 else ipv6_prefix
    if prefix == addr.max_prefixlen:
        return "=" + str(addr)
    return "=" + str(ipaddress.ip_network((addr, prefix), strict=False))


def _cookie(flow: Flow, name: str, client_headers: bool = False) -> str | None:
    source = flow.request.headers if client_headers else flow.request_headers
    for header in source.getall("Cookie", ()):
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


def key_extractor(rule: Rule, client_headers: bool = False) -> Callable[[Flow], str | None]:
    """A function giving the rule's key segment for a request (None: the rule does not apply).

    Headers and cookies are read from what goes upstream, unless
    ``client_headers`` asks for what the client sent (for a plugin that runs
    after another has stripped the client's headers).
    """
    by = rule.by
    if by.type == "ip":
        v4, v6 = rule.ipv4_prefix, rule.ipv6_prefix
        return lambda flow: ip_bucket(flow.client_ip, v4, v6)
    if by.type == "route":
        return lambda flow: "-"
    if by.type == "path":
        return lambda flow: readable(flow.path)
    if by.type == "consumer":
        def consumer(flow: Flow) -> str | None:
            name = getattr(flow.consumer, "name", None) if flow.consumer is not None else None
            return readable(name) if isinstance(name, str) and name else None
        return consumer
    assert by.name is not None
    name = by.name
    get: Callable[[Flow, str], str | None]
    if by.type == "header":
        def get(flow: Flow, name: str) -> str | None:
            source = flow.request.headers if client_headers else flow.request_headers
            return source.get(name)
    elif by.type == "query":
        get = _query
    else:
        def get(flow: Flow, name: str) -> str | None:
            return _cookie(flow, name, client_headers)

    def named(flow: Flow) -> str | None:
        value = get(flow, name)
        return digest(value) if value else None  # absent or empty: the rule does not apply
    return named


def route_segment(route: str, rule: Rule) -> str:
    if rule.scope == "global":
        return "*"
    if route and len(route) <= _READABLE_MAX and _READABLE.issuperset(route):
        return route
    return digest(route)


def window_ms(window: float) -> int:
    return max(1, round(window * 1000))


class LimiterConfig(BaseModel):
    """What every limiter plugin does when its store fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Store failure: True limits per process in memory, False refuses.
    fail_open: bool = True
    # With fail_open, each limit is divided by this in the per-process fallback
    # (e.g. the number of gateway processes sharing the Redis).
    local_divisor: int = Field(1, ge=1, le=1_000_000)
    unavailable_status: int = Field(503, ge=400, le=599)
    unavailable_message: str = "rate limit store unavailable"


R = TypeVar("R", bound=Rule)


def unique_rule_names(rules: list[R]) -> list[R]:
    """A limiter's ``rules`` field validator: rule names identify store keys and metrics."""
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ValueError(f"two rules are named {rule.name!r}")
        seen.add(rule.name)
    return rules
