"""Routing precedence: which route serves a request.

One declarative table drives ``RouteTable`` directly (routes + a request -> the
route name that must win, or None); a few end-to-end checks then confirm that
the gateway routes what arrives on the socket the same way, percent-encoding
and dot segments included.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from multidict import CIMultiDict, MultiDict

from proxy.config import RouteConfig
from proxy.routing import Route, RouteTable
from tests.conftest import InProcessGateway, service

# RouteTable only stores a route's service and chain; routing never touches them.
_UNUSED: Any = object()


def route(name: str, **match: Any) -> RouteConfig:
    return RouteConfig.model_validate({"name": name, "match": match, "service": "svc"})


def table(*routes: RouteConfig) -> RouteTable:
    return RouteTable([Route(cfg, i, _UNUSED, _UNUSED) for i, cfg in enumerate(routes)])


@dataclass(frozen=True)
class Req:
    path: str = "/"
    host: str = "example.com"
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""


def route_for(t: RouteTable, req: Req) -> str | None:
    matched = t.match(req.host, req.path, req.method, CIMultiDict(req.headers),
                      lambda: MultiDict(parse_qsl(req.query, keep_blank_values=True)))
    return matched.name if matched is not None else None


# Each group of routes is listed with the *least* specific first where that
# matters, so config order alone can never explain the expected winner.
HOSTS = [
    route("any"),
    route("wild", hosts=["*.example.com"]),
    route("exact", hosts=["api.example.com"]),
]
WILDCARDS = [
    route("short", hosts=["*.example.com"]),
    route("long", hosts=["*.api.example.com"]),
]
EXACT_HOST_PATH = [
    route("wild", hosts=["*.example.com"]),
    route("exact-x", hosts=["api.example.com"], path="/x"),
]
WILD_ONLY = [route("wild", hosts=["*.example.com"])]
MIXED_CASE_CONFIG = [route("exact", hosts=["API.Example.com"])]
IPV6 = [route("v6", hosts=["::1"])]
PATH_KINDS = [
    route("prefix", path_prefix="/admin"),
    route("regex", path_regex="/admin/[0-9]+"),
    route("exact", path="/admin"),
]
PREFIXES = [
    route("root", path_prefix="/"),
    route("api", path_prefix="/api"),
    route("v1", path_prefix="/api/v1"),
]
REGEX_ONLY = [route("user", path_regex="/users/[0-9]+")]
METHODS = [
    route("any", path_prefix="/a"),
    route("post", path_prefix="/a", methods=["post", "PUT"]),
]


def with_fallback(**match: Any) -> list[RouteConfig]:
    """A conditional route after a plain one on the same path: wins only when it matches."""
    return [route("fallback", path_prefix="/"), route("cond", path_prefix="/", **match)]


CONDITIONS = [
    route("plain", path_prefix="/api"),
    route("one", path_prefix="/api", methods=["GET"]),
    route("two", path_prefix="/api", methods=["GET"], headers={"X-A": {"present": True}}),
]
PATH_OVER_CONDITIONS = [
    route("short-many", path_prefix="/api", methods=["GET"], headers={"X-A": "1"},
          query={"q": "1"}),
    route("long-none", path_prefix="/api/v1"),
]
TWINS = [route("first", path_prefix="/t"), route("second", path_prefix="/t")]
EQUAL_COUNT = [
    route("by-a", path_prefix="/t", headers={"X-A": {"present": True}}),
    route("by-b", path_prefix="/t", headers={"X-B": {"present": True}}),
]
ADMIN = [route("public", path_prefix="/"), route("admin", path="/admin")]

CASES: list[tuple[str, list[RouteConfig], Req, str | None]] = [
    # --- hosts
    ("exact host beats wildcard and no-host", HOSTS, Req(host="api.example.com"), "exact"),
    ("wildcard beats no-host", HOSTS, Req(host="www.example.com"), "wild"),
    ("no-host route catches other hosts", HOSTS, Req(host="other.org"), "any"),
    ("exact host whose path misses falls to the wildcard", EXACT_HOST_PATH,
     Req(host="api.example.com", path="/y"), "wild"),
    ("exact host with its path", EXACT_HOST_PATH, Req(host="api.example.com", path="/x"),
     "exact-x"),
    ("longer wildcard suffix beats shorter", WILDCARDS, Req(host="v1.api.example.com"), "long"),
    ("shorter wildcard still serves its own hosts", WILDCARDS, Req(host="www.example.com"),
     "short"),
    ("*.example.com does not match example.com", WILD_ONLY, Req(host="example.com"), None),
    ("*.example.com does not match badexample.com", WILD_ONLY, Req(host="badexample.com"), None),
    ("*.example.com matches deeper names", WILD_ONLY, Req(host="a.b.example.com"), "wild"),
    ("host port is stripped, case ignored", HOSTS, Req(host="API.Example.COM:8443"), "exact"),
    ("host in config is case-insensitive", MIXED_CASE_CONFIG, Req(host="api.example.com"),
     "exact"),
    ("bracketed IPv6 host with port", IPV6, Req(host="[::1]:8080"), "v6"),
    ("wildcard with port and case", HOSTS, Req(host="WWW.example.com:80"), "wild"),
    # --- paths
    ("exact path beats regex and prefix", PATH_KINDS, Req(path="/admin"), "exact"),
    ("regex beats prefix", PATH_KINDS, Req(path="/admin/42"), "regex"),
    ("prefix when nothing more specific matches", PATH_KINDS, Req(path="/admin/x"), "prefix"),
    ("longest prefix wins", PREFIXES, Req(path="/api/v1/users"), "v1"),
    ("next longest prefix", PREFIXES, Req(path="/api/v2"), "api"),
    ("shortest prefix last", PREFIXES, Req(path="/other"), "root"),
    ("regex matches the whole path", REGEX_ONLY, Req(path="/users/42"), "user"),
    ("regex does not match a longer path", REGEX_ONLY, Req(path="/users/42/edit"), None),
    ("regex is anchored at the start", REGEX_ONLY, Req(path="/x/users/42"), None),
    # --- methods, headers, query
    ("method condition matches (config is upper-cased)", METHODS, Req(path="/a", method="POST"),
     "post"),
    ("second listed method", METHODS, Req(path="/a", method="PUT"), "post"),
    ("other methods fall back", METHODS, Req(path="/a", method="GET"), "any"),
    ("header exact", with_fallback(headers={"X-Env": "prod"}),
     Req(headers={"x-env": "prod"}), "cond"),
    ("header exact is not a prefix", with_fallback(headers={"X-Env": "prod"}),
     Req(headers={"X-Env": "production"}), "fallback"),
    ("header prefix", with_fallback(headers={"Authorization": {"prefix": "Bearer "}}),
     Req(headers={"Authorization": "Bearer abc"}), "cond"),
    ("header prefix miss", with_fallback(headers={"Authorization": {"prefix": "Bearer "}}),
     Req(headers={"Authorization": "Basic abc"}), "fallback"),
    ("header regex", with_fallback(headers={"X-Version": {"regex": "v[0-9]+"}}),
     Req(headers={"X-Version": "v2"}), "cond"),
    ("header regex must match the whole value",
     with_fallback(headers={"X-Version": {"regex": "v[0-9]+"}}),
     Req(headers={"X-Version": "v2beta"}), "fallback"),
    ("header regex needs the header", with_fallback(headers={"X-Version": {"regex": ".*"}}),
     Req(), "fallback"),
    ("header present", with_fallback(headers={"X-Debug": {"present": True}}),
     Req(headers={"X-Debug": ""}), "cond"),
    ("header present miss", with_fallback(headers={"X-Debug": {"present": True}}), Req(),
     "fallback"),
    ("header present: false matches its absence",
     with_fallback(headers={"Authorization": {"present": False}}), Req(), "cond"),
    ("header present: false refuses its presence",
     with_fallback(headers={"Authorization": {"present": False}}),
     Req(headers={"Authorization": "x"}), "fallback"),
    ("query exact", with_fallback(query={"debug": "1"}), Req(query="a=b&debug=1"), "cond"),
    ("query exact miss", with_fallback(query={"debug": "1"}), Req(query="debug=2"), "fallback"),
    ("query regex", with_fallback(query={"id": {"regex": "[0-9]+"}}), Req(query="id=17"), "cond"),
    ("query present", with_fallback(query={"trace": {"present": True}}), Req(query="trace="),
     "cond"),
    ("query absent", with_fallback(query={"trace": {"present": True}}), Req(query="x=1"),
     "fallback"),
    # --- specificity and ties
    ("two conditions beat one", CONDITIONS, Req(path="/api", headers={"X-A": "1"}), "two"),
    ("one condition beats none", CONDITIONS, Req(path="/api"), "one"),
    ("no conditions when none match", CONDITIONS, Req(path="/api", method="POST"), "plain"),
    ("longer prefix beats more conditions", PATH_OVER_CONDITIONS,
     Req(path="/api/v1", headers={"X-A": "1"}, query="q=1"), "long-none"),
    ("identical routes: config order", TWINS, Req(path="/t"), "first"),
    ("equal condition count: config order", EQUAL_COUNT,
     Req(path="/t", headers={"X-A": "1", "X-B": "1"}), "by-a"),
    ("equal condition count: the one that matches", EQUAL_COUNT,
     Req(path="/t", headers={"X-B": "1"}), "by-b"),
    # --- normalised paths (the gateway percent-decodes before the table sees them)
    ("dot segments removed", ADMIN, Req(path="/x/../admin"), "admin"),
    ("dot segment above the root", ADMIN, Req(path="/../admin"), "admin"),
    ("single-dot segments removed", ADMIN, Req(path="/./admin"), "admin"),
    ("doubled slashes merged", ADMIN, Req(path="//admin"), "admin"),
    ("slashes merged inside", ADMIN, Req(path="/x//..//admin"), "admin"),
    ("trailing slash kept: not the exact route", ADMIN, Req(path="/admin/"), "public"),
    ("paths are case-sensitive", ADMIN, Req(path="/ADMIN"), "public"),
]


@pytest.mark.parametrize(("routes", "req", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_precedence(routes: list[RouteConfig], req: Req, expected: str | None) -> None:
    assert route_for(table(*routes), req) == expected


def test_precedence_does_not_depend_on_config_order() -> None:
    """Every permutation of host and path kinds picks the same most specific route."""
    for perm in itertools.permutations(HOSTS):
        assert route_for(table(*perm), Req(host="api.example.com")) == "exact"
    for perm in itertools.permutations(PATH_KINDS):
        t = table(*perm)
        assert [route_for(t, Req(path=p)) for p in ("/admin", "/admin/7", "/admin/x")] == [
            "exact", "regex", "prefix"]


def test_query_is_parsed_only_for_routes_that_look_at_it() -> None:
    calls = 0

    def query() -> MultiDict[str]:
        nonlocal calls
        calls += 1
        return MultiDict({"v": "1"})

    t = table(route("q", path="/q", query={"v": "1"}), route("plain", path_prefix="/"))
    assert t.match("h", "/elsewhere", "GET", CIMultiDict(), query).name == "plain"  # type: ignore[union-attr]
    assert calls == 0
    assert t.match("h", "/q", "GET", CIMultiDict(), query).name == "q"  # type: ignore[union-attr]
    assert calls == 1


# ---------------------------------------------------------------------------
# End to end: what arrives on the socket


async def raw_request(port: int, target: bytes, host: bytes = b"example.com"
                      ) -> tuple[int, CIMultiDict[str], bytes]:
    """Send ``target`` byte for byte (no client-side normalisation); read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: " + host
                     + b"\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return int(status_line.split()[1]), headers, body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)


