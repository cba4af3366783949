"""The ``cc-protection`` plugin: HTTP flood (CC) protection, bans, a signed cookie, a challenge.

    plugins:
      cc-protection:
        secrets: ["${CC_SECRET}", "${CC_OLD_SECRET}"]   # first signs, all verify
        allow: [10.0.0.0/8]           # never counted, never banned
        deny: [203.0.113.0/24]        # always refused
        rules:
          - {name: site, requests: 300, window: 10s, ban: 10m}
          - {name: login, match: {path_prefix: /login, methods: [POST]},
             requests: 5, window: 60s, ban: 30m}
          - {name: pages, match: {path_prefix: /app/}, by: cookie, action: challenge,
             requests: 100, window: 10s, ban: 5m}

Every rule a request matches counts it under one identity: the client IP
(IPv6 folded to its /64) or the gateway's own session cookie. More than
``requests`` in ``window`` seconds bans that identity for ``ban`` seconds:
a key ``cc:ban:<type>:<value>`` in the store with that TTL, which every
worker and node sharing the store sees, and which is checked before anything
is counted. A ban covers every request this plugin sees, whatever rule set it.

The session cookie is issued and signed by the gateway (HMAC-SHA256, bound to
the client's /24 or /64 and a hash of its User-Agent), either silently on a
response (``by: cookie``, ``action: deny``) or once a browser solved the
challenge page (``action: challenge``). One IP gets at most
``cookie.issue_limit`` new cookies (or challenge pages) per
``cookie.issue_window``: a client that drops or forges its cookie on every
request gains nothing by it.

With the store down, ``fail_open: true`` (the default) carries on with a
per-process in-memory store, so a flood is still limited in each process;
``fail_open: false`` answers 503.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import ipaddress
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from proxy.config import Duration, RequestMatch
from proxy.flow import Flow
from proxy.plugin import Group, Plugin, PluginContext
from proxy.regex import compile_regex
from proxy.store import LimitCheck, LimitState, MemoryStore, Store, StoreError

__all__ = [
    "BAN_PREFIX",
    "CcConfig",
    "CcProtectionPlugin",
    "CookieSigner",
    "ban_key",
    "format_network",
    "parse_ban",
    "proof_ok",
    "solve_challenge",
]

PLUGIN_NAME: Final = "cc-protection"
# Store keys (under the store's own prefix). The admin API lists and lifts bans by them.
BAN_PREFIX: Final = "cc:ban:"
_COUNT_PREFIX: Final = "cc:n:"
_TOKEN_PREFIX: Final = "cc:tok:"
_ISSUE_RULE: Final = "~issue"  # the issuance cap's counter, beside the rules' ones

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
BanType = Literal["ip", "cookie"]
_T = TypeVar("_T")

_COOKIE_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_RULE_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_RAND_RE: Final = re.compile(r"^[A-Za-z0-9_-]{22}$")
_MAC_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
# A cookie value longer than this is not ours: refused before any HMAC is computed.
_MAX_COOKIE_CHARS: Final = 160
# Timestamps from a little in the future are tolerated (clock skew between nodes).
_FUTURE_SKEW: Final = 60.0


# ---------------------------------------------------------------------------
# Config


def _networks(v: Any) -> Any:
    if isinstance(v, list):
        return [ipaddress.ip_network(str(x), strict=False) for x in v]
    return v


def _positive(v: float, what: str) -> float:
    if v <= 0:
        raise ValueError(f"{what} must be more than 0 seconds")
    return v


# Which requests a rule counts (hosts, path, methods; empty: all), validated as
# route matches are.
RuleMatch = RequestMatch


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # Names the rule's counters in the store: keep it stable across reloads.
    name: str
    match: RuleMatch = RuleMatch()
    # ip: the client address (IPv6 by /64); cookie: the gateway's session cookie.
    by: Literal["ip", "cookie"] = "ip"
    requests: int = Field(ge=1)
    window: Duration
    ban: Duration
    # deny: refuse with `response`; challenge: the JS page (browsers pass).
    action: Literal["deny", "challenge"] = "deny"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _RULE_NAME_RE.match(v):
            raise ValueError("rule names are 1-64 of A-Z a-z 0-9 _ . -")
        return v

    @field_validator("window", "ban")
    @classmethod
    def _durations(cls, v: float) -> float:
        return _positive(v, "window and ban")


class DenyResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    status: int = Field(429, ge=400, le=599)
    # None: the gateway's JSON error body.
    body: str | None = None
    content_type: str = "text/plain; charset=utf-8"

    @field_validator("content_type")
    @classmethod
    def _header_safe(cls, v: str) -> str:
        if any(c in v for c in "\r\n\0"):
            raise ValueError("content_type cannot contain CR, LF or NUL")
        return v


class CookieSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "bastion_cc"
    ttl: Duration = 3600.0
    # The cookie only verifies from the network it was issued to (0: anywhere)
    # and, with bind_user_agent, from the same User-Agent.
    bind_ipv4_prefix: int = Field(24, ge=0, le=32)
    bind_ipv6_prefix: int = Field(64, ge=0, le=128)
    bind_user_agent: bool = True
    # auto: Secure when the request came over HTTPS (X-Forwarded-Proto included).
    secure: Literal["auto"] | bool = "auto"
    # The issuance cap: new cookies (or challenge pages) per client IP.
    issue_limit: int = Field(20, ge=1)
    issue_window: Duration = 60.0
    # Past the cap the IP is banned this long; 0 only refuses the request.
    issue_ban: Duration = 300.0

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _COOKIE_NAME_RE.match(v):
            raise ValueError("cookie names are 1-64 of A-Z a-z 0-9 _ . -")
        return v

    @field_validator("ttl", "issue_window")
    @classmethod
    def _durations(cls, v: float) -> float:
        return _positive(v, "ttl and issue_window")


class ChallengeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    status: int = Field(403, ge=200, le=599)
    # How long the page's token may be turned into a cookie (it is single-use).
    token_ttl: Duration = 30.0
    # Proof of work: leading zero bits of SHA-256(token "." nonce) the page must find.
    difficulty: int = Field(12, ge=0, le=24)
    # The short-lived cookie the page's script sets; the gateway swaps it for the session.
    cookie_name: str = "bastion_cc_proof"

    @field_validator("cookie_name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _COOKIE_NAME_RE.match(v):
            raise ValueError("cookie names are 1-64 of A-Z a-z 0-9 _ . -")
        return v

    @field_validator("token_ttl")
    @classmethod
    def _ttl(cls, v: float) -> float:
        return _positive(v, "token_ttl")


def _default_rules() -> list[Rule]:
    return [Rule(name="default", requests=1000, window=60.0, ban=300.0)]


class CcConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: list[Rule] = Field(default_factory=_default_rules)
    # HMAC keys for the cookie and the challenge: the first signs, every one verifies.
    secrets: list[SecretStr] = Field(default_factory=list)
    allow: list[Network] = Field(default_factory=list)
    deny: list[Network] = Field(default_factory=list)
    deny_list_status: int = Field(403, ge=400, le=599)
    response: DenyResponse = DenyResponse()
    cookie: CookieSettings = CookieSettings()
    challenge: ChallengeSettings = ChallengeSettings()
    # IP identities are counted and banned per network of this size.
    ipv4_prefix: int = Field(32, ge=8, le=32)
    ipv6_prefix: int = Field(64, ge=16, le=128)
    # Store down: true goes on with a per-process memory store; false answers 503.
    fail_open: bool = True
    # In that fallback each process allows limit / fallback_divisor (say, the worker count).
    fallback_divisor: int = Field(1, ge=1)
    # How long a worker trusts a ban it read before asking the store again
    # (an admin lift reaches it after at most this long). 0: ask every time.
    ban_cache: Duration = 1.0

    _lists = field_validator("allow", "deny", mode="before")(_networks)

    @field_validator("secrets")
    @classmethod
    def _long_secrets(cls, v: list[SecretStr]) -> list[SecretStr]:
        for s in v:
            if len(s.get_secret_value()) < 16:
                raise ValueError("each secret needs at least 16 characters")
        return v

    @model_validator(mode="after")
    def _check(self) -> CcConfig:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate rule names: {', '.join(dupes)}")
        if self.needs_cookies and not self.secrets:
            raise ValueError("rules counting by cookie or answering with a challenge need "
                             "`secrets` (e.g. secrets: [\"${CC_SECRET}\"])")
        if self.cookie.name == self.challenge.cookie_name:
            raise ValueError("cookie.name and challenge.cookie_name must differ")
        return self

    @property
    def needs_cookies(self) -> bool:
        return any(r.by == "cookie" or r.action == "challenge" for r in self.rules)


# ---------------------------------------------------------------------------
# Signed cookie and challenge token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session cookie: its id (the random part) and how it was earned."""

    sid: str
    # "i": issued on a response; "c": issued after the challenge was solved.
    kind: str
    issued: int


