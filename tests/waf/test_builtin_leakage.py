"""Bastion's response-side rules (rules/1950-data-leakage.conf) end to end.

An in-process gateway runs the built-in rule set with response-body
inspection on, in front of an upstream that answers each path with a canned
body: SQL error messages, stack traces, directory listings, system files,
keys. Leaks must be replaced by a 403; ordinary pages, API answers and
articles that merely talk about errors must pass untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import InProcessGateway, simple_config

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]

INSPECTED = ["text/html", "text/plain", "application/json"]

HTML = "text/html"
TEXT = "text/plain"
JSON = "application/json"


def page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>Shop</title></head><body>{body}</body></html>"


# (name, content type, body, the leakage rule expected to fire)
LEAKS: list[tuple[str, str, str, int]] = [
    ("mysql syntax error", HTML, page(
        "<b>Warning</b>: mysqli_query(): You have an error in your SQL syntax; check the manual "
        "that corresponds to your MySQL server version for the right syntax to use near "
        "''1''' at line 1 in <b>/var/www/html/product.php</b> on line <b>27</b>"), 1950100),
    ("postgres error in json", JSON, json.dumps({
        "error": "ERROR:  unterminated quoted string at or near \"'1\"\nLINE 1: SELECT * FROM "
                 "items WHERE id = '1\n                                        ^"}), 1950100),
    ("sql server error", HTML, page(
        "Microsoft OLE DB Provider for SQL Server error '80040e14'<br>Unclosed quotation mark "
        "after the character string ''.<br>/login.asp, line 12"), 1950100),
    ("oracle error", TEXT, "ORA-01756: quoted string not properly terminated\n", 1950105),
    ("sqlite error", TEXT, 'sqlite3.OperationalError: near "1": syntax error\n', 1950100),
    ("pdo sqlstate", HTML, page(
        "Fatal: SQLSTATE[42000]: Syntax error or access violation: 1064"), 1950105),
    ("hibernate exception in json", JSON, json.dumps({
        "status": 500, "message": "could not execute query; nested exception is "
        "org.hibernate.exception.SQLGrammarException"}), 1950100),
    ("java stack trace", HTML, page(
        "<pre>java.lang.NullPointerException: Cannot invoke \"Cart.total()\"\n"
        "\tat com.example.shop.CartService.total(CartService.java:42)\n"
        "\tat com.example.shop.CartController.show(CartController.java:17)\n"
        "\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n"
        "</pre>"), 1950110),
    ("java stack trace in json", JSON, json.dumps({
        "error": "Internal Server Error",
        "trace": "java.lang.IllegalStateException: boom\n\tat com.example.api.Orders.handle"
                 "(Orders.java:88)\n\tat org.springframework.web.servlet.FrameworkServlet"
                 ".service(FrameworkServlet.java:897)\n"}), 1950110),
    ("python traceback", TEXT,
     "Traceback (most recent call last):\n"
     '  File "/srv/app/views.py", line 41, in checkout\n'
     "    total = cart.total()\n"
     "AttributeError: 'NoneType' object has no attribute 'total'\n", 1950110),
    ("python traceback in json", JSON, json.dumps({
        "detail": 'Traceback (most recent call last):\n  File "/srv/app/api.py", line 9, in '
                  "get\n    raise KeyError(key)\nKeyError: 'sku'\n"}), 1950110),
    ("php fatal error", HTML,
     "<br />\n<b>Fatal error</b>:  Uncaught Error: Call to undefined function render() in "
     "/var/www/html/index.php:12\nStack trace:\n#0 {main}\n  thrown in "
     "<b>/var/www/html/index.php</b> on line <b>12</b><br />\n", 1950110),
    ("php warning", HTML, page(
        "<br />\n<b>Warning</b>:  include(pages/about.php): Failed to open stream: No such file "
        "or directory in <b>/var/www/html/index.php</b> on line <b>8</b><br />"), 1950110),
    (".net error page", HTML,
     "<html><head><title>Runtime Error</title></head><body><h1>Server Error in '/' "
     "Application.</h1><h2><i>Object reference not set to an instance of an object.</i></h2>"
     "<b>Exception Details: </b>System.NullReferenceException: Object reference not set to "
     "an instance of an object.<br><pre>[NullReferenceException: Object reference not set to "
     "an instance of an object.]\n   Shop.Cart.Total() in C:\\src\\Shop\\Cart.cs:42\n</pre>"
     "</body></html>", 1950110),
    (".net stack frames", TEXT,
     "Unhandled exception.\n   at System.Data.SqlClient.SqlConnection.OnError(SqlException "
     "exception)\n   at Shop.Orders.Load(Int32 id)\n", 1950110),
    ("node stack trace", TEXT,
     "TypeError: Cannot read properties of undefined (reading 'id')\n"
     "    at getUser (/app/src/users.js:14:23)\n"
     "    at Layer.handle [as handle_request] "
     "(/app/node_modules/express/lib/router/layer.js:95:5)\n",
     1950110),
    ("ruby trace", TEXT,
     "NoMethodError (undefined method `name' for nil:NilClass):\n"
     "  app/controllers/orders_controller.rb:12:in `show'\n", 1950110),
    ("go panic", TEXT,
     "panic: runtime error: index out of range [3] with length 3\n\n"
     "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:9 +0x1d\n", 1950110),
    ("apache directory listing", HTML,
     "<html><head><title>Index of /backup</title></head><body><h1>Index of /backup</h1>"
     "<table><tr><th><a href=\"?C=N;O=D\">Name</a></th></tr>"
     "<tr><td><a href=\"db.sql.gz\">db.sql.gz</a></td></tr></table></body></html>", 1950120),
    ("nginx autoindex", HTML,
     "<html><head><title>Index of /files/</title></head><body><h1>Index of /files/</h1><hr>"
     "<pre><a href=\"../\">../</a>\n<a href=\"secret.txt\">secret.txt</a></pre></body></html>",
     1950120),
    ("iis directory listing", HTML, page(
        "<pre><a href=\"/\">[To Parent Directory]</a><br><br> 1/2/2025  9:14 AM  1024 "
        "<a href=\"/uploads/a.txt\">a.txt</a></pre>"), 1950120),
    ("python http.server listing", HTML,
     "<html><head><title>Directory listing for /</title></head><body>"
     "<h1>Directory listing for /</h1><ul><li><a href=\".env\">.env</a></li></ul></body></html>",
     1950120),
    ("etc passwd", TEXT,
     "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
     "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n", 1950130),
    ("etc passwd in html", HTML, page(
        "<pre>daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin\n</pre>"), 1950130),
    ("etc shadow", TEXT,
     "root:$6$rJ0mX1$8fG2kq3eW9tYbF0sZ1VdQ.:19723:0:99999:7:::\n"
     "daemon:*:19723:0:99999:7:::\n", 1950130),
    ("win.ini", TEXT,
     "; for 16-bit app support\n[fonts]\n[extensions]\n[mci extensions]\n[files]\n", 1950130),
    ("output of id", HTML, page("<pre>uid=33(www-data) gid=33(www-data) groups=33(www-data)</pre>"),
     1950130),
    ("rsa private key", TEXT,
     "-----BEGIN RSA PRIVATE KEY-----\n"
     "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
     "-----END RSA PRIVATE KEY-----\n", 1950140),
    ("openssh private key in json", JSON, json.dumps({
        "name": "deploy", "key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA"
        "\n-----END OPENSSH PRIVATE KEY-----\n"}), 1950140),
    ("aws credentials in json", JSON, json.dumps({
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}), 1950140),
    ("aws credentials file", TEXT,
     "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
     "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", 1950140),
]

# (name, content type, body): ordinary answers that must pass.
CLEAN: list[tuple[str, str, str]] = [
    ("product page", HTML, page(
        "<h1>Walnut desk</h1><p>Solid walnut, 140 x 70 cm. In stock: 12.</p>"
        "<p>Warning: this product is heavy; two people are needed to carry it.</p>")),
    ("api answer with an error field", JSON, json.dumps({
        "error": "invalid_request", "error_description": "The email address has a syntax error",
        "fields": {"email": "must contain @"}})),
    ("article about sql errors", HTML, page(
        "<article><h1>Why parameterised queries matter</h1><p>Building SQL by string "
        "concatenation leads to syntax errors and injection; use placeholders instead. The "
        "database will report an error near the offending token.</p></article>")),
    ("article about stack traces", HTML, page(
        "<p>A stack trace lists the calls that led to an exception. In Python the traceback "
        "module formats them; Java prints them with printStackTrace().</p>")),
    ("index of refraction", HTML, page(
        "<h1>Index of refraction</h1><p>The index of refraction of water is 1.33.</p>"
        "<p><a href=\"/index/of/tables\">Index of tables</a></p>")),
    ("user list mentioning root", JSON, json.dumps({
        "users": [{"name": "root", "uid": 0, "shell": "/bin/bash"},
                  {"name": "deploy", "uid": 1001, "groups": ["www-data"]}]})),
    ("public certificate and key", JSON, json.dumps({
        "certificate": "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUd\n"
                       "-----END CERTIFICATE-----\n",
        "public_key": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
                      "-----END PUBLIC KEY-----\n"})),
    ("custom error page", HTML, page(
        "<h1>Something went wrong</h1><p>We're sorry. Our team has been notified "
        "(reference 7f3a9c).</p>")),
    ("plain text note", TEXT,
     "Order 1042 shipped at 09:14 via UPS, tracking 1Z999AA10123456784.\n"),
    ("changelog", TEXT,
     "v2.3.1\n- fix: handle empty cart at checkout\n- docs: explain the at-rest encryption\n"),
]


def upstream_app() -> web.Application:
    bodies = {f"/leak/{i}": (ctype, body) for i, (_, ctype, body, _) in enumerate(LEAKS)}
    bodies.update({f"/clean/{i}": (ctype, body) for i, (_, ctype, body) in enumerate(CLEAN)})

    async def serve(request: web.Request) -> web.Response:
        ctype, body = bodies[request.path]
        ctype = request.query.get("type", ctype)
        return web.Response(body=body.encode(), headers={"Content-Type": f"{ctype}; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/{kind}/{n}", serve)
    return app


Start = Callable[..., Awaitable[InProcessGateway]]


@pytest.fixture
def start(gateway: GatewayFactory, upstream: UpstreamFactory) -> Start:
    """``await start(**waf)``: the canned upstream behind Bastion's own rules."""

    async def run(**waf: Any) -> InProcessGateway:
        url = await upstream(upstream_app())
        waf.setdefault("paranoia", 1)
        waf.setdefault("response_body", {"enabled": True, "mime_types": INSPECTED})
        return await gateway(simple_config(url, plugins={"waf": waf}))

    return run


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with http.get(url) as resp:
        return resp.status, await resp.read()