def tagged_route(name: str, **match: Any) -> dict[str, Any]:
    """A route whose responses say which route served them."""
    return {"name": name, "match": match, "service": "up",
            "plugins": {"headers": {"response": {"set": {"X-Route": name}}}}}


@pytest.fixture
async def routed(gateway: Callable[..., Awaitable[InProcessGateway]],
                 upstream: Callable[..., Awaitable[str]]) -> InProcessGateway:
    url = await upstream()
    return await gateway({
        "access_log": {"enabled": False},
        "services": {"up": service(url)},
        "routes": [
            tagged_route("public", path_prefix="/public"),
            tagged_route("admin", path="/admin"),
            tagged_route("api-host", hosts=["api.example.com"], path_prefix="/"),
            tagged_route("wild-host", hosts=["*.example.com"], path_prefix="/"),
        ],
    })


@pytest.mark.parametrize("target", [
    b"/admin", b"/%61dmin", b"/x/../admin", b"//admin", b"/public/../admin", b"/%2e%2e/admin",
    b"/x/%2e%2e/admin", b"/x/./../admin", b"/admin?x=1",
])
async def test_encoded_and_dotted_paths_reach_the_admin_route(routed: InProcessGateway,
                                                              target: bytes) -> None:
    status, headers, body = await raw_request(routed.port, target, host=b"other.org")
    assert (status, headers.get("X-Route")) == (200, "admin")
    # The upstream is asked for the resource that was routed on.
    assert json.loads(body)["path"] == "/admin"


