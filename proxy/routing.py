"""The routing table: which route (and so which service and plugin chain) serves a request.

Precedence, most specific first:

1. host: an exact host, then ``*.`` wildcards (longest suffix first), then routes
   that name no host;
2. within those, path: exact, then regex, then prefix (longest first), then no path;
3. then the route with more conditions (methods, headers, query params);
4. ties go to config order.

Paths are normalized before matching (RFC 3986 §6.2.2: percent-encoded
unreserved characters decoded, dot segments removed, repeated slashes merged),
and the upstream receives that same normalized path, so router and upstream
agree on what was asked for: ``/%61dmin`` and ``/x/%2e%2e/admin`` are
``/admin`` for both. An encoded slash (``%2F``) stays encoded, so it can never
turn into a separator that one side sees and the other does not. Regexes are
RE2 and must match the whole value: admin-written patterns never backtrack on
attacker input.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from proxy.config import RouteConfig, ValueMatch
from proxy.regex import compile_regex

if TYPE_CHECKING:
    from proxy.pipeline import PluginChain
    from proxy.upstream import Service

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
# Escapes that would change the path's structure if decoded for matching.
_STRUCTURAL_RE = re.compile(r"%(?:2[fF]|5[cC])")


def _decode_unreserved(m: re.Match[str]) -> str:
    char = chr(int(m.group(1), 16))
    return char if char in _UNRESERVED else "%" + m.group(1).upper()


def normalize_request_path(raw_path: str) -> tuple[str, str]:
    """(path to route on, raw path and query to send upstream) for a request target.

    Both come from one normalized form, so the route chosen is the route for
    the resource the upstream will serve.
    """
    path, sep, query = raw_path.partition("?")
    if "%" in path:
        path = _ESCAPE_RE.sub(_decode_unreserved, path)
    path = normalize_path(path)
    upstream = path + sep + query
    if "%" not in path:
        return path, upstream
    # Decode for matching, except the escapes that would add separators.
    parts = _STRUCTURAL_RE.split(path)
    seps = _STRUCTURAL_RE.findall(path)
    out = [unquote(parts[0])]
    for escape, part in zip(seps, parts[1:], strict=True):
        out.append(escape.upper())
        out.append(unquote(part))
    return "".join(out), upstream


def normalize_path(path: str) -> str:
    """Remove dot segments and merge slashes, keeping a trailing slash."""
    if "/." not in path and "//" not in path:
        return path
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if path.endswith("/") and norm != "/":
        norm += "/"
    return norm


class _ValueMatcher:
    __slots__ = ("exact", "prefix", "present", "regex")

    def __init__(self, spec: ValueMatch) -> None:
        self.exact = spec.exact
        self.prefix = spec.prefix
        self.regex = compile_regex(spec.regex) if spec.regex is not None else None
        self.present = spec.present

    def __call__(self, value: str | None) -> bool:
        if self.present is not None:
            return (value is not None) == self.present
        if value is None:
            return False
        if self.exact is not None:
            return value == self.exact
        if self.prefix is not None:
            return value.startswith(self.prefix)
        return self.regex.fullmatch(value) is not None  # type: ignore[union-attr]


# Path ranks: higher is more specific.
_NO_PATH, _PREFIX, _REGEX, _EXACT = 0, 1, 2, 3


@dataclass(eq=False)
class Route:
    """A compiled route: its matchers, its service and its plugin chain."""

    config: RouteConfig
    index: int
    service: Service
    chain: PluginChain
    methods: frozenset[str] = field(init=False)
    path_rank: int = field(init=False)
    _path: str = field(init=False, default="")
    _path_re: Any = field(init=False, default=None)
    _headers: tuple[tuple[str, _ValueMatcher], ...] = field(init=False)
    _query: tuple[tuple[str, _ValueMatcher], ...] = field(init=False)

    def __post_init__(self) -> None:
        m = self.config.match
        self.methods = frozenset(m.methods)
        if m.path is not None:
            self.path_rank, self._path = _EXACT, m.path
        elif m.path_regex is not None:
            self.path_rank, self._path_re = _REGEX, compile_regex(m.path_regex)
        elif m.path_prefix is not None:
            self.path_rank, self._path = _PREFIX, m.path_prefix
        else:
            self.path_rank = _NO_PATH
        self._headers = tuple((k, _ValueMatcher(v)) for k, v in m.headers.items())
        self._query = tuple((k, _ValueMatcher(v)) for k, v in m.query.items())

    @property
    def name(self) -> str:
        return self.config.name

    def specificity(self) -> tuple[int, int, int]:
        conditions = (1 if self.methods else 0) + len(self._headers) + len(self._query)
        return (self.path_rank, len(self._path), conditions)

    def matches(self, path: str, method: str, headers: Mapping[str, str],
                query: Callable[[], Mapping[str, str]]) -> bool:
        rank = self.path_rank
        if rank == _PREFIX:
            if not path.startswith(self._path):
                return False
        elif rank == _EXACT:
            if path != self._path:
                return False
        elif rank == _REGEX and self._path_re.fullmatch(path) is None:
            return False
        if self.methods and method not in self.methods:
            return False
        for name, matcher in self._headers:
            if not matcher(headers.get(name)):
                return False
        if self._query:
            args = query()  # parsed only for routes that look at the query
            return all(matcher(args.get(name)) for name, matcher in self._query)
        return True


def _by_specificity(routes: list[Route]) -> list[Route]:
    # sorted() is stable: equal specificity keeps config order.
    return sorted(routes, key=lambda r: r.specificity(), reverse=True)


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        exact: dict[str, list[Route]] = {}
        wildcard: dict[str, list[Route]] = {}
        any_host: list[Route] = []
        for route in routes:
            hosts = route.config.match.hosts
            if not hosts:
                any_host.append(route)
            for host in hosts:
                host = host.lower()
                if host.startswith("*."):
                    wildcard.setdefault(host[1:], []).append(route)
                else:
                    exact.setdefault(host, []).append(route)
        self._exact = {h: _by_specificity(rs) for h, rs in exact.items()}
        # Longest suffix first: "*.api.example.com" before "*.example.com".
        self._wildcard = sorted(
            ((suffix, _by_specificity(rs)) for suffix, rs in wildcard.items()),
            key=lambda item: len(item[0]), reverse=True,
        )
        self._any = _by_specificity(any_host)

    def match(self, host: str, path: str, method: str, headers: Mapping[str, str],
              query: Callable[[], Mapping[str, str]]) -> Route | None:
        host = _strip_port(host).lower()
        path = normalize_path(path)
        for route in self._exact.get(host, ()):
            if route.matches(path, method, headers, query):
                return route
        for suffix, routes in self._wildcard:
            if host.endswith(suffix) and len(host) > len(suffix):
                for route in routes:
                    if route.matches(path, method, headers, query):
                        return route
        for route in self._any:
            if route.matches(path, method, headers, query):
                return route
        return None


def _strip_port(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    head, sep, tail = host.rpartition(":")
    if sep and tail.isdigit() and ":" not in head:
        return head
    return host