@pytest.mark.parametrize(("index", "expected_rule"),
                         [(i, rule) for i, (_, _, _, rule) in enumerate(LEAKS)],
                         ids=[name for name, _, _, _ in LEAKS])
async def test_leak_is_refused(start: Start, http: aiohttp.ClientSession,
                               index: int, expected_rule: int) -> None:
    gw = await start()
    status, body = await fetch(http, f"{gw.url}/leak/{index}")
    assert status == 403, body[:300]
    answer = json.loads(body)
    assert expected_rule in answer["rule_ids"]
    assert 1990100 in answer["rule_ids"]  # the outbound verdict
    # The refusal carries none of what leaked.
    assert LEAKS[index][2][:40].encode() not in body


@pytest.mark.parametrize("index", range(len(CLEAN)), ids=[name for name, _, _ in CLEAN])
async def test_clean_response_passes(start: Start, http: aiohttp.ClientSession,
                                     index: int) -> None:
    gw = await start()
    status, body = await fetch(http, f"{gw.url}/clean/{index}")
    assert status == 200
    assert body == CLEAN[index][2].encode()


async def test_types_not_listed_are_not_inspected(start: Start,
                                                  http: aiohttp.ClientSession) -> None:
    gw = await start()
    passwd = next(i for i, leak in enumerate(LEAKS) if leak[0] == "etc passwd")
    status, body = await fetch(http, f"{gw.url}/leak/{passwd}?type=application/octet-stream")
    assert status == 200
    assert body.startswith(b"root:x:0:0:")


