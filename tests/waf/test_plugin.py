"""The ``waf`` plugin end to end: a client, the in-process gateway and an upstream, over sockets.

Most tests run a few inline rules (``RULES``) so they stay fast; the OWASP CRS
is loaded only where its own behaviour is the point.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml
from aiohttp import web
from yarl import URL

from proxy.config import ConfigError, parse_config
from proxy.gateway import Gateway
from proxy.metrics import Metrics
from proxy.runtime import build_runtime
from tests.conftest import InProcessGateway, simple_config

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]

CRS = Path(__file__).resolve().parents[3] / "shared" / "crs"
needs_crs = pytest.mark.skipif(not (CRS / "rules").is_dir(),
                               reason="../shared/crs (OWASP CRS v4) is absent")

LEAK = b"<html><body>LEAK-MARKER: stack trace at db.py:42</body></html>"

RULES = """
SecRule ARGS:debug "@streq 1" \\
    "id:10001,phase:1,deny,log,msg:'debug forbidden',severity:2,tag:'test/debug'"
SecRule ARGS "@contains evil" \\
    "id:10002,phase:2,deny,log,msg:'evil argument',\\
    logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}',severity:2,tag:'attack-test',tag:'test/evil'"
SecRule RESPONSE_BODY "@contains LEAK-MARKER" \\
    "id:10004,phase:4,deny,log,msg:'response leaks internals',severity:3,tag:'leak'"
"""


# ---------------------------------------------------------------------------
# The upstream: records what reaches it, and serves the response-side cases


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    url: str
    seen: list[Seen] = field(default_factory=list)
    # /sse sends its first event, then waits for this before finishing.
    release_sse: asyncio.Event = field(default_factory=asyncio.Event)


def upstream_app(up: Upstream) -> web.Application:
    async def leak(request: web.Request) -> web.Response:
        ctype = request.query.get("type", "text/html")
        return web.Response(body=LEAK, headers={"Content-Type": ctype})

    async def sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        await resp.write(b"data: first LEAK-MARKER\n\n")
        try:
            async with asyncio.timeout(10):
                await up.release_sse.wait()
        except TimeoutError:
            pass
        await resp.write(b"data: last\n\n")
        await resp.write_eof()
        return resp

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        up.seen.append(Seen(request.method, request.path_qs, dict(request.headers), body))
        return web.json_response({"body_bytes": len(body),
                                  "body_sha256": hashlib.sha256(body).hexdigest()})

    app = web.Application(client_max_size=0)
    app.router.add_get("/leak", leak)
    app.router.add_get("/sse", sse)
    app.router.add_route("*", "/{tail:.*}", record)
    return app


@pytest.fixture
async def recorder(upstream: UpstreamFactory) -> Upstream:
    up = Upstream("")
    up.url = await upstream(upstream_app(up))
    return up


WafGateway = Callable[..., Awaitable[InProcessGateway]]


@pytest.fixture
def waf_gateway(gateway: GatewayFactory, recorder: Upstream) -> WafGateway:
    """``await waf_gateway(mode="detect", ...)``: the recorder behind a global ``waf``."""

    async def start(**waf: Any) -> InProcessGateway:
        waf.setdefault("directives", RULES)
        return await gateway(simple_config(recorder.url, plugins={"waf": waf}))

    return start


def metric(gw: InProcessGateway, name: str, labels: dict[str, str]) -> float:
    gw.gateway.metrics.flush()
    value = gw.gateway.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def eventually(check: Callable[[], bool]) -> None:
    """on_done runs after a streamed response reached the client: give it a moment."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("still not true after 5 s")


def encoded(base: str, path_and_query: str) -> URL:
    """A URL sent exactly as written (aiohttp would re-quote it otherwise)."""
    return URL(base + path_and_query, encoded=True)


# ---------------------------------------------------------------------------
# Block mode