class CookieSigner:
    """Signs and verifies the session cookie and the challenge token.

    Session cookie: ``v1.<ts>.<rand>.<kind>.<mac>``; challenge token:
    ``c1.<ts>.<rand>.<bits>.<mac>`` (the page's script appends ``.<nonce>``).
    The MAC is HMAC-SHA256 over a purpose label, the visible fields and a
    ``binding`` (the client's network and User-Agent hash) that is never in
    the value: a cookie copied to another network or browser does not verify.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("no signing keys")
        self._keys = tuple(keys)

    @staticmethod
    def _mac(key: bytes, purpose: str, *fields: str) -> str:
        msg = "\0".join((purpose, *fields)).encode("utf-8", "surrogateescape")
        return _b64(hmac.new(key, msg, hashlib.sha256).digest())

    def _verify(self, mac: str, purpose: str, *fields: str) -> bool:
        ok = False
        for key in self._keys:
            # Every key is tried: which one matched is not visible in the timing.
            ok |= hmac.compare_digest(mac.encode(), self._mac(key, purpose, *fields).encode())
        return ok

    def session(self, binding: str, kind: str, now: float) -> tuple[str, str]:
        """A new session cookie value and its id."""
        ts, rand = str(int(now)), _b64(secrets.token_bytes(16))
        mac = self._mac(self._keys[0], "cc-session", "v1", ts, rand, kind, binding)
        return f"v1.{ts}.{rand}.{kind}.{mac}", rand

    def verify_session(self, value: str, binding: str, now: float, ttl: float) -> Session | None:
        if len(value) > _MAX_COOKIE_CHARS:
            return None
        parts = value.split(".")
        if len(parts) != 5 or parts[0] != "v1":
            return None
        _, ts, rand, kind, mac = parts
        if (not ts.isdigit() or len(ts) > 12 or kind not in ("i", "c")
                or not _RAND_RE.match(rand) or not _MAC_RE.match(mac)):
            return None
        issued = int(ts)
        if not (now - ttl <= issued <= now + _FUTURE_SKEW):
            return None
        if not self._verify(mac, "cc-session", "v1", ts, rand, kind, binding):
            return None
        return Session(rand, kind, issued)

    def challenge_token(self, binding: str, bits: int, now: float) -> str:
        ts, rand = str(int(now)), _b64(secrets.token_bytes(16))
        mac = self._mac(self._keys[0], "cc-challenge", "c1", ts, rand, str(bits), binding)
        return f"c1.{ts}.{rand}.{bits}.{mac}"

    def verify_proof(self, value: str, binding: str, now: float, ttl: float,
                     min_bits: int) -> str | None:
        """The token id of a solved challenge (``token.nonce``); None if it does not hold."""
        if len(value) > _MAX_COOKIE_CHARS:
            return None
        parts = value.split(".")
        if len(parts) != 6 or parts[0] != "c1":
            return None
        _, ts, rand, bits, mac, nonce = parts
        if (not ts.isdigit() or len(ts) > 12 or not bits.isdigit() or len(bits) > 2
                or not nonce.isdigit() or len(nonce) > 12
                or not _RAND_RE.match(rand) or not _MAC_RE.match(mac)):
            return None
        issued = int(ts)
        if not (now - ttl <= issued <= now + _FUTURE_SKEW) or int(bits) < min_bits:
            return None
        if not self._verify(mac, "cc-challenge", "c1", ts, rand, bits, binding):
            return None
        token = ".".join(parts[:5])
        if not proof_ok(token, nonce, int(bits)):
            return None
        return rand


def _leading_word(token: str, nonce: str | int) -> int:
    digest = hashlib.sha256(f"{token}.{nonce}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def proof_ok(token: str, nonce: str | int, bits: int) -> bool:
    """Whether SHA-256(token "." nonce) starts with ``bits`` zero bits."""
    return bits <= 0 or _leading_word(token, nonce) >> (32 - bits) == 0


def solve_challenge(token: str, bits: int) -> str:
    """What the challenge page's script computes: the proof cookie's value.

    The smallest nonce (counting from 0) for which ``proof_ok`` holds, as
    ``token.nonce``. The page's script does exactly this in JavaScript.
    """
    nonce = 0
    while not proof_ok(token, nonce, bits):
        nonce += 1
    return f"{token}.{nonce}"


# ---------------------------------------------------------------------------
# The challenge page


def _iroot(n: int, k: int) -> int:
    """floor(n ** (1/k)) for non-negative integers."""
    x = 1 << ((n.bit_length() + k - 1) // k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def _sha256_constants() -> tuple[list[int], list[int]]:
    primes: list[int] = []
    n = 2
    while len(primes) < 64:
        if all(n % p for p in primes if p * p <= n):
            primes.append(n)
        n += 1
    k = [_iroot(p << 96, 3) & 0xFFFFFFFF for p in primes]
    h = [_iroot(p << 64, 2) & 0xFFFFFFFF for p in primes[:8]]
    return k, h


_K, _H = _sha256_constants()

# Plain JavaScript (no crypto.subtle: it exists only on secure origins).
# h0(s) is the first 32-bit word of SHA-256 of the ASCII string s.
_CHALLENGE_JS: Final = """(function(){
var T=%(token)s,B=%(bits)d,C=%(cookie)s,A=%(max_age)d,K=%(k)s,H0=%(h)s,n=0;
function r(x,y){return x>>>y|x<<32-y;}
function h0(s){
  var m=[],l=s.length*8,i,j,t1,t2,H=H0.slice(),w=[];
  for(i=0;i<s.length;i++)m[i>>2]|=s.charCodeAt(i)<<24-i%%4*8;
  m[l>>5]|=0x80<<24-l%%32;
  m[(l+64>>9<<4)+15]=l;
  for(i=0;i<m.length;i+=16){
    var a=H[0],b=H[1],c=H[2],d=H[3],e=H[4],f=H[5],g=H[6],h=H[7];
    for(j=0;j<64;j++){
      if(j<16)w[j]=m[i+j]|0;
      else w[j]=(r(w[j-15],7)^r(w[j-15],18)^w[j-15]>>>3)+w[j-7]
               +(r(w[j-2],17)^r(w[j-2],19)^w[j-2]>>>10)+w[j-16]|0;
      t1=h+(r(e,6)^r(e,11)^r(e,25))+(e&f^~e&g)+K[j]+w[j]|0;
      t2=(r(a,2)^r(a,13)^r(a,22))+(a&b^a&c^b&c)|0;
      h=g;g=f;f=e;e=d+t1|0;d=c;c=b;b=a;a=t1+t2|0;
    }
    H[0]=H[0]+a|0;H[1]=H[1]+b|0;H[2]=H[2]+c|0;H[3]=H[3]+d|0;
    H[4]=H[4]+e|0;H[5]=H[5]+f|0;H[6]=H[6]+g|0;H[7]=H[7]+h|0;
  }
  return H[0]>>>0;
}
function run(){
  for(var s=0;s<20000;s++,n++){
    if(B===0||h0(T+"."+n)>>>32-B===0){
      document.cookie=C+"="+T+"."+n+"; Path=/; Max-Age="+A+"; SameSite=Lax"
        +(location.protocol==="https:"?"; Secure":"");
      location.reload();
      return;
    }
  }
  setTimeout(run,0);
}
run();
})();"""

_CHALLENGE_HTML: Final = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="robots" content="noindex, nofollow">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Checking your browser</title></head>
<body style="font-family: sans-serif; text-align: center; margin-top: 20vh">
<p>Checking your browser before you continue&hellip;</p>
<noscript><p>Please enable JavaScript and cookies, then reload this page.</p></noscript>
<p style="color: #888; font-size: small">request %(request_id)s</p>
<script>%(script)s</script>
</body></html>
"""


