"""The ``headers`` plugin end to end: what the upstream and the client actually receive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.config import ConfigError, parse_config
from tests.conftest import InProcessGateway, service

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]

# What the upstream puts on every response, for the response-side operations.
UPSTREAM_RESPONSE_HEADERS = [
    ("Server", "upstream/1.0"),
    ("X-Powered-By", "php/5"),
    ("X-Old", "legacy"),
    ("Cache-Control", "no-cache"),
    ("X-Multi", "a"),
    ("X-Multi", "b"),
]


def header_app() -> web.Application:
    """Answers with every request header pair, repeats and order kept."""

    async def handle(request: web.Request) -> web.Response:
        resp = web.json_response({"headers": [[k, v] for k, v in request.headers.items()]})
        for name, value in UPSTREAM_RESPONSE_HEADERS:
            resp.headers.add(name, value)
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def values(pairs: list[list[str]], name: str) -> list[str]:
    return [v for k, v in pairs if k.lower() == name.lower()]


@pytest.fixture
async def with_headers(gateway: GatewayFactory, upstream: UpstreamFactory
                       ) -> Callable[[dict[str, Any]], Awaitable[InProcessGateway]]:
    url = await upstream(header_app())

    async def start(plugin_config: dict[str, Any]) -> InProcessGateway:
        return await gateway({
            "access_log": {"enabled": False},
            "services": {"up": service(url)},
            "routes": [{"name": "r", "match": {"path_prefix": "/"}, "service": "up",
                        "plugins": {"headers": plugin_config}}],
        })

    return start


async def upstream_sees(gw: InProcessGateway, http: aiohttp.ClientSession,
                        headers: list[tuple[str, str]]) -> list[list[str]]:
    async with http.get(gw.url + "/", headers=headers) as resp:
        assert resp.status == 200
        pairs: list[list[str]] = (await resp.json())["headers"]
        return pairs


# ---------------------------------------------------------------------------
# Request headers: (ops, what the client sends) -> the values the upstream sees per name

REQUEST_CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]], dict[str, list[str]]]] = [
    ("remove every value, any case", {"remove": ["x-internal-debug"]},
     [("X-Internal-Debug", "1"), ("X-Internal-Debug", "2"), ("X-Keep", "k")],
     {"X-Internal-Debug": [], "X-Keep": ["k"]}),
    ("rename", {"rename": {"X-Api-Version": "X-Version"}}, [("X-Api-Version", "2")],
     {"X-Api-Version": [], "X-Version": ["2"]}),
    ("rename keeps every value", {"rename": {"X-A": "X-B"}}, [("X-A", "1"), ("X-A", "2")],
     {"X-A": [], "X-B": ["1", "2"]}),
    ("rename replaces the target", {"rename": {"X-A": "X-B"}}, [("X-A", "1"), ("X-B", "old")],
     {"X-A": [], "X-B": ["1"]}),
    ("rename of an absent header leaves the target", {"rename": {"X-A": "X-B"}},
     [("X-B", "keep")], {"X-B": ["keep"]}),
    ("set adds an absent header", {"set": {"X-Env": "prod"}}, [], {"X-Env": ["prod"]}),
    ("set replaces every value", {"set": {"X-Env": "prod"}},
     [("X-Env", "dev"), ("x-env", "test")], {"X-Env": ["prod"]}),
    ("add appends a value", {"add": {"Via": "bastion"}}, [("Via", "1.1 corp-proxy")],
     {"Via": ["1.1 corp-proxy", "bastion"]}),
    ("add to an absent header", {"add": {"Via": "bastion"}}, [], {"Via": ["bastion"]}),
    # Order of operations: remove, rename, set, add.
    ("remove then set", {"set": {"X-A": "set"}, "remove": ["X-A"]}, [("X-A", "client")],
     {"X-A": ["set"]}),
    ("remove then add", {"add": {"X-A": "added"}, "remove": ["X-A"]}, [("X-A", "client")],
     {"X-A": ["added"]}),
    ("rename then set the new name", {"set": {"X-B": "set"}, "rename": {"X-A": "X-B"}},
     [("X-A", "renamed")], {"X-A": [], "X-B": ["set"]}),
    ("rename then add to the new name", {"add": {"X-B": "added"}, "rename": {"X-A": "X-B"}},
     [("X-A", "renamed")], {"X-B": ["renamed", "added"]}),
    ("set then add", {"add": {"X-A": "added"}, "set": {"X-A": "set"}}, [("X-A", "client")],
     {"X-A": ["set", "added"]}),
    ("remove runs before rename", {"rename": {"X-A": "X-B"}, "remove": ["X-A"]},
     [("X-A", "1"), ("X-B", "2")], {"X-A": [], "X-B": ["2"]}),
]


@pytest.mark.parametrize(("ops", "sent", "expected"), [c[1:] for c in REQUEST_CASES],
                         ids=[c[0] for c in REQUEST_CASES])
async def test_request_operations(
        with_headers: Callable[[dict[str, Any]], Awaitable[InProcessGateway]],
        http: aiohttp.ClientSession, ops: dict[str, Any], sent: list[tuple[str, str]],
        expected: dict[str, list[str]]) -> None:
    gw = await with_headers({"request": ops})
    seen = await upstream_sees(gw, http, sent)
    assert {name: values(seen, name) for name in expected} == expected


async def test_request_operations_leave_other_headers_alone(
        with_headers: Callable[[dict[str, Any]], Awaitable[InProcessGateway]],
        http: aiohttp.ClientSession) -> None:
    gw = await with_headers({"request": {"remove": ["X-Gone"], "set": {"X-Set": "1"}}})
    seen = await upstream_sees(gw, http, [("X-Other", "o1"), ("X-Other", "o2"),
                                          ("X-Gone", "g")])
    assert values(seen, "X-Other") == ["o1", "o2"]
    assert values(seen, "X-Set") == ["1"]
    assert values(seen, "X-Gone") == []


# ---------------------------------------------------------------------------
# Response headers

RESPONSE_CASES: list[tuple[str, dict[str, Any], dict[str, list[str]]]] = [
    ("remove", {"remove": ["X-Powered-By"]}, {"X-Powered-By": []}),
    ("removing Server hides the upstream's banner", {"remove": ["Server"]},
     {"Server": ["bastion"]}),
    ("rename", {"rename": {"X-Old": "X-New"}}, {"X-Old": [], "X-New": ["legacy"]}),
    ("set", {"set": {"Strict-Transport-Security": "max-age=31536000"}},
     {"Strict-Transport-Security": ["max-age=31536000"]}),
    ("set replaces every value", {"set": {"X-Multi": "one"}}, {"X-Multi": ["one"]}),
    ("add appends", {"add": {"Cache-Control": "no-store"}},
     {"Cache-Control": ["no-cache", "no-store"]}),
    ("remove, rename, set, add together", {
        "remove": ["X-Multi"], "rename": {"X-Old": "X-Multi"}, "set": {"X-Old": "reborn"},
        "add": {"X-Multi": "extra"},
    }, {"X-Multi": ["legacy", "extra"], "X-Old": ["reborn"]}),
]


@pytest.mark.parametrize(("ops", "expected"), [c[1:] for c in RESPONSE_CASES],
                         ids=[c[0] for c in RESPONSE_CASES])
async def test_response_operations(
        with_headers: Callable[[dict[str, Any]], Awaitable[InProcessGateway]],
        http: aiohttp.ClientSession, ops: dict[str, Any],
        expected: dict[str, list[str]]) -> None:
    gw = await with_headers({"response": ops})
    async with http.get(gw.url + "/") as resp:
        assert resp.status == 200
        seen = {name: resp.headers.getall(name, []) for name in expected}
        assert resp.headers.getall("X-Powered-By", []) == (
            [] if "X-Powered-By" in expected else ["php/5"])
    assert seen == expected


async def test_request_and_response_sides_are_separate(
        with_headers: Callable[[dict[str, Any]], Awaitable[InProcessGateway]],
        http: aiohttp.ClientSession) -> None:
    gw = await with_headers({"request": {"set": {"X-Req": "1"}},
                             "response": {"set": {"X-Resp": "1"}}})
    async with http.get(gw.url + "/") as resp:
        pairs = (await resp.json())["headers"]
        assert "X-Req" not in resp.headers
        assert resp.headers["X-Resp"] == "1"
    assert values(pairs, "X-Req") == ["1"]
    assert values(pairs, "X-Resp") == []


# ---------------------------------------------------------------------------
# YAML values


async def test_numeric_yaml_values_become_strings(
        gateway: GatewayFactory, upstream: UpstreamFactory,
        http: aiohttp.ClientSession) -> None:
    url = await upstream(header_app())
    gw = await gateway(f"""