async def test_nothing_is_inspected_when_response_bodies_are_off(
        start: Start, http: aiohttp.ClientSession) -> None:
    gw = await start(response_body={"enabled": False})
    for i in range(len(LEAKS)):
        status, _ = await fetch(http, f"{gw.url}/leak/{i}")
        assert status == 200, LEAKS[i][0]


async def test_detect_mode_lets_the_leak_through(start: Start,
                                                 http: aiohttp.ClientSession) -> None:
    gw = await start(mode="detect")
    status, body = await fetch(http, f"{gw.url}/leak/0")
    assert status == 200
    assert b"You have an error in your SQL syntax" in body


async def test_exception_names_without_a_trace_need_paranoia_2(
        upstream: UpstreamFactory, gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    body = page("<p>Error: java.lang.NullPointerException (see the logs)</p>")

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    url = await upstream(app)
    inspect = {"enabled": True, "mime_types": INSPECTED}
    for paranoia, expected in ((1, 200), (2, 403)):
        gw = await gateway(simple_config(url, plugins={"waf": {
            "paranoia": paranoia, "response_body": inspect}}))
        status, answer = await fetch(http, gw.url + "/")
        assert status == expected, (paranoia, answer[:200])
        if expected == 403:
            assert 1950200 in json.loads(answer)["rule_ids"]