def challenge_script(token: str, bits: int, cookie_name: str, max_age: int) -> str:
    return _CHALLENGE_JS % {
        "token": json.dumps(token), "bits": bits, "cookie": json.dumps(cookie_name),
        "max_age": max_age, "k": json.dumps(_K), "h": json.dumps(_H),
    }


# ---------------------------------------------------------------------------
# Helpers


def parse_ip(text: str) -> Address | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def format_network(net: Network) -> str:
    """A network as ban keys spell it: a bare address for a single host, else CIDR."""
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _network(addr: Address, v4: int, v6: int) -> Network:
    prefix = v4 if isinstance(addr, ipaddress.IPv4Address) else v6
    return ipaddress.ip_network((addr, prefix), strict=False)


def ban_key(ban_type: str, value: str) -> str:
    return f"{BAN_PREFIX}{ban_type}:{value}"


def parse_ban(data: bytes | None) -> dict[str, Any]:
    """A ban record as stored (JSON); a value that is not one reads as an empty record."""
    if data is None:
        return {}
    try:
        record = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _request_cookies(flow: Flow, names: tuple[str, ...]) -> dict[str, str]:
    """The first value of each wanted cookie across the request's Cookie headers."""
    found: dict[str, str] = {}
    for header in flow.request.headers.getall("Cookie", ()):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key in names and key not in found:
                found[key] = value.strip().strip('"')
    return found