listeners: [{{address: "127.0.0.1:0"}}]
access_log: {{enabled: false}}
services: {{up: {{endpoints: [{{url: "{url}"}}]}}}}
routes:
  - name: r
    service: up
    plugins:
      headers:
        request:
          set:
            X-Int: 1
            X-Float: 1.5
            X-Big: 12345678901234567890
          add:
            X-Zero: 0
        response:
          set:
            X-Max-Age: 3600
""")
    async with http.get(gw.url + "/") as resp:
        pairs = (await resp.json())["headers"]
        assert resp.headers["X-Max-Age"] == "3600"
    assert [values(pairs, n) for n in ("X-Int", "X-Float", "X-Big", "X-Zero")] == [
        ["1"], ["1.5"], ["12345678901234567890"], ["0"]]


def line_of(text: str, needle: str) -> int:
    return next(i + 1 for i, line in enumerate(text.splitlines()) if needle in line)


def plugin_text(section: str, op: str, value: str, where: str = "route") -> str:
    """A config with one headers operation; ``value`` is YAML for the op's argument."""
    ops = f"      headers:\n        {section}:\n          {op}: {value}\n"
    route = "routes:\n  - name: r\n    service: up\n"
    services = "services:\n  up:\n    endpoints:\n      - url: http://127.0.0.1:9\n"
    if where == "route":
        return services + route + "    plugins:\n" + "\n".join(
            "  " + line for line in ops.splitlines()) + "\n"
    return services + route + "plugins:\n" + "\n".join(
        line[4:] for line in ops.splitlines()) + "\n"