@pytest.mark.parametrize(("target", "expected"), [
    (b"/x/..%2fadmin", None),
    (b"/public%2f..%2fadmin", "public"),
    (b"/public/..%2Fadmin", "public"),
])
async def test_an_encoded_slash_is_never_a_separator(routed: InProcessGateway, target: bytes,
                                                     expected: str | None) -> None:
    status, headers, _ = await raw_request(routed.port, target, host=b"other.org")
    assert headers.get("X-Route") == expected
    assert status == (200 if expected else 404)


@pytest.mark.parametrize(("host", "expected"), [
    (b"API.Example.com:8080", "api-host"),
    (b"www.example.com", "wild-host"),
    (b"example.com", None),
])
async def test_host_routing_end_to_end(routed: InProcessGateway, host: bytes,
                                       expected: str | None) -> None:
    status, headers, _ = await raw_request(routed.port, b"/elsewhere", host=host)
    assert headers.get("X-Route") == expected
    assert status == (200 if expected else 404)


async def test_no_route_answers_404_json_with_request_id(routed: InProcessGateway) -> None:
    status, headers, body = await raw_request(routed.port, b"/nothing-here", host=b"other.org")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    data = json.loads(body)
    assert set(data) == {"error", "request_id"}
    assert data["error"]
    assert data["request_id"] == headers["X-Request-Id"]
    # Another refusal gets another id.
    _, _, body2 = await raw_request(routed.port, b"/nothing-here", host=b"other.org")
    assert json.loads(body2)["request_id"] != data["request_id"]
