"""The ``cc-protection`` plugin end to end: a client, the in-process gateway, a real Redis.

The gateway trusts 127.0.0.1 as a proxy, so each test picks its client
addresses with ``X-Forwarded-For``; every test has its own Redis key prefix.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web
from multidict import CIMultiDictProxy

from proxy.config import ConfigError, parse_config
from tests.conftest import InProcessGateway, simple_config
from waf.cc import CookieSigner, proof_ok, solve_challenge

SECRET = "cc-test-secret-0123456789"
OLD_SECRET = "cc-old-secret-9876543210"
UA = "Mozilla/5.0 (X11; Linux x86_64) test-browser/1.0"

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]


@dataclass
class Upstream:
    url: str = ""
    # The Cookie header of every request that reached the upstream.
    cookies: list[str] = field(default_factory=list)


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def cookie(self, name: str) -> str | None:
        """The value this reply sets for cookie ``name`` (None when it sets none)."""
        for header in self.headers.getall("Set-Cookie", ()):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            if name in jar:
                return jar[name].value
        return None


@pytest.fixture
async def recorder(upstream: UpstreamFactory) -> Upstream:
    up = Upstream()

    async def handle(request: web.Request) -> web.Response:
        up.cookies.append(request.headers.get("Cookie", ""))
        return web.Response(text="hello from upstream")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    up.url = await upstream(app)
    return up


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """No cookie jar: each test says exactly which cookies a request carries."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture
async def rdb(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    yield r
    await r.aclose()


CcGateway = Callable[..., Awaitable[InProcessGateway]]


@pytest.fixture
def cc(gateway: GatewayFactory, recorder: Upstream, redis_url: str,
       redis_prefix: str) -> CcGateway:
    """``await cc(rules=[...], ...)``: the recorder behind a global cc-protection on Redis."""

    async def start(*, top: dict[str, Any] | None = None, **plugin: Any) -> InProcessGateway:
        plugin.setdefault("secrets", [SECRET])
        config = simple_config(recorder.url, plugins={"cc-protection": plugin},
                               store={"type": "redis", "url": redis_url,
                                      "prefix": redis_prefix},
                               trusted_proxies=["127.0.0.1/32"])
        config.update(top or {})
        return await gateway(config)

    return start


async def get(client: aiohttp.ClientSession, gw: InProcessGateway, ip: str | None,
              path: str = "/", cookies: dict[str, str] | None = None, ua: str = UA,
              method: str = "GET") -> Reply:
    headers = {"User-Agent": ua}
    if ip is not None:
        headers["X-Forwarded-For"] = ip
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    async with client.request(method, gw.url + path, headers=headers) as resp:
        return Reply(resp.status, resp.headers, await resp.read())


async def ban_record(rdb: aioredis.Redis, key: str) -> bytes:
    data = await rdb.get(key)
    assert isinstance(data, bytes), f"no ban under {key}"
    return data


def metric(gw: InProcessGateway, name: str, labels: dict[str, str]) -> float:
    gw.gateway.metrics.flush()
    return gw.gateway.metrics.registry.get_sample_value(name, labels) or 0.0


def rule(name: str = "site", requests: int = 5, window: str = "2s", ban: str = "1s",
         **extra: Any) -> dict[str, Any]:
    return {"name": name, "requests": requests, "window": window, "ban": ban, **extra}


def challenge_of(reply: Reply) -> tuple[str, int]:
    """The token and difficulty the challenge page embeds."""
    assert reply.status == 403, reply.text
    assert reply.headers["X-Bastion-CC"] == "challenge"
    assert reply.headers["Content-Type"].startswith("text/html")
    m = re.search(r'var T="([^"]+)",B=(\d+)', reply.text)
    assert m is not None, reply.text
    return m.group(1), int(m.group(2))


# ---------------------------------------------------------------------------
# Per-IP flood ban


async def test_flood_is_banned_for_the_ban_duration_then_admitted_again(
        cc: CcGateway, client: aiohttp.ClientSession, rdb: aioredis.Redis,
        redis_prefix: str, recorder: Upstream) -> None:
    gw = await cc(rules=[rule(requests=5, window="2s", ban="1s")])
    ip = "198.51.100.7"
    assert [(await get(client, gw, ip)).status for _ in range(5)] == [200] * 5
    refused = await get(client, gw, ip)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert json.loads(refused.body)["error"].startswith("too many requests")
    ttl = await rdb.pttl(f"{redis_prefix}cc:ban:ip:{ip}")
    assert 0 < ttl <= 1000
    record = json.loads(await ban_record(rdb, f"{redis_prefix}cc:ban:ip:{ip}"))
    assert record["rule"] == "site" and record["action"] == "deny"
    assert "more than 5 requests in 2s" in record["reason"]
    # Banned: refused without being counted, and the upstream sees none of it.
    assert [(await get(client, gw, ip)).status for _ in range(3)] == [429] * 3
    assert len(recorder.cookies) == 5
    assert (await get(client, gw, "198.51.100.8")).status == 200  # someone else

    deadline = time.monotonic() + 3
    while (await get(client, gw, ip)).status == 429:
        assert time.monotonic() < deadline, "still banned long after the ban's 1 s"
        await asyncio.sleep(0.05)
    # The ban started the count afresh: a whole allowance again, then the next ban.
    assert [(await get(client, gw, ip)).status for _ in range(4)] == [200] * 4
    assert (await get(client, gw, ip)).status == 429
    assert metric(gw, "bastion_cc_bans_total", {"type": "ip", "cause": "rule"}) == 2
    assert metric(gw, "bastion_cc_decisions_total", {"action": "banned"}) >= 5
    assert metric(gw, "bastion_cc_decisions_total", {"action": "allowed"}) == 11


async def test_rules_match_by_path_method_and_host(cc: CcGateway,
                                                  client: aiohttp.ClientSession) -> None:
    gw = await cc(rules=[
        rule("site", requests=100, window="10s", ban="10s"),
        rule("login", requests=2, window="10s", ban="10s",
             match={"path_prefix": "/login", "methods": ["POST"]}),
        rule("api", requests=1, window="10s", ban="10s", match={"hosts": ["*.api.test"]}),
    ])
    ip = "198.51.100.20"
    for _ in range(5):  # GETs of /login and other paths are only under "site"
        assert (await get(client, gw, ip, "/login")).status == 200
    assert (await get(client, gw, ip, "/login", method="POST")).status == 200
    assert (await get(client, gw, ip, "/login/x", method="POST")).status == 200
    refused = await get(client, gw, ip, "/login", method="POST")
    assert refused.status == 429
    # A ban covers every request the plugin sees, not just the rule's.
    assert (await get(client, gw, ip, "/elsewhere")).status == 429

    other = "198.51.100.21"
    async with client.get(gw.url + "/", headers={"X-Forwarded-For": other,
                                                 "Host": "eu.api.test:8080"}) as resp:
        assert resp.status == 200
    async with client.get(gw.url + "/", headers={"X-Forwarded-For": other,
                                                 "Host": "eu.api.test"}) as resp:
        assert resp.status == 429


async def test_ipv6_clients_are_counted_and_banned_per_64(
        cc: CcGateway, client: aiohttp.ClientSession, rdb: aioredis.Redis,
        redis_prefix: str) -> None:
    gw = await cc(rules=[rule(requests=3, window="10s", ban="10s")])
    for ip in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"):
        assert (await get(client, gw, ip)).status == 200
    assert (await get(client, gw, "2001:db8:1:2::77")).status == 429
    assert await rdb.exists(f"{redis_prefix}cc:ban:ip:2001:db8:1:2::/64")
    assert (await get(client, gw, "2001:db8:1:3::1")).status == 200


async def test_deny_response_is_configurable(cc: CcGateway,
                                             client: aiohttp.ClientSession) -> None:
    gw = await cc(rules=[rule(requests=1, window="10s", ban="5s")],
                  response={"status": 503, "body": "<h1>slow down</h1>",
                            "content_type": "text/html"})
    ip = "198.51.100.30"
    assert (await get(client, gw, ip)).status == 200
    refused = await get(client, gw, ip)
    assert refused.status == 503
    assert refused.text == "<h1>slow down</h1>"
    assert refused.headers["Content-Type"] == "text/html"
    assert 4 <= int(refused.headers["Retry-After"]) <= 5


# ---------------------------------------------------------------------------
# Allow and deny lists, client IP


async def test_allow_list_is_never_counted_and_deny_list_always_refused(
        cc: CcGateway, client: aiohttp.ClientSession, rdb: aioredis.Redis,
        redis_prefix: str) -> None:
    gw = await cc(rules=[rule(requests=2, window="10s", ban="10s")],
                  allow=["10.1.0.0/16", "2001:db8:aaaa::/48"],
                  deny=["10.2.0.0/16", "2001:db8:bad::/48"])
    for ip in ("10.1.2.3", "2001:db8:aaaa::1"):
        assert [(await get(client, gw, ip)).status for _ in range(6)] == [200] * 6
        assert not await rdb.exists(f"{redis_prefix}cc:ban:ip:{ip}")
    for ip in ("10.2.0.9", "2001:db8:bad::1", "::ffff:10.2.3.4"):
        refused = await get(client, gw, ip)
        assert refused.status == 403
        assert "denied" in json.loads(refused.body)["error"]
    assert metric(gw, "bastion_cc_decisions_total", {"action": "allow-listed"}) == 12
    assert metric(gw, "bastion_cc_decisions_total", {"action": "denied-by-list"}) == 3
    assert [(await get(client, gw, "10.3.0.1")).status for _ in range(3)] == [200, 200, 429]


async def test_spoofed_x_forwarded_for_from_an_untrusted_peer_changes_nothing(
        cc: CcGateway, client: aiohttp.ClientSession) -> None:
    # 127.0.0.1 is not a trusted proxy here: the client is the socket peer.
    gw = await cc(rules=[rule(requests=3, window="10s", ban="10s")], allow=["203.0.113.0/24"],
                  top={"trusted_proxies": ["10.0.0.0/8"]})
    assert [(await get(client, gw, None)).status for _ in range(3)] == [200] * 3
    assert (await get(client, gw, None)).status == 429
    for spoof in ("203.0.113.50", "198.51.100.1", "10.0.0.1, 203.0.113.9"):
        assert (await get(client, gw, spoof)).status == 429


# ---------------------------------------------------------------------------
# The gateway's session cookie


COOKIE_RULE = rule("sessions", by="cookie", requests=3, window="10s", ban="10s")


async def test_cookie_is_issued_signed_and_counted_per_cookie(
        cc: CcGateway, client: aiohttp.ClientSession, rdb: aioredis.Redis,
        redis_prefix: str, recorder: Upstream) -> None:
    gw = await cc(rules=[COOKIE_RULE], cookie={"issue_limit": 2, "issue_window": "10s",
                                               "issue_ban": "10s"})
    ip = "198.51.100.40"
    first = await get(client, gw, ip)
    assert first.status == 200
    value = first.cookie("bastion_cc")
    assert value is not None and re.fullmatch(r"v1\.\d+\.[\w-]{22}\.i\.[\w-]{43}", value)
    header = first.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header
    cookie = {"bastion_cc": value}
    # Counted under the cookie now, not the IP: the first request was the IP's.
    for _ in range(3):
        again = await get(client, gw, ip, cookies={**cookie, "app": "1"})
        assert again.status == 200 and again.cookie("bastion_cc") is None
    # The gateway's cookie never reaches the upstream; the application's do.
    assert recorder.cookies[-1] == "app=1"
    assert (await get(client, gw, ip, cookies=cookie)).status == 429
    sid = value.split(".")[2]
    assert await rdb.exists(f"{redis_prefix}cc:ban:cookie:{sid}")
    # Another browser behind the same address gets its own cookie and allowance.
    second = await get(client, gw, ip)
    assert second.status == 200
    other = {"bastion_cc": second.cookie("bastion_cc") or ""}
    assert (await get(client, gw, ip, cookies=other)).status == 200
    # The IP has had its two new cookies in this window: a third client gets
    # none, and the address is banned.
    third = await get(client, gw, ip)
    assert third.status == 429 and third.cookie("bastion_cc") is None
    assert await rdb.exists(f"{redis_prefix}cc:ban:ip:{ip}")
    record = json.loads(await ban_record(rdb, f"{redis_prefix}cc:ban:ip:{ip}"))
    assert record["rule"] == "~issue" and "new cookies" in record["reason"]
    assert (await get(client, gw, ip, cookies=other)).status == 429
    assert metric(gw, "bastion_cc_cookies_issued_total", {"via": "transparent"}) == 2
    assert metric(gw, "bastion_cc_bans_total", {"type": "cookie", "cause": "rule"}) == 1
    assert metric(gw, "bastion_cc_bans_total", {"type": "ip", "cause": "issuance"}) == 1


def forged(i: int) -> str:
    return f"v1.{int(time.time())}.{'A' * 21}{'ABCDEFGHIJ'[i % 10]}.i.{'x' * 43}"


async def test_rotating_cookies_does_not_escape_the_limit(
        cc: CcGateway, client: aiohttp.ClientSession) -> None:
    gw = await cc(rules=[COOKIE_RULE], cookie={"issue_limit": 100})
    ip = "198.51.100.41"
    # A fresh forged (or garbage, or missing) cookie every time: each one is
    # counted against the IP, whatever it says.
    jars: list[dict[str, str] | None] = [{"bastion_cc": forged(0)}, {"bastion_cc": "garbage"},
                                         None, {"bastion_cc": forged(1)}, None]
    statuses = [(await get(client, gw, ip, cookies=jar)).status for jar in jars]
    assert statuses == [200, 200, 200, 429, 429]


async def test_no_new_cookies_past_the_issuance_cap(
        cc: CcGateway, client: aiohttp.ClientSession, rdb: aioredis.Redis,
        redis_prefix: str) -> None:
    gw = await cc(rules=[rule("sessions", by="cookie", requests=100, window="10s", ban="10s")],
                  cookie={"issue_limit": 3, "issue_window": "10s", "issue_ban": 0})
    ip = "198.51.100.42"
    issued = []
    for i in range(5):
        reply = await get(client, gw, ip, cookies={"bastion_cc": forged(i)})
        issued.append((reply.status, reply.cookie("bastion_cc") is not None))
    assert issued == [(200, True)] * 3 + [(429, False)] * 2
    # issue_ban: 0 refuses new cookies without banning: the cookies already out still work.
    assert not await rdb.exists(f"{redis_prefix}cc:ban:ip:{ip}")
    assert metric(gw, "bastion_cc_decisions_total", {"action": "limited"}) == 2


async def test_cookie_is_bound_to_the_network_and_user_agent(
        cc: CcGateway, client: aiohttp.ClientSession) -> None:
    gw = await cc(rules=[rule("sessions", by="cookie", requests=100, window="10s",
                              ban="10s")])
    value = (await get(client, gw, "198.51.100.50")).cookie("bastion_cc")
    assert value is not None
    jar = {"bastion_cc": value}
    # Same /24 and browser: accepted (no new cookie).
    assert (await get(client, gw, "198.51.100.51", cookies=jar)).cookie("bastion_cc") is None
    # Another network, or another User-Agent: not this cookie's client, so a new one.
    assert (await get(client, gw, "203.0.113.50", cookies=jar)).cookie("bastion_cc")
    assert (await get(client, gw, "198.51.100.50", cookies=jar,
                      ua="curl/8.0")).cookie("bastion_cc")
    # A cookie signed with the old secret still verifies while that secret is listed.
    gw2 = await cc(rules=[rule("sessions", by="cookie", requests=100, window="10s",
                               ban="10s")], secrets=[OLD_SECRET])
    old = (await get(client, gw2, "198.51.100.50")).cookie("bastion_cc")
    assert old is not None
    gw3 = await cc(rules=[rule("sessions", by="cookie", requests=100, window="10s",
                               ban="10s")], secrets=[SECRET, OLD_SECRET])
    assert (await get(client, gw3, "198.51.100.50",
                      cookies={"bastion_cc": old})).cookie("bastion_cc") is None
    assert (await get(client, gw, "198.51.100.50",
                      cookies={"bastion_cc": old})).cookie("bastion_cc") is not None


async def test_secure_cookie_behind_an_https_proxy(
        cc: CcGateway, client: aiohttp.ClientSession) -> None:
    gw = await cc(rules=[rule("sessions", by="cookie", requests=100, window="10s",
                              ban="10s")])
    async with client.get(gw.url + "/", headers={"X-Forwarded-For": "198.51.100.60",
                                                 "X-Forwarded-Proto": "https"}) as resp:
        assert resp.status == 200
        assert "; Secure" in resp.headers["Set-Cookie"]


# ---------------------------------------------------------------------------
# The challenge


CHALLENGE_RULE = rule("pages", by="cookie", action="challenge", requests=20, window="10s",
                      ban="10s")


async def test_browser_passes_the_challenge_and_is_counted_by_its_cookie(
        cc: CcGateway, client: aiohttp.ClientSession, recorder: Upstream) -> None:
    gw = await cc(rules=[CHALLENGE_RULE], challenge={"difficulty": 8})
    ip = "198.51.100.70"
    page = await get(client, gw, ip)
    token, bits = challenge_of(page)
    assert bits == 8
    assert page.headers["Cache-Control"].startswith("no-store")
    assert recorder.cookies == []  # the upstream saw nothing
    proof = solve_challenge(token, bits)
    assert proof_ok(token, proof.rsplit(".", 1)[1], bits)

    passed = await get(client, gw, ip, cookies={"bastion_cc_proof": proof})
    assert passed.status == 200 and passed.text == "hello from upstream"
    session = passed.cookie("bastion_cc")
    assert session is not None and session.split(".")[3] == "c"
    assert passed.cookie("bastion_cc_proof") == ""  # the proof cookie is cleared
    jar = {"bastion_cc": session}
    for _ in range(3):
        reply = await get(client, gw, ip, cookies=jar)
        assert reply.status == 200 and reply.cookie("bastion_cc") is None
    # The proof is single-use: replayed without the session it earns nothing.
    token2, _ = challenge_of(await get(client, gw, ip, cookies={"bastion_cc_proof": proof}))
    assert token2 != token
    # ... and it was bound to the client: another network cannot use a fresh one.
    proof2 = solve_challenge(token2, bits)
    challenge_of(await get(client, gw, "203.0.113.70", cookies={"bastion_cc_proof": proof2}))
    challenge_of(await get(client, gw, ip, cookies={"bastion_cc_proof": proof2},
                           ua="python-requests/2.31"))
    assert metric(gw, "bastion_cc_cookies_issued_total", {"via": "challenge"}) == 1
    assert metric(gw, "bastion_cc_decisions_total", {"action": "challenged"}) == 4


async def test_a_silently_issued_cookie_does_not_pass_the_challenge(
        cc: CcGateway, client: aiohttp.ClientSession) -> None:
    gw = await cc(rules=[
        rule("api", by="cookie", requests=50, window="10s", ban="10s",
             match={"path_prefix": "/api/"}),
        {**CHALLENGE_RULE, "match": {"path_prefix": "/app/"}},
    ], challenge={"difficulty": 2})
    ip = "198.51.100.74"
    issued = (await get(client, gw, ip, "/api/x")).cookie("bastion_cc")
    assert issued is not None and issued.split(".")[3] == "i"
    token, bits = challenge_of(await get(client, gw, ip, "/app/", cookies={"bastion_cc": issued}))
    passed = await get(client, gw, ip, "/app/",
                       cookies={"bastion_cc": issued,
                                "bastion_cc_proof": solve_challenge(token, bits)})
    assert passed.status == 200
    earned = passed.cookie("bastion_cc")
    assert earned is not None and earned.split(".")[3] == "c"
    # The earned one serves both.
    assert (await get(client, gw, ip, "/app/", cookies={"bastion_cc": earned})).status == 200
    api = await get(client, gw, ip, "/api/y", cookies={"bastion_cc": earned})
    assert api.status == 200 and api.cookie("bastion_cc") is None


async def test_the_challenge_pages_own_javascript_passes(
        cc: CcGateway, client: aiohttp.ClientSession, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    gw = await cc(rules=[CHALLENGE_RULE], challenge={"difficulty": 10})
    ip = "198.51.100.71"
    page = await get(client, gw, ip)
    challenge_of(page)
    m = re.search(r"<script>(.*)</script>", page.text, re.S)
    assert m is not None
    # A minimal browser: document.cookie records what the script sets, reload() reports it.
    harness = tmp_path / "browser.js"
    harness.write_text(
        "let jar = null;\n"
        "globalThis.document = {set cookie(v) { jar = v; }, get cookie() { return ''; }};\n"
        "globalThis.location = {protocol: 'http:', reload() {"
        " console.log(JSON.stringify(jar)); }};\n" + m.group(1))
    proc = await asyncio.create_subprocess_exec(node, str(harness),
                                                stdout=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    set_cookie = json.loads(stdout)
    name_value = set_cookie.split(";")[0]
    assert "Max-Age=30" in set_cookie and "SameSite=Lax" in set_cookie
    name, _, value = name_value.partition("=")
    assert name == "bastion_cc_proof"
    passed = await get(client, gw, ip, cookies={name: value})
    assert passed.status == 200
    assert passed.cookie("bastion_cc")


async def test_a_client_ignoring_the_challenge_is_banned(
        cc: CcGateway, client: aiohttp.ClientSession, rdb: aioredis.Redis,
        redis_prefix: str) -> None:
    gw = await cc(rules=[CHALLENGE_RULE],
                  cookie={"issue_limit": 3, "issue_window": "10s", "issue_ban": "10s"})
    ip = "198.51.100.72"
    for _ in range(3):
        challenge_of(await get(client, gw, ip))
    # A forged proof is no better than none.
    refused = await get(client, gw, ip, cookies={"bastion_cc_proof": "c1.1.x.8.y.1"})
    assert refused.status == 429
    assert await rdb.exists(f"{redis_prefix}cc:ban:ip:{ip}")
    assert (await get(client, gw, ip)).status == 429


async def test_ip_rule_with_challenge_lets_browsers_through_a_flood_ban(
        cc: CcGateway, client: aiohttp.ClientSession, rdb: aioredis.Redis,
        redis_prefix: str) -> None:
    gw = await cc(rules=[rule("site", requests=3, window="10s", ban="10s",
                              action="challenge")], challenge={"difficulty": 4})
    ip = "198.51.100.73"
    assert [(await get(client, gw, ip)).status for _ in range(3)] == [200] * 3
    token, bits = challenge_of(await get(client, gw, ip))
    record = json.loads(await ban_record(rdb, f"{redis_prefix}cc:ban:ip:{ip}"))
    assert record["action"] == "challenge"
    # Every client behind the address is challenged now; one that solves it
    # gets through, counted under its own cookie from then on.
    passed = await get(client, gw, ip, cookies={"bastion_cc_proof": solve_challenge(token,
                                                                                    bits)})
    assert passed.status == 200
    jar = {"bastion_cc": passed.cookie("bastion_cc") or ""}
    assert [(await get(client, gw, ip, cookies=jar)).status for _ in range(2)] == [200] * 2
    challenge_of(await get(client, gw, ip))  # a neighbour without the cookie
    # A solved browser that floods anyway: its cookie is banned and refused.
    assert (await get(client, gw, ip, cookies=jar)).status == 429
    assert (await get(client, gw, ip, cookies=jar)).status == 429


# ---------------------------------------------------------------------------
# Secrets stay secret


async def test_logs_never_carry_cookie_macs(cc: CcGateway, client: aiohttp.ClientSession,
                                           tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    log_file = tmp_path / "access.log"
    gw = await cc(rules=[rule("sessions", by="cookie", requests=1, window="10s", ban="10s")],
                  top={"access_log": {"enabled": True, "path": str(log_file)}})
    ip = "198.51.100.80"
    value = (await get(client, gw, ip)).cookie("bastion_cc")
    assert value is not None
    assert (await get(client, gw, ip, cookies={"bastion_cc": value})).status == 200
    assert (await get(client, gw, ip, cookies={"bastion_cc": value})).status == 429
    await gw.gateway.stop()
    logged = log_file.read_text() + caplog.text
    assert "cc-protection" in logged and "banned" in logged
    mac = value.rsplit(".", 1)[1]
    assert mac not in logged and value not in logged and SECRET not in logged
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    decisions = [d for r in records for d in r.get("decisions", [])]
    assert any(d.get("action") == "banned" and d.get("by") == "cookie" for d in decisions)


# ---------------------------------------------------------------------------
# Signing, config


def test_signer_refuses_tampered_expired_and_foreign_values() -> None:
    signer = CookieSigner([SECRET.encode()])
    now = time.time()
    value, sid = signer.session("198.51.100.0/24|ua", "i", now)
    ok = signer.verify_session(value, "198.51.100.0/24|ua", now, 60)
    assert ok is not None and ok.sid == sid and ok.kind == "i"
    parts = value.split(".")
    flipped = "A" if parts[4][0] != "A" else "B"
    for bad in (
        ".".join([*parts[:4], flipped + parts[4][1:]]),      # MAC
        ".".join([*parts[:3], "c", parts[4]]),               # kind
        ".".join([parts[0], str(int(parts[1]) + 1), *parts[2:]]),  # timestamp
        value + "x", "v2" + value[2:], "", "v1....", value + "." + "0" * 200,
    ):
        assert signer.verify_session(bad, "198.51.100.0/24|ua", now, 60) is None, bad
    assert signer.verify_session(value, "203.0.113.0/24|ua", now, 60) is None
    assert signer.verify_session(value, "198.51.100.0/24|ua", now + 61, 60) is None
    future, _ = signer.session("b", "i", now + 3600)
    assert signer.verify_session(future, "b", now, 7200) is None
    # Rotation: a new first key signs, the old one still verifies until removed.
    rotated = CookieSigner([b"new-secret-0123456789", SECRET.encode()])
    assert rotated.verify_session(value, "198.51.100.0/24|ua", now, 60) is not None
    assert CookieSigner([b"new-secret-0123456789"]).verify_session(
        value, "198.51.100.0/24|ua", now, 60) is None


def test_proof_needs_the_work_a_fresh_token_and_the_difficulty() -> None:
    signer = CookieSigner([SECRET.encode()])
    now = time.time()
    token = signer.challenge_token("b", 8, now)
    proof = solve_challenge(token, 8)
    assert signer.verify_proof(proof, "b", now, 30, 8) is not None
    nonce = int(proof.rsplit(".", 1)[1])
    wrong = next(n for n in range(nonce + 1, nonce + 10_000) if not proof_ok(token, n, 8))
    assert signer.verify_proof(f"{token}.{wrong}", "b", now, 30, 8) is None
    assert signer.verify_proof(proof, "b", now + 31, 30, 8) is None  # stale token
    assert signer.verify_proof(proof, "b", now, 30, 9) is None  # easier than required
    assert signer.verify_proof(proof, "other", now, 30, 8) is None
    session, _ = signer.session("b", "c", now)
    assert signer.verify_proof(session + ".1", "b", now, 30, 0) is None


@pytest.mark.parametrize(("plugin", "message"), [
    ({"rules": [rule(by="cookie")], "secrets": []}, "need `secrets`"),
    ({"rules": [rule(action="challenge")], "secrets": []}, "need `secrets`"),
    ({"rules": [rule()], "secrets": ["short"]}, "at least 16"),
    ({"rules": [rule(), rule()]}, "duplicate rule names: site"),
    ({"rules": [rule(window="0s")]}, "more than 0"),
    ({"rules": [rule()], "deny": ["not-a-network"]}, "does not appear to be"),
    ({"rules": [rule(match={"path_regex": "("})]}, "bad regex"),
    ({"cookie": {"name": "x"}, "challenge": {"cookie_name": "x"}}, "must differ"),
])
def test_config_is_checked(plugin: dict[str, Any], message: str) -> None:
    config = simple_config("http://127.0.0.1:1", plugins={"cc-protection": plugin})
    with pytest.raises(ConfigError) as exc:
        parse_config(yaml.safe_dump(config), "<test>")
    assert message in str(exc.value)


@pytest.mark.parametrize("plugin", [True, {}, {"rules": [rule()], "allow": ["10.0.0.1"]}])
def test_minimal_configs_load(plugin: Any) -> None:
    config = simple_config("http://127.0.0.1:1", plugins={"cc-protection": plugin})
    parse_config(yaml.safe_dump(config), "<test>")


def test_secrets_come_from_the_environment_and_are_redacted() -> None:
    config = simple_config("http://127.0.0.1:1", plugins={"cc-protection": {
        "secrets": ["${CC_TEST_SECRET}"], "rules": [rule(by="cookie")]}})
    loaded = parse_config(yaml.safe_dump(config), "<test>",
                          env={"CC_TEST_SECRET": "from-the-environment-123"})
    from proxy.admin import redacted_config
    assert "from-the-environment-123" not in json.dumps(redacted_config(loaded))