@pytest.mark.parametrize(("yaml_value", "expected"), [("true", "true"), ("off", "false")])
def test_yaml_booleans_are_sent_as_written(yaml_value: str, expected: str) -> None:
    loaded = parse_config(plugin_text("request", "set", f"{{X-Flag: {yaml_value}}}"))
    from traffic.headers import HeadersConfig

    cfg = HeadersConfig.model_validate(loaded.config.routes[0].plugins["headers"])
    assert cfg.request.set == {"X-Flag": expected}


@pytest.mark.parametrize("arg", ["{X-Empty: }", "{X-List: [a, b]}", "{X-Map: {a: b}}"])
def test_values_that_are_not_text_are_rejected(arg: str) -> None:
    text = plugin_text("request", "add", arg)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    [issue] = info.value.issues
    assert (issue.path, issue.line) == ("routes[0].plugins.headers.request.add",
                                        line_of(text, "add:"))


# ---------------------------------------------------------------------------
# Rejected at load, with the path and line of the operation


BAD_OPS: list[tuple[str, str, str, str, str]] = [
    # (section, op, YAML argument, where, message)
    ("request", "set", '{X-A: "a\\r\\nX-Injected: 1"}', "route", "CR, LF"),
    ("request", "add", '{X-A: "a\\nb"}', "route", "CR, LF"),
    ("response", "set", '{X-A: "a\\0b"}', "route", "NUL"),
    ("response", "add", '{X-A: "a\\rb"}', "global", "CR, LF"),
    ("request", "set", "{Connection: close}", "route", "hop-by-hop"),
    ("request", "add", "{Transfer-Encoding: chunked}", "route", "hop-by-hop"),
    ("request", "remove", "[Keep-Alive]", "global", "hop-by-hop"),
    ("request", "set", "{Proxy-Authorization: x}", "route", "hop-by-hop"),
    ("response", "rename", "{Upgrade: X-Up}", "route", "hop-by-hop"),
    ("response", "rename", "{X-Up: TE}", "route", "hop-by-hop"),
    ("response", "set", "{Trailer: x}", "global", "hop-by-hop"),
    ("request", "set", '{"X Bad": x}', "route", "not a valid header name"),
    ("request", "add", '{"X-Bad:": x}', "route", "not a valid header name"),
    ("request", "remove", '[""]', "route", "not a valid header name"),
]


@pytest.mark.parametrize(("section", "op", "arg", "where", "in_message"), BAD_OPS)
def test_unsafe_operations_are_rejected_at_load(section: str, op: str, arg: str, where: str,
                                                in_message: str) -> None:
    text = plugin_text(section, op, arg, where)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    [issue] = info.value.issues
    prefix = "routes[0].plugins" if where == "route" else "plugins"
    assert issue.path == f"{prefix}.headers.{section}.{op}"
    assert issue.line == line_of(text, f"{op}:")
    assert in_message in issue.message


@pytest.mark.parametrize(("section", "op", "arg"), [
    ("request", "set", '{Content-Length: "3"}'),
    ("request", "add", '{Content-Length: "3"}'),
    ("request", "rename", "{X-Len: Content-Length}"),
    ("response", "set", '{Content-Length: "5"}'),
])
def test_content_length_is_the_proxys_business(section: str, op: str, arg: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(plugin_text(section, op, arg))
    assert info.value.issues[0].path == f"routes[0].plugins.headers.{section}.{op}"