def _strip_cookies(flow: Flow, names: tuple[str, ...]) -> None:
    """Keep the gateway's own cookies from the upstream."""
    values = flow.request_headers.popall("Cookie", [])
    for header in values:
        kept = [p.strip() for p in header.split(";")
                if p.strip() and p.strip().partition("=")[0] not in names]
        if kept:
            flow.request_headers.add("Cookie", "; ".join(kept))


def _host(flow: Flow) -> str:
    host = flow.request.headers.get("Host", "").lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _CompiledRule:
    __slots__ = ("_exact_hosts", "_path", "_prefix", "_regex", "_wild_hosts", "methods", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        m = rule.match
        hosts = [h.lower() for h in m.hosts]
        self._exact_hosts = frozenset(h for h in hosts if not h.startswith("*."))
        self._wild_hosts = tuple(h[1:] for h in hosts if h.startswith("*."))
        self.methods = frozenset(m.methods)
        self._path = m.path
        self._prefix = m.path_prefix
        self._regex = compile_regex(m.path_regex) if m.path_regex is not None else None

    def matches(self, flow: Flow, host: Callable[[], str]) -> bool:
        if self.methods and flow.method not in self.methods:
            return False
        if self._path is not None and flow.path != self._path:
            return False
        if self._prefix is not None and not flow.path.startswith(self._prefix):
            return False
        if self._regex is not None and self._regex.fullmatch(flow.path) is None:
            return False
        if self._exact_hosts or self._wild_hosts:
            h = host()
            if h not in self._exact_hosts and not any(h.endswith(w) for w in self._wild_hosts):
                return False
        return True


class _StoreDown(Exception):
    """The store failed and the plugin is configured to fail closed."""


@dataclass(slots=True)
class _Backend:
    """The store for one request: the shared one until it fails, then the local fallback."""

    plugin: CcProtectionPlugin
    degraded: bool = False

    async def run(self, op: Callable[[Store, bool], Awaitable[_T]]) -> _T:
        if not self.degraded:
            try:
                return await op(self.plugin.ctx.store, False)
            except StoreError as exc:
                self.plugin._store_failed(exc)
                self.degraded = True
        return await op(self.plugin._fallback, True)


async def _all(*calls: Awaitable[Any]) -> list[Any]:
    """Await store calls together; the first StoreError is raised once all have settled."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return list(results)


@dataclass(slots=True)
class _State:
    set_cookies: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Count:
    """One counter charged for a request: the check, and whose it is."""

    check: LimitCheck
    ident: tuple[BanType, str]
    rule: Rule | None  # None: the issuance cap


# ---------------------------------------------------------------------------
# The plugin


class CcProtectionPlugin(Plugin[CcConfig]):
    name = PLUGIN_NAME
    group = Group.EDGE
    # Before the WAF (and anything else in its group): a flood is refused cheaply.
    priority = 1000
    config_model = CcConfig

    def __init__(self, config: CcConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self._rules = tuple(_CompiledRule(r) for r in config.rules)
        self._signer = (CookieSigner([s.get_secret_value().encode() for s in config.secrets])
                        if config.secrets else None)
        self._cookie_names = (config.cookie.name, config.challenge.cookie_name)
        # Per process: the fallback when the store fails, and bans already seen.
        self._fallback = MemoryStore(max_keys=200_000)
        self._ban_cache = MemoryStore(max_keys=100_000)
        self._last_store_log = 0.0
        m = ctx.metrics
        self._decisions = m.counter("bastion_cc_decisions_total",
                                    "CC protection verdicts, by action", ["action"])
        self._bans_made = m.counter("bastion_cc_bans_total",
                                    "CC bans written, by identity type and cause",
                                    ["type", "cause"])
        self._issued = m.counter("bastion_cc_cookies_issued_total",
                                 "CC session cookies issued, by how they were earned", ["via"])
        self._store_errors = m.counter("bastion_cc_store_errors_total",
                                       "Store failures CC protection met, by kind", ["kind"])

    async def close(self) -> None:
        await self._fallback.close()
        await self._ban_cache.close()

    # ----------------------------------------------------------------- hooks

    async def on_request_headers(self, flow: Flow) -> None:
        cfg = self.config
        addr = parse_ip(flow.client_ip)
        if addr is not None and any(addr in net for net in cfg.deny):
            self._verdict(flow, "denied-by-list", reason="deny list")
            flow.respond_error(cfg.deny_list_status, "access from this address is denied",
                               {"Cache-Control": "no-store"})
            return
        if addr is not None and any(addr in net for net in cfg.allow):
            self._decisions.labels("allow-listed").inc()
            return
        try:
            await self._check(flow, addr)
        except _StoreDown:
            self._verdict(flow, "fail-closed", reason="store unavailable")
            flow.respond_error(503, "flood protection is unavailable, try again shortly",
                               {"Retry-After": "1", "Cache-Control": "no-store"})

    async def on_response_headers(self, flow: Flow) -> None:
        state: _State | None = flow.state(self, lambda: None)
        if state is not None:
            for value in state.set_cookies:
                flow.response_headers.add("Set-Cookie", value)

    # -------------------------------------------------------------- decision

    async def _check(self, flow: Flow, addr: Address | None) -> None:
        cfg = self.config
        now = time.time()
        ip_value = (format_network(_network(addr, cfg.ipv4_prefix, cfg.ipv6_prefix))
                    if addr is not None else flow.client_ip)
        ip_ident: tuple[BanType, str] = ("ip", ip_value)
        host_cache: list[str] = []

        def host() -> str:
            if not host_cache:
                host_cache.append(_host(flow))
            return host_cache[0]

        rules = [c.rule for c in self._rules if c.matches(flow, host)]
        cookies: dict[str, str] = {}
        session: Session | None = None
        binding = ""
        if self._signer is not None:
            cookies = _request_cookies(flow, self._cookie_names)
            if cookies:
                _strip_cookies(flow, self._cookie_names)
            binding = self._binding(flow, addr)
            value = cookies.get(cfg.cookie.name)
            if value:
                session = self._signer.verify_session(value, binding, now, cfg.cookie.ttl)

        backend = _Backend(self)
        idents = [ip_ident] + ([("cookie", session.sid)] if session is not None else [])
        bans = await self._read_bans(backend, idents, now)
        if "cookie" in bans:
            self._deny(flow, "cookie", bans["cookie"], now)
            return
        ip_ban = bans.get("ip")
        if ip_ban is not None and ip_ban.get("action") != "challenge":
            self._deny(flow, "ip", ip_ban, now)
            return

        # The challenge gate: an IP under a challenge ban, or a rule that
        # challenges every client without a solved-challenge session.
        if (ip_ban is not None or any(r.by == "cookie" and r.action == "challenge"
                                      for r in rules)) and (session is None
                                                            or session.kind != "c"):
            session = await self._redeem(flow, backend, cookies, binding, now)
            if session is None:
                await self._challenge(flow, backend, ip_value, binding, now)
                return
        if not rules:
            self._decisions.labels("allowed").inc()
            return

        counts: list[_Count] = []
        issue = False
        for rule in rules:
            if session is not None and (rule.by == "cookie" or (
                    rule.action == "challenge" and session.kind == "c")):
                ident: tuple[BanType, str] = ("cookie", session.sid)
            else:
                ident = ip_ident
                issue = issue or rule.by == "cookie"
            counts.append(_Count(LimitCheck(self._count_key(ident, rule.name), rule.requests,
                                            rule.window), ident, rule))
        if issue and self._signer is not None:
            counts.append(_Count(self._issue_check(ip_value), ip_ident, None))

        def limit(store: Store, degraded: bool) -> Awaitable[tuple[bool, list[LimitState]]]:
            checks = [self._degrade(c.check) if degraded else c.check for c in counts]
            return store.limit(checks, now=now)

        admitted, states = await backend.run(limit)
        if admitted:
            if issue and self._signer is not None:
                value, _ = self._signer.session(binding, "i", now)
                self._set_cookie(flow, self._session_cookie(flow, value))
                self._issued.labels("transparent").inc()
            self._decisions.labels("allowed").inc()
            return
        await self._tripped(flow, backend, counts, states, ip_value, binding, now)

    async def _tripped(self, flow: Flow, backend: _Backend, counts: list[_Count],
                       states: list[LimitState], ip_value: str, binding: str,
                       now: float) -> None:
        """Some counter is full: ban whoever it counts, then answer as the ban says."""
        over = [c for c, s in zip(counts, states, strict=True) if s.retry_after > 0]
        if not over:  # every counter had room after all (a cost above a limit cannot happen)
            over = counts
        plan: dict[tuple[BanType, str], dict[str, Any]] = {}
        for c in over:
            if c.rule is None:
                cause, duration = "issuance", self.config.cookie.issue_ban
                action = "deny"
                reason = (f"more than {c.check.limit} new cookies or challenges in "
                          f"{c.check.window:g}s")
                rule_name = _ISSUE_RULE
            else:
                cause, duration = "rule", c.rule.ban
                # A cookie that floods has already shown itself: it is refused, not challenged.
                action = c.rule.action if c.ident[0] == "ip" else "deny"
                reason = f"more than {c.rule.requests} requests in {c.rule.window:g}s"
                rule_name = c.rule.name
            entry = plan.setdefault(c.ident, {"checks": [], "duration": 0.0, "action": action,
                                              "reason": reason, "rule": rule_name,
                                              "cause": cause})
            entry["checks"].append(c.check)
            if action == "deny" and entry["action"] != "deny":
                entry.update(action="deny", reason=reason, rule=rule_name, cause=cause)
            entry["duration"] = max(entry["duration"], duration)

        refusal: tuple[BanType, dict[str, Any], bool] | None = None
        for ident, entry in plan.items():
            record = {"action": entry["action"], "reason": entry["reason"],
                      "rule": entry["rule"], "since": round(now, 3),
                      "until": round(now + entry["duration"], 3)}
            banned = entry["duration"] > 0
            if banned:
                await self._write_ban(backend, ident, record, entry["duration"],
                                      entry["checks"], entry["cause"], now)
            if entry["action"] == "deny" and (refusal is None or (banned and not refusal[2])):
                refusal = (ident[0], record, banned)
        if refusal is not None:
            # Without a ban (cookie.issue_ban: 0) the request is only refused.
            self._deny(flow, refusal[0], refusal[1], now,
                       verdict="banned" if refusal[2] else "limited", fresh=refusal[2])
        else:
            await self._challenge(flow, backend, ip_value, binding, now)

    # ------------------------------------------------------------ challenge

    async def _redeem(self, flow: Flow, backend: _Backend, cookies: dict[str, str],
                      binding: str, now: float) -> Session | None:
        """Swap a solved challenge (the proof cookie) for a session cookie, once."""
        cfg = self.config
        proof = cookies.get(cfg.challenge.cookie_name)
        if not proof or self._signer is None:
            return None
        token_id = self._signer.verify_proof(proof, binding, now, cfg.challenge.token_ttl,
                                             cfg.challenge.difficulty)
        if token_id is None:
            return None
        ttl = cfg.challenge.token_ttl + _FUTURE_SKEW
        first = await backend.run(lambda s, _: s.set_if_absent(_TOKEN_PREFIX + token_id,
                                                               b"1", ttl))
        if not first:
            return None  # a replayed proof: the page has to be solved again
        value, sid = self._signer.session(binding, "c", now)
        self._set_cookie(flow, self._session_cookie(flow, value))
        self._set_cookie(flow, f"{cfg.challenge.cookie_name}=; Path=/; Max-Age=0; SameSite=Lax")
        self._issued.labels("challenge").inc()
        return Session(sid, "c", int(now))

    async def _challenge(self, flow: Flow, backend: _Backend, ip_value: str, binding: str,
                         now: float) -> None:
        """Serve the challenge page: one more against the IP's issuance cap."""
        cfg = self.config
        if self._signer is None:  # config validation makes this unreachable
            self._deny(flow, "ip", {"reason": "challenge unavailable"}, now, verdict="limited")
            return
        check = self._issue_check(ip_value)

        def limit(store: Store, degraded: bool) -> Awaitable[tuple[bool, list[LimitState]]]:
            return store.limit([self._degrade(check) if degraded else check], now=now)

        admitted, states = await backend.run(limit)
        if not admitted:
            await self._tripped(flow, backend, [_Count(check, ("ip", ip_value), None)],
                                states, ip_value, binding, now)
            return
        bits = cfg.challenge.difficulty
        token = self._signer.challenge_token(binding, bits, now)
        script = challenge_script(token, bits, cfg.challenge.cookie_name,
                                  max(1, math.ceil(cfg.challenge.token_ttl)))
        page = _CHALLENGE_HTML % {"request_id": html.escape(flow.request_id), "script": script}
        self._verdict(flow, "challenged")
        flow.respond(cfg.challenge.status, page.encode(), {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store, max-age=0",
            "X-Bastion-CC": "challenge",
        })

    # ---------------------------------------------------------------- bans

    async def _read_bans(self, backend: _Backend, idents: list[tuple[BanType, str]],
                         now: float) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        missing: list[tuple[BanType, str]] = []
        for ident in idents:
            cached = await self._ban_cache.get(ban_key(*ident))
            if cached is not None:
                found[ident[0]] = parse_ban(cached)
            else:
                missing.append(ident)
        if not missing:
            return found
        keys = [ban_key(*ident) for ident in missing]
        values = await backend.run(lambda s, _: _all(*(s.get(k) for k in keys)))
        for ident, key, value in zip(missing, keys, values, strict=True):
            if value is None:
                continue
            record = parse_ban(value)
            found[ident[0]] = record
            until = record.get("until")
            keep = min(self.config.ban_cache, (until - now) if isinstance(until, float | int)
                       else self.config.ban_cache)
            if keep > 0:
                await self._ban_cache.set(key, value, keep)
        return found

    async def _write_ban(self, backend: _Backend, ident: tuple[BanType, str],
                         record: dict[str, Any], duration: float, checks: list[LimitCheck],
                         cause: str, now: float) -> None:
        key = ban_key(*ident)
        data = json.dumps(record, separators=(",", ":")).encode()
        # The ban starts the count afresh: once it ends (or is lifted) the
        # client is admitted again, rather than refused by the same full window.
        stale = [k for c in checks for k in _window_keys(c, now)]

        def write(store: Store, _: bool) -> Awaitable[list[Any]]:
            return _all(store.set(key, data, duration), *(store.delete(k) for k in stale))

        await backend.run(write)
        # A ban only this process knows (the store was down) is kept for its
        # whole duration; a shared one is re-read after ban_cache seconds.
        keep = duration if backend.degraded else min(duration, self.config.ban_cache)
        if keep > 0:
            await self._ban_cache.set(key, data, keep)
        self._bans_made.labels(ident[0], cause).inc()
        shown = ident[1] if ident[0] == "ip" else f"session {ident[1][:8]}..."
        self.ctx.logger.warning("%s: banned %s %s for %gs (%s: %s)%s", PLUGIN_NAME, ident[0],
                                shown, duration, record["rule"], record["reason"],
                                " [store down: this process only]" if backend.degraded else "")

    # -------------------------------------------------------------- helpers

    def _binding(self, flow: Flow, addr: Address | None) -> str:
        c = self.config.cookie
        if addr is None:
            net = flow.client_ip
        else:
            prefix = c.bind_ipv4_prefix if isinstance(addr, ipaddress.IPv4Address) \
                else c.bind_ipv6_prefix
            net = format_network(ipaddress.ip_network((addr, prefix), strict=False)) \
                if prefix else "*"
        ua = ""
        if c.bind_user_agent:
            ua = hashlib.sha256(flow.request.headers.get("User-Agent", "").encode(
                "utf-8", "surrogateescape")).hexdigest()[:32]
        return f"{net}|{ua}"

    @staticmethod
    def _count_key(ident: tuple[BanType, str], rule: str) -> str:
        # Identity first: everything counted for one client shares a prefix.
        return f"{_COUNT_PREFIX}{ident[0]}:{ident[1]}:{rule}"

    def _issue_check(self, ip_value: str) -> LimitCheck:
        c = self.config.cookie
        return LimitCheck(self._count_key(("ip", ip_value), _ISSUE_RULE), c.issue_limit,
                          c.issue_window)

    def _degrade(self, check: LimitCheck) -> LimitCheck:
        d = self.config.fallback_divisor
        if d == 1:
            return check
        return LimitCheck(check.key, max(1, math.ceil(check.limit / d)), check.window,
                          check.cost)

    def _session_cookie(self, flow: Flow, value: str) -> str:
        c = self.config.cookie
        secure = c.secure
        if secure == "auto":
            proto = flow.request_headers.get("X-Forwarded-Proto", flow.request.scheme)
            secure = proto.lower() == "https"
        parts = [f"{c.name}={value}", "Path=/", f"Max-Age={max(1, math.floor(c.ttl))}",
                 "HttpOnly", "SameSite=Lax"]
        if secure:
            parts.append("Secure")
        return "; ".join(parts)

    def _set_cookie(self, flow: Flow, header: str) -> None:
        flow.state(self, _State).set_cookies.append(header)

    def _deny(self, flow: Flow, ban_type: str, record: dict[str, Any], now: float,
              verdict: str = "banned", fresh: bool = False) -> None:
        cfg = self.config
        until = record.get("until")
        # Rounded first: a ban of exactly 1 s must say 1, not 2, after float noise.
        retry = max(1, math.ceil(round(until - now, 3))) if isinstance(until, float | int) \
            else 1
        self._verdict(flow, verdict, by=ban_type, rule=record.get("rule"),
                      reason=record.get("reason"), new=fresh)
        headers = {"Retry-After": str(retry), "Cache-Control": "no-store"}
        r = cfg.response
        if r.body is None:
            flow.respond_error(r.status, "too many requests: temporarily blocked", headers)
        else:
            flow.respond(r.status, r.body.encode(), {**headers, "Content-Type": r.content_type})

    def _verdict(self, flow: Flow, action: str, **detail: Any) -> None:
        self._decisions.labels(action).inc()
        flow.decide(PLUGIN_NAME, action, **{k: v for k, v in detail.items() if v is not None})

    def _store_failed(self, exc: StoreError) -> None:
        self._store_errors.labels(exc.kind).inc()
        mono = time.monotonic()
        if mono - self._last_store_log >= 10.0:
            self._last_store_log = mono
            self.ctx.logger.warning("%s: store failed (%s), %s", PLUGIN_NAME, exc.kind,
                                    "limiting per process" if self.config.fail_open
                                    else "refusing requests (fail_open: false)")
        if not self.config.fail_open:
            raise _StoreDown() from exc


def _window_keys(check: LimitCheck, now: float) -> tuple[str, str]:
    """The two fixed-window keys ``Store.limit`` keeps for ``check`` at ``now``.

    Mirrors the naming both store backends use (``<key>:<window index>``).
    """
    index = math.floor(now / check.window)
    return f"{check.key}:{index}", f"{check.key}:{index - 1}"