async def test_block_answers_403_json_and_upstream_never_sees_it(
        waf_gateway: WafGateway, recorder: Upstream, http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block")
    async with http.get(gw.url + "/search?debug=1") as resp:
        assert resp.status == 403
        assert resp.headers["Content-Type"].startswith("application/json")
        body = await resp.json()
        request_id = resp.headers["X-Request-Id"]
    assert set(body) == {"error", "request_id", "rule_ids"}
    assert body["request_id"] == request_id
    assert body["rule_ids"] == [10001]
    assert "firewall" in body["error"]
    # A phase 2 match on a body: refused before anything goes upstream.
    async with http.post(gw.url + "/form", data={"name": "evil"}) as resp:
        assert resp.status == 403
        assert (await resp.json())["rule_ids"] == [10002]
    assert recorder.seen == []
    async with http.get(gw.url + "/ok?q=fine") as resp:
        assert resp.status == 200
    assert [s.path_qs for s in recorder.seen] == ["/ok?q=fine"]
    labels = {"mode": "block", "action": "blocked"}
    assert metric(gw, "bastion_waf_decisions_total", labels) == 2
    assert metric(gw, "bastion_waf_decisions_total", {"mode": "block", "action": "passed"}) == 1
    assert metric(gw, "bastion_waf_rule_matches_total", {"rule_id": "10002"}) == 1


async def test_show_rule_ids_false_hides_them(waf_gateway: WafGateway,
                                              http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block", show_rule_ids=False)
    async with http.get(gw.url + "/?debug=1") as resp:
        assert resp.status == 403
        body = await resp.json()
    assert set(body) == {"error", "request_id"}
    assert "10001" not in json.dumps(body)


async def test_deny_status_from_the_rule_is_kept(waf_gateway: WafGateway, recorder: Upstream,
                                                 http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(directives=(
        'SecRule REQUEST_METHOD "@streq DELETE" "id:10010,phase:1,deny,status:405,log"\n'
        'SecRule ARGS:quiet "@streq 1" "id:10011,phase:1,deny,nolog"'))
    async with http.delete(gw.url + "/x") as resp:
        assert resp.status == 405
        assert (await resp.json())["rule_ids"] == [10010]
    # A nolog rule is not in the log, but the client still learns what refused it.
    async with http.get(gw.url + "/?quiet=1") as resp:
        assert resp.status == 403
        assert (await resp.json())["rule_ids"] == [10011]
    assert recorder.seen == []


# ---------------------------------------------------------------------------
# Detect mode and the audit log


async def test_detect_passes_records_and_audits(waf_gateway: WafGateway, recorder: Upstream,
                                                http: aiohttp.ClientSession,
                                                tmp_path: Path) -> None:
    audit = tmp_path / "waf-audit.log"
    gw = await waf_gateway(mode="detect", audit_log=str(audit))
    async with http.get(encoded(gw.url, "/search?q=so+evil&debug=1")) as resp:
        assert resp.status == 200
        request_id = resp.headers["X-Request-Id"]
    assert [s.path_qs for s in recorder.seen] == ["/search?q=so+evil&debug=1"]
    async with http.get(gw.url + "/clean?q=fine") as resp:
        assert resp.status == 200
    await eventually(lambda: metric(gw, "bastion_waf_decisions_total",
                                    {"mode": "detect", "action": "passed"}) == 1)
    assert metric(gw, "bastion_waf_decisions_total",
                  {"mode": "detect", "action": "detected"}) == 1
    assert metric(gw, "bastion_waf_decisions_total", {"mode": "detect", "action": "blocked"}) == 0
    assert metric(gw, "bastion_plugin_decisions_total",
                  {"plugin": "waf", "action": "detected"}) == 1
    assert b'bastion_waf_decisions_total{action="detected",mode="detect"} 1.0' in \
        gw.gateway.metrics.exposition()

    await eventually(lambda: audit.exists() and audit.read_text().count("\n") >= 1)
    lines = audit.read_text().splitlines()
    assert len(lines) == 1  # the clean request matched nothing and is not audited
    record = json.loads(lines[0])
    assert record["transaction_id"] == request_id
    assert record["client_ip"] == "127.0.0.1"
    assert record["request_line"] == "GET /search?q=so+evil&debug=1 HTTP/1.1"
    assert record["action"] == "detected"
    assert record["mode"] == "detect"
    assert isinstance(record["anomaly_scores"], dict)
    matched = {m["id"]: m for m in record["matched"]}
    assert set(matched) == {10001, 10002}
    evil = matched[10002]
    assert evil["msg"] == "evil argument"
    assert evil["data"] == "ARGS:q=so evil"
    assert evil["severity"] == 2
    assert evil["tags"] == ["attack-test", "test/evil"]
    assert matched[10001]["msg"] == "debug forbidden"


async def test_blocked_request_is_audited_too(waf_gateway: WafGateway,
                                              http: aiohttp.ClientSession,
                                              tmp_path: Path) -> None:
    audit = tmp_path / "audit.log"
    gw = await waf_gateway(mode="block", audit_log=str(audit))
    async with http.get(gw.url + "/?debug=1") as resp:
        assert resp.status == 403
        request_id = resp.headers["X-Request-Id"]
    record = json.loads(audit.read_text())
    assert (record["transaction_id"], record["action"]) == (request_id, "blocked")
    assert [m["id"] for m in record["matched"]] == [10001]


# ---------------------------------------------------------------------------
# Request bodies

BOUNDARY = "bastion-test-boundary"


def multipart(fields: dict[str, str], file: tuple[str, bytes] | None = None) -> bytes:
    out = b""
    for name, value in fields.items():
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    if file is not None:
        filename, data = file
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"upload\"; "
                f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


FORM = "application/x-www-form-urlencoded"
BODIES: list[tuple[str, str, bytes, bytes]] = [
    # (name, content type, body with an attack, clean body)
    ("urlencoded", FORM, b"user=bob&comment=pure+evil%21",
     b"user=bob&comment=" + quote("caf\u00e9 & cr\u00e8me").encode()),
    ("json", "application/json", b'{"user": "bob", "tags": ["a", {"deep": "evil"}]}',
     json.dumps({"user": "bob", "n": [1, 2.5, None, True], "s": "\u00e9"}).encode()),
    ("multipart", f"multipart/form-data; boundary={BOUNDARY}",
     multipart({"user": "bob", "comment": "evil"}),
     multipart({"user": "bob"}, ("photo.bin", bytes(range(256)) * 4))),
]


@pytest.mark.parametrize(("ctype", "attack", "clean"), [b[1:] for b in BODIES],
                         ids=[b[0] for b in BODIES])
async def test_phase2_sees_bodies_and_upstream_gets_them_unchanged(
        waf_gateway: WafGateway, recorder: Upstream, http: aiohttp.ClientSession,
        ctype: str, attack: bytes, clean: bytes) -> None:
    gw = await waf_gateway(mode="block")
    headers = {"Content-Type": ctype}
    async with http.post(gw.url + "/submit", data=attack, headers=headers) as resp:
        assert resp.status == 403
        assert (await resp.json())["rule_ids"] == [10002]
    assert recorder.seen == []
    async with http.post(gw.url + "/submit", data=clean, headers=headers) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer == {"body_bytes": len(clean),
                      "body_sha256": hashlib.sha256(clean).hexdigest()}
    (seen,) = recorder.seen
    assert seen.body == clean
    assert seen.headers["Content-Type"] == ctype


async def test_detect_mode_forwards_the_attack_body_unchanged(
        waf_gateway: WafGateway, recorder: Upstream, http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="detect")
    ctype, body = BODIES[2][1], BODIES[2][2]
    async with http.post(gw.url + "/submit", data=body, headers={"Content-Type": ctype}) as resp:
        assert resp.status == 200
    assert recorder.seen[0].body == body
    await eventually(lambda: metric(gw, "bastion_waf_rule_matches_total",
                                    {"rule_id": "10002"}) == 1)


async def test_body_over_the_limit_is_refused_with_reject(
        waf_gateway: WafGateway, recorder: Upstream, http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block", request_body_limit=64,
                           request_body_overflow="reject")
    async with http.post(gw.url + "/", data=b"a=" + b"x" * 100,
                         headers={"Content-Type": FORM}) as resp:
        assert resp.status == 413
        assert "request_id" in await resp.json()
    async with http.post(gw.url + "/", data=b"a=" + b"x" * 62,
                         headers={"Content-Type": FORM}) as resp:
        assert resp.status == 200  # exactly the limit is fine
    assert len(recorder.seen) == 1


async def test_inspect_prefix_inspects_the_prefix_and_forwards_everything(
        waf_gateway: WafGateway, recorder: Upstream, http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block", request_body_limit=64,
                           request_body_overflow="inspect_prefix")
    padding = b"pad=" + b"x" * 200
    headers = {"Content-Type": FORM}
    async with http.post(gw.url + "/", data=b"a=evil&" + padding, headers=headers) as resp:
        assert resp.status == 403
        assert (await resp.json())["rule_ids"] == [10002]
    assert recorder.seen == []
    past = padding + b"&a=evil"
    async with http.post(gw.url + "/", data=past, headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["body_bytes"] == len(past)
    assert recorder.seen[0].body == past


@pytest.mark.parametrize("ctype", ["application/json", f"multipart/form-data; boundary={BOUNDARY}"],
                         ids=["json", "multipart"])
async def test_inspect_prefix_passes_large_clean_structured_bodies(
        waf_gateway: WafGateway, recorder: Upstream, http: aiohttp.ClientSession,
        ctype: str) -> None:
    gw = await waf_gateway(mode="block", request_body_limit=64,
                           request_body_overflow="inspect_prefix")
    fields = {"user": "bob", "comment": "x" * 500}
    body = json.dumps(fields).encode() if ctype.startswith("application/json") \
        else multipart(fields)
    async with http.post(gw.url + "/", data=body, headers={"Content-Type": ctype}) as resp:
        assert resp.status == 200, await resp.text()
    assert recorder.seen[0].body == body


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
        await asyncio.sleep(0.01)


async def test_chunked_body_is_inspected_whole(waf_gateway: WafGateway, recorder: Upstream,
                                               http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block")
    headers = {"Content-Type": FORM}
    # The attack is split across two chunks: inspecting chunk by chunk would miss it.
    async with http.post(gw.url + "/", data=chunks(b"user=bob&comment=pure+ev", b"il%21"),
                         headers=headers) as resp:
        assert resp.status == 403
        assert (await resp.json())["rule_ids"] == [10002]
    assert recorder.seen == []
    async with http.post(gw.url + "/", data=chunks(b"user=bob&", b"comment=fine"),
                         headers=headers) as resp:
        assert resp.status == 200
    assert recorder.seen[0].body == b"user=bob&comment=fine"


async def test_connection_stays_usable_after_a_refused_body(waf_gateway: WafGateway) -> None:
    gw = await waf_gateway(mode="block")
    connector = aiohttp.TCPConnector(limit=1)  # every request on the same connection
    async with aiohttp.ClientSession(connector=connector) as one:
        for _ in range(3):
            # Refused in phase 1, before the gateway read the body it was sent.
            async with one.post(gw.url + "/?debug=1", data=b"x=" + b"y" * 100_000,
                                headers={"Content-Type": FORM}) as resp:
                assert resp.status == 403
                await resp.read()
            async with one.get(gw.url + "/after") as resp:
                assert resp.status == 200


# ---------------------------------------------------------------------------
# Response bodies


async def test_response_body_inspection_is_off_by_default(
        waf_gateway: WafGateway, http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block")
    async with http.get(gw.url + "/leak") as resp:
        assert resp.status == 200
        assert await resp.read() == LEAK


async def test_response_body_rule_blocks_only_the_configured_mime_types(
        waf_gateway: WafGateway, http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block",
                           response_body={"enabled": True, "mime_types": ["text/html"]})
    async with http.get(gw.url + "/leak") as resp:
        assert resp.status == 403
        body = await resp.json()
    assert body["rule_ids"] == [10004]
    assert b"LEAK-MARKER" not in json.dumps(body).encode()
    async with http.get(gw.url + "/leak?type=application/octet-stream") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["Content-Length"] == str(len(LEAK))  # streamed, not rebuilt
        assert await resp.read() == LEAK


async def test_response_past_the_inspection_limit_is_inspected_as_a_prefix(
        waf_gateway: WafGateway, http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block", response_body={
        "enabled": True, "mime_types": ["text/html"], "limit": LEAK.index(b"LEAK")})
    async with http.get(gw.url + "/leak") as resp:
        assert resp.status == 200  # the marker lies past the inspected prefix
        assert await resp.read() == LEAK


async def test_sse_is_streamed_not_buffered(waf_gateway: WafGateway, recorder: Upstream,
                                            http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block",
                           response_body={"enabled": True, "mime_types": ["text/html"]})
    async with http.get(gw.url + "/sse") as resp:
        assert resp.status == 200
        # The upstream holds the stream open until released: a buffering
        # gateway would deliver nothing until its 10 s timeout.
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), timeout=3)
        assert first == b"data: first LEAK-MARKER\n\n"
        recorder.release_sse.set()
        assert await resp.read() == b"data: last\n\n"


# ---------------------------------------------------------------------------
# Exclusions and paranoia

EXCLUSION_CASES: list[tuple[str, dict[str, Any], str, int]] = [
    # (name, exclusions, path and query, expected status)
    ("no exclusions", {}, "/?q=evil", 403),
    ("by id", {"ids": [10002]}, "/?q=evil", 200),
    ("by id leaves other rules", {"ids": [10002]}, "/?debug=1", 403),
    ("by tag", {"tags": ["attack-test"]}, "/?q=evil", 200),
    ("by tag leaves other tags", {"tags": ["attack-test"]}, "/?debug=1", 403),
    ("target by id", {"targets": [{"id": 10002, "target": "ARGS:q"}]}, "/?q=evil", 200),
    ("target by id leaves other args", {"targets": [{"id": 10002, "target": "ARGS:q"}]},
     "/?other=evil", 403),
]


@pytest.mark.parametrize(("exclusions", "path", "status"), [c[1:] for c in EXCLUSION_CASES],
                         ids=[c[0] for c in EXCLUSION_CASES])
async def test_exclusions(waf_gateway: WafGateway, http: aiohttp.ClientSession,
                          exclusions: dict[str, Any], path: str, status: int) -> None:
    gw = await waf_gateway(mode="block", exclusions=exclusions)
    async with http.get(gw.url + path) as resp:
        assert resp.status == status


async def test_target_exclusion_by_tag(waf_gateway: WafGateway,
                                       http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block", exclusions={
        "targets": [{"tag": "attack-test", "target": "ARGS:q"}]})
    async with http.get(gw.url + "/?q=evil") as resp:
        assert resp.status == 200
    async with http.get(gw.url + "/?other=evil") as resp:
        assert resp.status == 403


async def test_target_exclusion_needs_an_id_or_a_tag(recorder: Upstream) -> None:
    text = yaml.safe_dump(simple_config(recorder.url, plugins={
        "waf": {"exclusions": {"targets": [{"target": "ARGS:q"}]}}}))
    with pytest.raises(ConfigError, match=r"plugins\.waf\.exclusions\.targets"):
        parse_config(text, "gw.yaml")


PARANOID_RULES = """
SecRule TX:BLOCKING_PARANOIA_LEVEL "@lt 2" "id:10020,phase:2,pass,nolog,skipAfter:END-PL2"
SecRule ARGS "@contains suspicious" "id:10021,phase:2,deny,log,msg:'PL2 only'"
SecMarker END-PL2
"""


@pytest.mark.parametrize(("paranoia", "status"), [(1, 200), (2, 403), (4, 403)])
async def test_paranoia_level_comes_from_config(waf_gateway: WafGateway,
                                                http: aiohttp.ClientSession,
                                                paranoia: int, status: int) -> None:
    gw = await waf_gateway(mode="block", paranoia=paranoia, directives=PARANOID_RULES)
    async with http.get(gw.url + "/?q=suspicious") as resp:
        assert resp.status == status


async def test_paranoia_is_validated(recorder: Upstream) -> None:
    text = yaml.safe_dump(simple_config(recorder.url, plugins={"waf": {"paranoia": 5}}))
    with pytest.raises(ConfigError) as info:
        parse_config(text, "gw.yaml")
    assert "plugins.waf.paranoia" in str(info.value)


# ---------------------------------------------------------------------------
# The OWASP CRS

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate, br",
    "Cookie": "session=3f2a9c1b; theme=dark",
    "Referer": "https://shop.example.com/catalog",
}


@needs_crs
async def test_crs_at_paranoia_1_blocks_attacks_and_passes_browsers(
        waf_gateway: WafGateway, recorder: Upstream, http: aiohttp.ClientSession) -> None:
    gw = await waf_gateway(mode="block", crs=str(CRS), paranoia=1, directives="")
    sqli = "/products?q=" + quote("1' or 1=1--", safe="")
    async with http.get(encoded(gw.url, sqli), headers=BROWSER) as resp:
        assert resp.status == 403
        sqli_ids = (await resp.json())["rule_ids"]
    assert 942100 in sqli_ids
    assert 949110 in sqli_ids  # the inbound anomaly score is what blocked it
    xss = "/search?q=" + quote("<script>alert(1)</script>", safe="")
    async with http.get(encoded(gw.url, xss), headers=BROWSER) as resp:
        assert resp.status == 403
        xss_ids = (await resp.json())["rule_ids"]
    assert any(941000 <= i < 942000 for i in xss_ids), xss_ids
    assert recorder.seen == []

    async with http.get(gw.url + "/products?page=2&sort=price", headers=BROWSER) as resp:
        assert resp.status == 200
    form = {"email": "jane.doe@example.com", "name": "Jane O'Neil",
            "message": "Hello, I'd like to order 2 items. Thanks!"}
    async with http.post(gw.url + "/contact", data=form, headers=BROWSER) as resp:
        assert resp.status == 200
    assert [s.method for s in recorder.seen] == ["GET", "POST"]


@needs_crs
@pytest.mark.parametrize(("paranoia", "hits"), [(1, 0), (2, 1)])
async def test_crs_paranoia_level_comes_from_config(waf_gateway: WafGateway,
                                                    http: aiohttp.ClientSession,
                                                    paranoia: int, hits: int) -> None:
    # 920230 (multiple URL encoding) is a paranoia level 2 rule.
    gw = await waf_gateway(mode="detect", crs=str(CRS), paranoia=paranoia, directives="")
    async with http.get(encoded(gw.url, "/?q=%2541"), headers=BROWSER) as resp:
        assert resp.status == 200

    def decided() -> bool:
        return sum(metric(gw, "bastion_waf_decisions_total", {"mode": "detect", "action": a})
                   for a in ("passed", "detected")) == 1

    await eventually(decided)
    assert metric(gw, "bastion_waf_rule_matches_total", {"rule_id": "920230"}) == hits


# ---------------------------------------------------------------------------
# Config errors


async def build(text: str, source: str = "gateway.yaml", base_dir: Path | None = None) -> None:
    """Validate and build a config the way ``bastion check`` does."""
    loaded = parse_config(text, source, base_dir)
    runtime = await build_runtime(loaded, Metrics(), builtin_echo_url="http://127.0.0.1:9",
                                  start=False)
    await runtime.close()


def route_waf_config(waf: dict[str, Any]) -> str:
    config = simple_config("http://127.0.0.1:9")
    config["routes"][0]["plugins"] = {"waf": waf}
    return yaml.safe_dump(config, sort_keys=False)


async def test_bad_rule_file_names_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "mine.conf"
    rules.write_text('SecRule ARGS "@rx ok" "id:1,phase:2,pass"\n\n'
                     'SecRule ARGS "@nosuchop x" "id:2,phase:2,pass"\n')
    with pytest.raises(ConfigError) as info:
        await build(route_waf_config({"rules": ["*.conf"]}), base_dir=tmp_path)
    (issue,) = info.value.issues
    assert f"{rules}:3:" in issue.message
    assert "unknown operator" in issue.message
    assert issue.path == "routes[0].plugins.waf"
    assert issue.line is not None


@pytest.mark.parametrize(("directives", "where", "message"), [
    ('SecRule ARGS "@rx ok" "id:1,phase:2,pass"\nSecRule ARGS "@rx (" "id:2"\n',
     "<directives>:2:", "invalid pattern"),
    ('SecAction "id:1,phase:1,pass"\nSecAction "id:1,phase:1,pass"\n',
     "<directives>:2:", "duplicate rule id"),
    ('SecRule ARGS "@rx x" "id:1,phase:2,nosuchaction"\n', "<directives>:1:", "unknown action"),
])
async def test_bad_inline_directive_names_its_line(directives: str, where: str,
                                                   message: str) -> None:
    with pytest.raises(ConfigError) as info:
        await build(route_waf_config({"directives": directives}))
    (issue,) = info.value.issues
    assert where in issue.message
    assert message in issue.message


async def test_rules_glob_matching_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        await build(route_waf_config({"rules": ["nope/*.conf"]}), base_dir=tmp_path)
    assert "nothing matches 'nope/*.conf'" in str(info.value)


async def test_bad_directive_in_global_waf_names_the_yaml_line() -> None:
    text = yaml.safe_dump(simple_config("http://127.0.0.1:9", plugins={
        "waf": {"directives": 'SecRule ARGS "@rx (" "id:2"\n'}}), sort_keys=False)
    with pytest.raises(ConfigError) as info:
        await build(text)
    (issue,) = info.value.issues
    assert issue.path == "plugins.waf"
    assert issue.line == text.splitlines().index("  waf:") + 1


async def test_gateway_refuses_to_start_on_a_bad_rule(tmp_path: Path) -> None:
    (tmp_path / "bad.conf").write_text('SecRule ARGS "@rx x"\n')
    loaded = parse_config(route_waf_config({"rules": [str(tmp_path / "bad.conf")]}),
                          "gateway.yaml")
    with pytest.raises(ConfigError, match=r"bad\.conf:1:"):
        await Gateway(loaded).start()


def bastion_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy.cli", "check", "-c", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_bastion_check_reports_a_bad_rule_file(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "app.conf").write_text(
        "# my rules\n" 'SecRule ARGS "@rx x" "id:1,phase:2,pass,log"\n'
        'SecRule ARGS "@rx y" "id:1,phase:2,pass,log"\n')
    config = tmp_path / "gateway.yaml"
    config.write_text(route_waf_config({"rules": ["rules/*.conf"]}))
    result = bastion_check(config)
    assert result.returncode == 2, result.stderr
    assert f"{tmp_path / 'rules' / 'app.conf'}:3: SecRule: duplicate rule id 1" in result.stderr
    assert str(config) in result.stderr


