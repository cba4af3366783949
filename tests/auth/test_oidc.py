"""oidc against a real OpenID provider (pytest-iam's Canaille), over real sockets.

The provider runs in a thread of this process (pytest-iam's session fixture,
a blocking WSGI server); the gateway and the test's client run on the test's
event loop. The gateway only talks to the provider over sockets, so the two
never wait on each other.

``Browser`` plays the browser: it keeps cookies per host (honouring Path,
Max-Age=0) and never follows redirects, so every hop is checked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest
import yaml
from multidict import CIMultiDictProxy
from pytest_iam import Server

from auth.session import SessionCodec, parse_key
from proxy.config import ConfigError, parse_config
from tests.auth.conftest import AuthGateway, auth_config
from tests.conftest import InProcessGateway, free_tcp_port

KEY1 = base64.b64encode(os.urandom(32)).decode()
KEY2 = os.urandom(32).hex()
SECRET = "client-secret-0123456789"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CALLBACK = "/oidc/callback"


# --------------------------------------------------------------------------
# A minimal browser


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def set_cookies(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for header in self.headers.getall("Set-Cookie", ()):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                out[name] = morsel
        return out


@dataclass
class Browser:
    http: aiohttp.ClientSession
    # host -> name -> (value, path)
    cookies: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)

    def cookie(self, url: str, name: str) -> str | None:
        entry = self.cookies.get(urlsplit(url).netloc, {}).get(name)
        return entry[0] if entry else None

    def set_cookie(self, url: str, name: str, value: str, path: str = "/") -> None:
        self.cookies.setdefault(urlsplit(url).netloc, {})[name] = (value, path)

    async def get(self, url: str, headers: dict[str, str] | None = None,
                  method: str = "GET") -> Reply:
        parts = urlsplit(url)
        jar = self.cookies.get(parts.netloc, {})
        sent = [f"{n}={v}" for n, (v, p) in jar.items() if (parts.path or "/").startswith(p)]
        h = dict(headers or {})
        if sent:
            h["Cookie"] = "; ".join(sent)
        async with self.http.request(method, url, headers=h, allow_redirects=False) as resp:
            reply = Reply(resp.status, resp.headers, await resp.read())
        for name, morsel in reply.set_cookies().items():
            if morsel["max-age"] == "0":
                jar.pop(name, None)
            else:
                jar[name] = (morsel.value, morsel["path"] or "/")
        self.cookies[parts.netloc] = jar
        return reply


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=10)) as http:
        yield Browser(http)


# --------------------------------------------------------------------------
# The provider side: a client registered for the gateway, users, tokens


@dataclass
class Setup:
    iam: Server
    gw: InProcessGateway
    client: Any
    user: Any

    @property
    def url(self) -> str:
        return self.gw.url


def discovery(iam: Server) -> str:
    return iam.url + ".well-known/openid-configuration"


def register_client(iam: Server, redirect_uri: str = "http://127.0.0.1:1/cb") -> Any:
    client = iam.models.Client(
        client_id=f"gw-{uuid.uuid4().hex[:12]}", client_secret=SECRET,
        redirect_uris=[redirect_uri], post_logout_redirect_uris=["http://127.0.0.1:1/bye"],
        grant_types=["authorization_code", "refresh_token"], response_types=["code"],
        token_endpoint_auth_method="client_secret_basic",
        scope=["openid", "profile", "email", "groups"])
    iam.backend.save(client)
    client.audience = [client]  # without it Canaille's introspection says active: false
    iam.backend.save(client)
    return client


def oidc_options(iam: Server, client: Any, **extra: Any) -> dict[str, Any]:
    return {
        "discovery": discovery(iam), "client_id": client.client_id, "client_secret": SECRET,
        "session_keys": [KEY1], "cookie_secure": False,
        "scopes": ["openid", "profile", "email", "groups"],
        "groups_claim": "groups", "claims_to_headers": {"email": "X-User-Email"},
        "post_logout_redirect_uri": "/bye", **extra,
    }


async def start(auth_gateway: AuthGateway, iam: Server, *,
                consumers: list[dict[str, Any]] | None = None, auth: dict[str, Any] | None = None,
                client: Any = None, **options: Any) -> Setup:
    client = client or register_client(iam)
    gw = await auth_gateway(consumers or [], {
        "any_of": ["oidc"], "hide_credentials": True, **(auth or {}),
        "oidc": oidc_options(iam, client, **options)})
    client.redirect_uris = [gw.url + CALLBACK]
    client.post_logout_redirect_uris = [gw.url + "/bye"]
    iam.backend.save(client)
    user = iam.random_user()
    iam.login(user)
    iam.consent(user, client)
    return Setup(iam, gw, client, user)


async def idp_tokens(setup: Setup, http: aiohttp.ClientSession) -> dict[str, Any]:
    """Tokens for setup.user straight from the provider (a code flow run by hand)."""
    verifier = base64.urlsafe_b64encode(os.urandom(40)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = setup.client.redirect_uris[0]
    async with http.get(setup.iam.url + "oauth/authorize", allow_redirects=False, params={
            "response_type": "code", "client_id": setup.client.client_id,
            "redirect_uri": redirect_uri, "scope": "openid profile email groups",
            "state": "s", "nonce": "n", "code_challenge": challenge,
            "code_challenge_method": "S256"}) as resp:
        assert resp.status == 302, await resp.text()
        code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    basic = base64.b64encode(f"{setup.client.client_id}:{SECRET}".encode()).decode()
    async with http.post(setup.iam.url + "oauth/token", headers={"Authorization": "Basic " + basic},
                         data={"grant_type": "authorization_code", "code": code,
                               "redirect_uri": redirect_uri,
                               "code_verifier": verifier}) as resp:
        assert resp.status == 200
        tokens: dict[str, Any] = await resp.json()
    return tokens


async def login(browser: Browser, setup: Setup, path: str = "/app/page?x=1") -> str:
    """The whole browser login; returns the session cookie."""
    first = await browser.get(setup.url + path, HTML)
    assert first.status == 302
    authorize = first.headers["Location"]
    at_idp = await browser.get(authorize)
    assert at_idp.status == 302, at_idp.body[:300]
    callback = at_idp.headers["Location"]
    assert callback.startswith(setup.url + CALLBACK + "?")
    back = await browser.get(callback)
    assert back.status == 302, back.body
    assert back.headers["Location"] == path
    session = browser.cookie(setup.url, "bastion_oidc")
    assert session is not None
    return session


# --------------------------------------------------------------------------
# Browser login


async def test_browser_login_reaches_upstream_with_identity(
        auth_gateway: AuthGateway, iam_server: Server, browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server)
    group = iam_server.random_group(display_name=f"staff-{uuid.uuid4().hex[:6]}",
                                    members=[setup.user])

    first = await browser.get(setup.url + "/app/page?x=1", HTML)
    assert first.status == 302
    location = urlsplit(first.headers["Location"])
    assert f"{location.scheme}://{location.netloc}/" == iam_server.url
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["response_type"] == "code"
    assert params["client_id"] == setup.client.client_id
    assert params["redirect_uri"] == setup.url + CALLBACK
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    assert params["scope"].split() == ["openid", "profile", "email", "groups"]
    pending = first.set_cookies()["bastion_oidc_login"]
    assert pending["httponly"] and pending["path"] == CALLBACK
    assert pending["samesite"] == "Lax"
    # Nothing readable in the pending-login cookie: it is encrypted.
    assert params["state"] not in pending.value and params["nonce"] not in pending.value

    at_idp = await browser.get(first.headers["Location"])
    assert at_idp.status == 302
    back = await browser.get(at_idp.headers["Location"])
    assert back.status == 302 and back.headers["Location"] == "/app/page?x=1"
    cookies = back.set_cookies()
    assert cookies["bastion_oidc"]["httponly"] and cookies["bastion_oidc"]["samesite"] == "Lax"
    assert cookies["bastion_oidc_login"]["max-age"] == "0"  # the pending login is over

    page = await browser.get(setup.url + "/app/page?x=1", HTML)
    assert page.status == 200
    seen = page.json()
    assert seen["path"] == "/app/page" and "x=1" in seen["query"]
    headers = seen["headers"]
    assert headers["X-Consumer-Username"] == setup.user.user_name  # no preferred_username: sub
    assert headers["X-Credential-Identifier"] == f"oidc:{setup.user.user_name}"
    assert headers["X-Consumer-Groups"] == group.display_name
    assert headers["X-User-Email"] == setup.user.emails[0]
    # hide_credentials: the session cookie stays at the gateway.
    assert "bastion_oidc" not in headers.get("Cookie", "")

    # A client cannot assert a claim header itself.
    page = await browser.get(setup.url + "/x", {**HTML, "X-User-Email": "root@evil"})
    assert page.json()["headers"]["X-User-Email"] == setup.user.emails[0]


async def test_configured_consumer_and_preferred_username(
        auth_gateway: AuthGateway, iam_server: Server, browser: Browser) -> None:
    name = f"carol-{uuid.uuid4().hex[:6]}"
    setup = await start(auth_gateway, iam_server,
                        consumers=[{"name": name, "groups": ["admins"]}],
                        auth={"allow_groups": ["admins"]}, access_token_header="X-Access-Token")
    setup.user = iam_server.random_user(display_name=name)
    iam_server.login(setup.user)
    iam_server.consent(setup.user, setup.client)
    session = await login(browser, setup)
    assert len(session) < 3800  # tokens and all, it fits in a browser cookie
    headers = (await browser.get(setup.url + "/y", HTML)).json()["headers"]
    assert headers["X-Consumer-Username"] == name
    assert headers["X-Consumer-Groups"] == "admins"  # the configured consumer's groups
    assert headers["X-Credential-Identifier"] == f"oidc:{setup.user.user_name}"
    access = jwt.decode(headers["X-Access-Token"], options={"verify_signature": False})
    assert access["sub"] == setup.user.user_name


async def test_allow_list_applies_to_oidc_users(
        auth_gateway: AuthGateway, iam_server: Server, browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server, auth={"allow": ["someone-else"]})
    await login(browser, setup)
    reply = await browser.get(setup.url + "/app/page?x=1", HTML)
    assert reply.status == 403
    assert reply.json()["error"] == "consumer not allowed"


async def test_wrong_or_missing_state_gives_no_session(
        auth_gateway: AuthGateway, iam_server: Server, browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server)
    first = await browser.get(setup.url + "/p", HTML)
    at_idp = await browser.get(first.headers["Location"])
    callback = urlsplit(at_idp.headers["Location"])
    query = parse_qs(callback.query)
    code = query["code"][0]

    wrong = await browser.get(f"{setup.url}{CALLBACK}?code={code}&state=not-the-state", HTML)
    assert wrong.status == 400
    assert "bastion_oidc" not in wrong.set_cookies()
    assert browser.cookie(setup.url, "bastion_oidc") is None
    # The failed attempt also ended the pending login: the right state no longer helps.
    again = await browser.get(setup.url + CALLBACK + "?" + callback.query)
    assert again.status == 400 and browser.cookie(setup.url, "bastion_oidc") is None

    # Without the pending-login cookie at all (another browser, or an attacker's link).
    stranger = Browser(browser.http)
    reply = await stranger.get(setup.url + CALLBACK + "?" + callback.query)
    assert reply.status == 400 and "bastion_oidc" not in reply.set_cookies()

    # The provider reporting an error ends in a 401, not a session.
    first = await browser.get(setup.url + "/p", HTML)
    state = parse_qs(urlsplit(first.headers["Location"]).query)["state"][0]
    denied = await browser.get(f"{setup.url}{CALLBACK}?error=access_denied&state={state}")
    assert denied.status == 401 and browser.cookie(setup.url, "bastion_oidc") is None

    # A good state with a code the provider refuses (already used / made up): 401.
    first = await browser.get(setup.url + "/p", HTML)
    state = parse_qs(urlsplit(first.headers["Location"]).query)["state"][0]
    bogus = await browser.get(f"{setup.url}{CALLBACK}?code=made-up&state={state}")
    assert bogus.status == 401 and browser.cookie(setup.url, "bastion_oidc") is None


async def test_tampered_session_cookie_is_rejected(
        auth_gateway: AuthGateway, iam_server: Server, browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server)
    session = await login(browser, setup)
    assert (await browser.get(setup.url + "/z", HTML)).status == 200

    i = len(session) // 2
    tampered = session[:i] + ("A" if session[i] != "A" else "B") + session[i + 1:]
    browser.set_cookie(setup.url, "bastion_oidc", tampered)
    api = await browser.get(setup.url + "/z", {"Accept": "application/json"})
    assert api.status == 401
    assert api.headers["WWW-Authenticate"].startswith("Bearer")
    # The refusal drops the broken cookie...
    assert api.set_cookies()["bastion_oidc"]["max-age"] == "0"
    # ...and a browser is sent to log in again, whether it still sends it or not.
    page = await browser.get(setup.url + "/z", HTML)
    assert page.status == 302 and page.headers["Location"].startswith(iam_server.url)
    browser.set_cookie(setup.url, "bastion_oidc", tampered)
    page = await browser.get(setup.url + "/z", HTML)
    assert page.status == 302 and page.headers["Location"].startswith(iam_server.url)
    assert page.set_cookies()["bastion_oidc"]["max-age"] == "0"


async def test_key_rotation(auth_gateway: AuthGateway, iam_server: Server,
                            browser: Browser) -> None:
    old = await start(auth_gateway, iam_server, session_keys=[KEY1])
    session = await login(browser, old)
    # The new key first, the old one still listed: old cookies keep working.
    rotated = await start(auth_gateway, iam_server, client=old.client,
                          session_keys=[KEY2, KEY1])
    browser.set_cookie(rotated.url, "bastion_oidc", session)
    reply = await browser.get(rotated.url + "/r", {"Accept": "application/json"})
    assert reply.status == 200
    # The old key removed: its cookies stop opening.
    retired = await start(auth_gateway, iam_server, client=old.client, session_keys=[KEY2])
    browser.set_cookie(retired.url, "bastion_oidc", session)
    reply = await browser.get(retired.url + "/r", {"Accept": "application/json"})
    assert reply.status == 401


def test_codec_seals_with_the_first_key_and_opens_with_any() -> None:
    k1, k2 = parse_key(KEY1), parse_key(KEY2)
    sealed = SessionCodec([k2, k1]).seal({"a": 1}, "p", ttl=60)
    opened = SessionCodec([k2]).open(sealed, "p")
    assert opened is not None and opened["a"] == 1
    assert SessionCodec([k1]).open(sealed, "p") is None
    # Bound to its purpose, and to its expiry.
    assert SessionCodec([k2]).open(sealed, "other") is None
    assert SessionCodec([k2]).open(sealed, "p", now=opened["exp"]) is None
    assert parse_key("hex:" + "00" * 16) == bytes(16)
    with pytest.raises(ValueError, match="16, 24 or 32 bytes"):
        parse_key(base64.b64encode(b"short").decode())


async def test_refresh_renews_an_expired_access_token(
        auth_gateway: AuthGateway, iam_server: Server, browser: Browser,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from canaille.oidc.provider import authorization  # type: ignore[import-untyped]

    # Access tokens from the login live three seconds, refreshed ones an hour.
    # Canaille's refresh token dies with its access token, so the gateway must
    # renew ahead of expiry: with a 2 s leeway (capped at half the token's
    # life) that is after 1.5 s.
    generator = authorization._token_generators["default"]
    monkeypatch.setattr(generator, "expires_generator",
                        lambda client, grant: 3 if grant == "authorization_code" else 3600)
    setup = await start(auth_gateway, iam_server, refresh_leeway=2)
    session = await login(browser, setup)
    assert (await browser.get(setup.url + "/before", HTML)).headers.get("Set-Cookie") is None
    await asyncio.sleep(1.7)

    reply = await browser.get(setup.url + "/after", HTML)
    assert reply.status == 200
    renewed = reply.set_cookies()["bastion_oidc"].value
    assert renewed != session
    assert reply.json()["headers"]["X-Consumer-Username"] == setup.user.user_name
    # The renewed cookie carries on without another refresh.
    again = await browser.get(setup.url + "/after", HTML)
    assert again.status == 200 and "Set-Cookie" not in again.headers
    # A request still holding the old cookie (sent in parallel) shares that refresh...
    browser.set_cookie(setup.url, "bastion_oidc", session)
    late = await browser.get(setup.url + "/after", {"Accept": "application/json"})
    assert late.status == 200
    # ...but elsewhere the old refresh token is spent (Canaille rotates them):
    # no session, a fresh login.
    other = await start(auth_gateway, iam_server, client=setup.client, refresh_leeway=2)
    browser.set_cookie(other.url, "bastion_oidc", session)
    spent = await browser.get(other.url + "/after", HTML)
    assert spent.status == 302 and spent.headers["Location"].startswith(iam_server.url)


async def test_logout_clears_the_session_and_ends_it_at_the_provider(
        auth_gateway: AuthGateway, iam_server: Server, browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server)
    await login(browser, setup)
    reply = await browser.get(setup.url + "/oidc/logout", HTML)
    assert reply.status == 302
    location = urlsplit(reply.headers["Location"])
    assert f"{location.scheme}://{location.netloc}/" == iam_server.url
    assert location.path == "/oauth/end_session"
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["post_logout_redirect_uri"] == setup.url + "/bye"
    assert params["client_id"] == setup.client.client_id
    hint = jwt.decode(params["id_token_hint"], options={"verify_signature": False})
    assert hint["sub"] == setup.user.user_name and hint["aud"] == [setup.client.client_id]
    assert reply.set_cookies()["bastion_oidc"]["max-age"] == "0"
    assert browser.cookie(setup.url, "bastion_oidc") is None
    assert (await browser.get(setup.url + "/x", {"Accept": "application/json"})).status == 401


# --------------------------------------------------------------------------
# Bearer tokens (APIs)


async def test_bearer_jwt_access_token(auth_gateway: AuthGateway, iam_server: Server,
                                       browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server)
    tokens = await idp_tokens(setup, browser.http)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}", **HTML}
    reply = await browser.get(setup.url + "/api/v1", bearer)
    assert reply.status == 200
    headers = reply.json()["headers"]
    assert headers["X-Consumer-Username"] == setup.user.user_name
    assert headers["X-User-Email"] == setup.user.emails[0]
    assert "Authorization" not in headers  # hide_credentials

    header, payload, signature = tokens["access_token"].split(".")
    forged_sig = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    alg_none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    for bad in (f"{header}.{payload}.{forged_sig}", f"{alg_none}.{payload}.", "not-a-jwt"):
        reply = await browser.get(setup.url + "/api/v1", {"Authorization": f"Bearer {bad}",
                                                          **HTML})
        assert reply.status == 401, bad  # never a redirect for a bearer request
        assert reply.json()["error"] == "invalid credentials"

    # A token the provider issued to another client is not for this gateway.
    other = await start(auth_gateway, iam_server)
    reply = await browser.get(other.url + "/api/v1",
                              {"Authorization": f"Bearer {tokens['access_token']}"})
    assert reply.status == 401


async def test_bearer_introspection(auth_gateway: AuthGateway, iam_server: Server,
                                    browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server, bearer="introspection")
    # An opaque token (not a JWT): only introspection can vouch for it.
    opaque = iam_server.random_token(setup.user, setup.client)
    for _ in range(2):  # the second answer comes from the cache
        reply = await browser.get(setup.url + "/api",
                                  {"Authorization": f"Bearer {opaque.access_token}"})
        assert reply.status == 200
        assert reply.json()["headers"]["X-Consumer-Username"] == setup.user.user_name
    tokens = await idp_tokens(setup, browser.http)
    reply = await browser.get(setup.url + "/api",
                              {"Authorization": f"Bearer {tokens['access_token']}"})
    assert reply.status == 200
    for bad in ("unknown-token", tokens["refresh_token"]):
        reply = await browser.get(setup.url + "/api", {"Authorization": f"Bearer {bad}"})
        assert reply.status == 401


async def test_api_requests_get_401_not_a_redirect(
        auth_gateway: AuthGateway, iam_server: Server, browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server)
    for method, headers in [
        ("GET", {"Accept": "application/json"}),
        ("GET", {}),
        ("POST", HTML),
        ("GET", {**HTML, "X-Requested-With": "XMLHttpRequest"}),
        ("GET", {**HTML, "Sec-Fetch-Mode": "cors"}),
    ]:
        reply = await browser.get(setup.url + "/api", headers, method=method)
        assert reply.status == 401, (method, headers)
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="bastion"'
    only = await start(auth_gateway, iam_server, bearer_only=True)
    assert (await browser.get(only.url + "/page", HTML)).status == 401
    # Paths outside the protected route are untouched.
    assert (await browser.get(setup.url + "/open/x", HTML)).status == 200


async def test_public_url_and_secure_cookies(auth_gateway: AuthGateway, iam_server: Server,
                                            browser: Browser) -> None:
    setup = await start(auth_gateway, iam_server, public_url="https://app.example.com",
                        cookie_secure=True, callback_path="/auth/cb")
    reply = await browser.get(setup.url + "/deep/page", HTML)
    params = parse_qs(urlsplit(reply.headers["Location"]).query)
    assert params["redirect_uri"] == ["https://app.example.com/auth/cb"]
    pending = reply.set_cookies()["bastion_oidc_login"]
    assert pending["secure"] and pending["path"] == "/auth/cb"


async def test_unreachable_provider_fails_closed(auth_gateway: AuthGateway,
                                                 iam_server: Server, browser: Browser) -> None:
    client = register_client(iam_server)
    dead = f"http://127.0.0.1:{free_tcp_port()}/.well-known/openid-configuration"
    gw = await auth_gateway([], {"any_of": ["oidc"], "oidc": oidc_options(
        iam_server, client, discovery=dead, timeout=1, retry_interval=0)})
    assert (await browser.get(gw.url + "/page", HTML)).status == 401
    reply = await browser.get(gw.url + "/page", {"Authorization": "Bearer abc.def.ghi"})
    assert reply.status == 401
    state = await browser.get(gw.url + CALLBACK + "?code=x&state=y")
    assert state.status == 400


# --------------------------------------------------------------------------
# Configuration


def _load(oidc: dict[str, Any]) -> None:
    options = {"discovery": "https://id.example.com/.well-known/openid-configuration",
               "client_id": "gw", "client_secret": "s", "session_keys": [KEY1], **oidc}
    parse_config(yaml.safe_dump(auth_config("http://127.0.0.1:9", [],
                                            {"any_of": ["oidc"], "oidc": options})))


@pytest.mark.parametrize(("oidc", "message"), [
    ({"algorithms": ["none"]}, "'none' is never accepted"),
    ({"algorithms": ["HS256"]}, "unsupported algorithm 'HS256'"),
    ({"session_keys": ["c2hvcnQ="]}, "session key 0: a session key must decode to 16, 24 or 32"),
    ({"session_keys": []}, "session_keys are needed for browser logins"),
    ({"client_secret": None}, "needs a client_secret"),
    ({"scopes": ["profile"]}, "scopes must include 'openid'"),
    ({"claims_to_headers": {"sub": "X-Consumer-Username"}}, "set by the gateway itself"),
    ({"cookie_samesite": "None", "cookie_secure": False}, "needs cookie_secure"),
    ({"callback_path": "//evil"}, "callback_path"),
])
def test_bad_config_is_rejected(oidc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(oidc)
    assert message in str(info.value)


def test_good_config_loads() -> None:
    _load({"session_keys": [KEY2, KEY1], "client_auth": "client_secret_post",
           "bearer": "introspection", "cookie_samesite": "Strict"})
    _load({"client_auth": "none", "client_secret": None})
    _load({"session_keys": [], "bearer_only": True})