@needs_crs
def test_bastion_check_accepts_a_crs_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(simple_config("http://127.0.0.1:9", plugins={
        "waf": {"mode": "block", "paranoia": 2, "crs": str(CRS),
                "exclusions": {"ids": [920350], "tags": ["attack-xss"],
                               "targets": [{"id": 942100, "target": "ARGS:search"}]}}})))
    result = bastion_check(config)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "waf" in result.stdout


async def test_phase_4_runs_when_the_body_is_not_inspected(
        gateway: Callable[..., Awaitable[InProcessGateway]],
        upstream: Callable[..., Awaitable[str]], http: aiohttp.ClientSession) -> None:
    config = simple_config(await upstream())
    config["plugins"] = {"waf": {"directives": (
        'SecRule RESPONSE_STATUS "@eq 200" "id:4001,phase:4,deny,status:403"')}}
    gw = await gateway(config)
    async with http.get(gw.url + "/") as resp:
        assert resp.status == 403
        assert (await resp.json())["rule_ids"] == [4001]


async def test_sec_request_body_limit_refuses_with_413(
        gateway: Callable[..., Awaitable[InProcessGateway]],
        upstream: Callable[..., Awaitable[str]], http: aiohttp.ClientSession) -> None:
    config = simple_config(await upstream())
    config["plugins"] = {"waf": {"directives": "SecRequestBodyLimit 100"}}
    gw = await gateway(config)
    async with http.post(gw.url + "/", data=b"a=" + b"x" * 200,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 413
        body = await resp.json()
        assert "SecRequestBodyLimit" in body["error"] and "rule_ids" not in body
    async with http.post(gw.url + "/", data=b"a=small",
                         headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 200
