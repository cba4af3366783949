#!/usr/bin/env python3
"""What authentication adds to a request: each authenticator against no auth, in one run.

    python bench/auth_latency.py [--quick] [--rounds N] [--duration S] [--json PATH]

One route (``path_prefix: /`` to bench/proxy_throughput.py's upstream), served by
``bastion run`` with one worker, measured in turn with:

1. ``none``: no plugin on the route (the baseline);
2. ``key-auth``: ``X-API-Key``;
3. ``basic-auth``: Argon2id hash, default options: a verified password is cached
   per process (``cache_seconds: 300``), so the steady state measured is the cache hit;
4. ``basic-nocache``: the same with ``cache_seconds: 0``: Argon2id on every
   request (fewer connections: see ``--nocache-connections``);
5. ``jwt-rs256``: ``Authorization: Bearer``, RSA-2048 key in an inline JWKS,
   issuer and audience checked;
6. ``jwt-hs256``: the same with a 64-byte HS256 secret;
7. ``hmac-auth``: the X-Ca-* scheme (Alibaba Cloud / Higress), HmacSHA256 over
   method, Accept, path and sorted query, with a signed ``X-Ca-Timestamp`` and
   ``X-Ca-Nonce``; every request has a fresh nonce, since Bastion refuses replays.

All targets are driven the same way: ``wrk`` with one Lua script that sends
pre-built raw requests from a file, in order. For hmac-auth the file holds one
freshly signed request per request wrk will send (signed just before the wrk
run); for the others it holds the one request, sent again and again (a client
reusing its key, password or token; Bastion caches no JWT verification). The
request is proxy_throughput.py's benign browser GET plus the credential.

Per target: requests/s, latency p50/p99 under load, server CPU µs per request
(from /proc), then the same against ``none`` (per round, paired; medians over
rounds): added CPU µs per request and the ratios; plus the p50 latency on one
connection (no queueing), where the added time is visible as latency.

The server under test runs alone on CPU 1; wrk and the upstream share CPU 0.
Every process started here is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import math
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jwt
import proxy_throughput as pt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from multidict import CIMultiDict

from auth.basic_auth import hash_password
from auth.hmac_auth import ca_params, ca_string_to_sign, sign

TARGET_KEYS = ("none", "key-auth", "basic-auth", "basic-nocache", "jwt-rs256", "jwt-hs256",
               "hmac-auth")
USER = "bench-user"
ISSUER = "https://idp.bench.test/"
AUDIENCE = "bench-api"
HS_ISSUER = "bench-hs"
HMAC_KEY_ID = "bench-hmac"
HMAC_SIGNED = "x-ca-key,x-ca-nonce,x-ca-signature-method,x-ca-timestamp"
WRK_TIMEOUT = "30s"  # basic-nocache answers in hundreds of ms under load
DEFAULT_RATE = 10_000.0  # req/s assumed when sizing signed-request files before any measurement
EXHAUSTED = "BENCH-REQUESTS-EXHAUSTED"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BUSY_WARNING_PCT = 10.0  # others on the server's CPU past this: say the run is disturbed

# wrk's request driver. wrk calls request() once on its main Lua state (where
# init() never ran) to check the request: a plain GET answers that.
LUA_DRIVER = """\
-- bench/auth_latency.py: send the raw requests in the file given after --, in order.
local requests = {}
local count = 0
local index = 0
local warned = false

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while true do
    local s, e = string.find(data, "\\r\\n\\r\\n", pos, true)
    if not s then break end
    count = count + 1
    requests[count] = string.sub(data, pos, e)
    pos = e + 1
  end
  assert(count > 0, "no requests in " .. args[1])
end

function request()
  if count == 0 then
    return wrk.format("GET", "/")
  end
  index = index + 1
  if index > count then
    index = 1
    if count > 1 and not warned then
      warned = true
      io.write("BENCH-REQUESTS-EXHAUSTED\\n")
    end
  end
  return requests[index]
end
"""


# ======================================================================
# Credentials and requests.


@dataclass
class Secrets:
    """One consumer's credentials of every type, made fresh for the run."""

    api_key: str = field(default_factory=lambda: secrets.token_hex(16))
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    password_hash: str = ""
    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    other_rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    hs_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    hmac_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        if not self.password_hash:
            self.password_hash = hash_password(self.password)

    def rsa_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.rsa_key.public_key(), as_dict=True)
        return {**jwk, "kid": "bench-rs", "use": "sig", "alg": "RS256"}

    def rs256_token(self, key: rsa.RSAPrivateKey | None = None) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 7200}
        return jwt.encode(claims, key or self.rsa_key, algorithm="RS256",
                          headers={"kid": "bench-rs"})

    def hs256_token(self, secret: str | None = None) -> str:
        now = int(time.time())
        claims = {"iss": HS_ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now,
                  "exp": now + 7200}
        return jwt.encode(claims, secret or self.hs_secret, algorithm="HS256")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def hmac_headers(secret: str, target: str, base: dict[str, str]) -> dict[str, str]:
    """``base`` plus X-Ca-* headers signing a GET of ``target``, with a fresh nonce."""
    headers = dict(base)
    headers["X-Ca-Key"] = HMAC_KEY_ID
    headers["X-Ca-Signature-Method"] = "HmacSHA256"
    headers["X-Ca-Timestamp"] = str(int(time.time() * 1000))
    headers["X-Ca-Nonce"] = str(uuid.uuid4())
    headers["X-Ca-Signature-Headers"] = HMAC_SIGNED
    path, _, query = target.partition("?")
    sts = ca_string_to_sign("GET", CIMultiDict(headers), path, ca_params(query))
    headers["X-Ca-Signature"] = sign(secret, sts, "hmac-sha256")
    return headers


@dataclass
class AuthTarget:
    key: str
    label: str
    # The route's plugins.auth; None: no plugin (the baseline).
    auth: dict[str, Any] | None
    # The consumer's credentials (config form).
    credentials: list[dict[str, Any]]
    # Headers for one request to `target` (path and query): good or bad credentials.
    credential: Callable[[str], dict[str, str]]
    wrong: Callable[[str], dict[str, str]]
    unique: bool = False  # every request must be signed afresh (no replays)
    connections: int | None = None  # None: --connections

    def headers(self, target: str) -> dict[str, str]:
        return {**pt.BENCH_HEADERS, **self.credential(target)}


def make_targets(s: Secrets, nocache_connections: int) -> list[AuthTarget]:
    def none(_: str) -> dict[str, str]:
        return {}

    def const(headers: dict[str, str]) -> Callable[[str], dict[str, str]]:
        return lambda _: headers

    rs_good, rs_bad = s.rs256_token(), s.rs256_token(s.other_rsa_key)
    hs_good, hs_bad = s.hs256_token(), s.hs256_token(secrets.token_urlsafe(48))
    basic_cred = {"id": "bench-basic", "type": "basic-auth", "username": USER,
                  "password_hash": s.password_hash}
    good_basic = const({"Authorization": basic(USER, s.password)})
    bad_basic = const({"Authorization": basic(USER, s.password + "x")})
    return [
        AuthTarget("none", "no auth", None, [], none, none),
        AuthTarget("key-auth", "key-auth (X-API-Key)", {"any_of": ["key-auth"]},
                   [{"id": "bench-key", "type": "key-auth", "key": s.api_key}],
                   const({"X-API-Key": s.api_key}), const({"X-API-Key": s.api_key[::-1]})),
        AuthTarget("basic-auth", "basic-auth (Argon2id, cached: steady state = cache hit)",
                   {"any_of": ["basic-auth"]}, [basic_cred], good_basic, bad_basic),
        AuthTarget("basic-nocache",
                   f"basic-auth, cache_seconds 0 (Argon2id every request), "
                   f"{nocache_connections} conns",
                   {"any_of": ["basic-auth"], "basic-auth": {"cache_seconds": 0}},
                   [basic_cred], good_basic, bad_basic, connections=nocache_connections),
        AuthTarget("jwt-rs256", "jwt-auth RS256 (RSA-2048, inline JWKS)", {"any_of": ["jwt-auth"]},
                   [{"id": "bench-rs", "type": "jwt-auth", "jwks": {"keys": [s.rsa_jwk()]},
                     "issuer": ISSUER, "audience": AUDIENCE, "algorithms": ["RS256"]}],
                   const({"Authorization": f"Bearer {rs_good}"}),
                   const({"Authorization": f"Bearer {rs_bad}"})),
        AuthTarget("jwt-hs256", "jwt-auth HS256", {"any_of": ["jwt-auth"]},
                   [{"id": "bench-hs", "type": "jwt-auth", "secret": s.hs_secret,
                     "issuer": HS_ISSUER, "audience": AUDIENCE, "algorithms": ["HS256"]}],
                   const({"Authorization": f"Bearer {hs_good}"}),
                   const({"Authorization": f"Bearer {hs_bad}"})),
        AuthTarget("hmac-auth", "hmac-auth X-Ca (HmacSHA256, nonce per request)",
                   {"any_of": ["hmac-auth"]},
                   [{"id": "bench-hmac", "type": "hmac-auth", "key_id": HMAC_KEY_ID,
                     "secret": s.hmac_secret}],
                   lambda t: hmac_headers(s.hmac_secret, t, pt.BENCH_HEADERS),
                   lambda t: hmac_headers(s.hmac_secret + "x", t, pt.BENCH_HEADERS),
                   unique=True),
    ]


def raw_request(host: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# ======================================================================
# Measurement.


@dataclass
class Measurement:
    key: str
    label: str
    round: int
    connections: int
    load: pt.Load
    cpu_us_per_req: float
    upstream_cpu_us_per_req: float
    host_busy_pct: float
    host_steal_pct: float
    single: pt.Load | None  # one connection: latency without queueing
    # With pinning: busy time of the server's CPU not spent by the server (others, softirq).
    server_cpu_others_pct: float = float("nan")
    requests_exhausted: bool = False


def cpu_ticks(cpu: int) -> tuple[int, int]:
    """(busy in processes, total) clock ticks of one CPU, from /proc/stat.

    Busy counts user, nice and system time: interrupts and softirqs (loopback
    networking, partly the server's own) are not charged to any process.
    """
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                values = [int(x) for x in line.split()[1:]]
                return values[0] + values[1] + values[2], sum(values[:8])
    return 0, 0


def wait_idle(pid: int, timeout: float = 60.0) -> None:
    """Until the server's process tree uses (almost) no CPU: leftovers of a run are done."""
    deadline = time.monotonic() + timeout
    before = sum(pt.tree_cpu_seconds(pid).values())
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = sum(pt.tree_cpu_seconds(pid).values())
        if now - before <= 0.011:  # at most one clock tick in 0.25 s
            return
        before = now


class AuthBench:
    def __init__(self, args: argparse.Namespace, procs: pt.Processes, workdir: Path) -> None:
        self.args = args
        self.procs = procs
        self.workdir = workdir
        self.base = pt.Bench(args, procs, workdir)  # upstream, CPU layout
        self.wrk = shutil.which("wrk") or ""
        self.lua = workdir / "driver.lua"
        self.lua.write_text(LUA_DRIVER)
        print("# generating keys and an Argon2id hash ...", flush=True)
        self.secrets = Secrets()
        self.targets = make_targets(self.secrets, args.nocache_connections)
        if args.only:
            wanted = args.only.split(",")
            self.targets = [t for t in self.targets if t.key in wanted]
        self.results: list[Measurement] = []
        self.max_rps = 0.0

    # -- processes

    def start_bastion(self, target: AuthTarget) -> tuple[pt.Managed, str]:
        port, admin = pt.free_port(), pt.free_port()
        route: dict[str, Any] = {"name": "all", "match": {"path_prefix": "/"}, "service": "up"}
        if target.auth is not None:
            route["plugins"] = {"auth": target.auth}
        config: dict[str, Any] = {
            "access_log": {"enabled": False},
            "limits": {"shutdown_grace": "2s"},
            "services": {"up": {"endpoints": [{"url": self.base.upstream_url}]}},
            "consumers": ([{"name": USER, "credentials": target.credentials}]
                          if target.credentials else []),
            "routes": [route],
        }
        config_path = self.workdir / f"{target.key}.yaml"
        config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
        managed = self.procs.start(target.key, [
            self.args.bastion, "run", "-c", str(config_path),
            "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--workers", "1",
        ], self.base.cpus("server", False))
        pt.wait_ready(managed, f"http://127.0.0.1:{admin}/readyz")
        return managed, f"http://127.0.0.1:{port}"

    def check(self, target: AuthTarget, url: str) -> None:
        """The route answers with the upstream's body, and only to a good credential."""
        def fail(what: str) -> RuntimeError:
            return RuntimeError(f"{target.key}: {what}")

        status, _, body = pt.http_get(url + pt.BENCH_PATH, target.headers(pt.BENCH_PATH))
        if status != 200 or body != pt.UPSTREAM_BODY:
            raise fail(f"bad answer to the bench request: {status}, {body[:200]!r}")
        if target.auth is None:
            return
        status, _, _ = pt.http_get(url + pt.BENCH_PATH, pt.BENCH_HEADERS)
        if status != 401:
            raise fail(f"no credential got {status}, not 401")
        status, _, _ = pt.http_get(url + pt.BENCH_PATH,
                                   {**pt.BENCH_HEADERS, **target.wrong(pt.BENCH_PATH)})
        if status != 401:
            raise fail(f"a wrong credential got {status}, not 401")
        probe = target.headers(pt.PROBE_PATH)
        status, _, body = pt.http_get(url + pt.PROBE_PATH, probe)
        seen = {k.lower(): v for k, v in json.loads(body)} if status == 200 else {}
        if seen.get("x-consumer-username") != USER:
            raise fail(f"upstream did not see the consumer ({status}): {seen}")
        if target.unique:
            status, _, _ = pt.http_get(url + pt.PROBE_PATH, probe)
            if status != 401:
                raise fail(f"a replayed signed request got {status}, not 401")

    # -- load

    def request_file(self, target: AuthTarget, host: str, count: int) -> Path:
        path = self.workdir / f"requests-{target.key}.http"
        with open(path, "wb") as f:
            if not target.unique:
                f.write(raw_request(host, pt.BENCH_PATH, target.headers(pt.BENCH_PATH)))
            else:
                for _ in range(count):
                    f.write(raw_request(host, pt.BENCH_PATH, target.headers(pt.BENCH_PATH)))
        return path

    def wrk_run(self, target: AuthTarget, url: str, seconds: float, connections: int,
                rate: float) -> tuple[pt.Load, bool]:
        secs = max(1, round(seconds))
        count = int(rate * 1.5 * secs) + 2000 if target.unique else 1
        requests = self.request_file(target, url.removeprefix("http://"), count)
        argv = [self.wrk, "-t1", f"-c{connections}", f"-d{secs}s", "--latency",
                "--timeout", WRK_TIMEOUT, "-s", str(self.lua), url + "/", "--", str(requests)]
        managed = self.procs.start("wrk", argv, self.base.cpus("loadgen", False))
        try:
            managed.proc.wait(secs + 60)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"wrk did not finish:\n{managed.log_tail()}") from None
        finally:
            self.procs.stop(managed)
            requests.unlink(missing_ok=True)
        output = managed.log_path.read_text(errors="replace")
        managed.log_path.unlink(missing_ok=True)
        if managed.proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({managed.proc.returncode}):\n{output}")
        return pt.parse_wrk(output), EXHAUSTED in output

    def measure(self, target: AuthTarget, round_no: int) -> Measurement:
        assert self.base.upstream is not None
        managed, url = self.start_bastion(target)
        connections = target.connections or self.args.connections
        rate = self.max_rps or DEFAULT_RATE
        try:
            self.check(target, url)
            if self.args.warmup > 0:
                warm, _ = self.wrk_run(target, url, self.args.warmup, connections, rate)
                rate = max(warm.rps, self.max_rps, 1.0)
            wait_idle(managed.pid)
            server_before = pt.tree_cpu_seconds(managed.pid)
            up_before = pt.tree_cpu_seconds(self.base.upstream.pid)
            host_before = pt.host_cpu_ticks()
            cpu1_before = cpu_ticks(1)
            load, exhausted = self.wrk_run(target, url, self.args.duration, connections, rate)
            busy, steal = pt.host_busy(host_before, pt.host_cpu_ticks())
            cpu1_after = cpu_ticks(1)
            server_cpu = pt.cpu_delta(server_before, pt.tree_cpu_seconds(managed.pid))
            others = float("nan")
            window = (cpu1_after[1] - cpu1_before[1]) / CLK_TCK
            if self.base.pin and window > 0:
                cpu1_busy = (cpu1_after[0] - cpu1_before[0]) / CLK_TCK
                others = 100.0 * max(0.0, cpu1_busy - server_cpu) / window
            up_cpu = pt.cpu_delta(up_before, pt.tree_cpu_seconds(self.base.upstream.pid))
            single = None
            if self.args.single_duration > 0:
                wait_idle(managed.pid)
                single, ex1 = self.wrk_run(target, url, self.args.single_duration, 1,
                                           max(load.rps, rate))
                exhausted = exhausted or ex1
            if managed.proc.poll() is not None:
                raise RuntimeError(f"{target.key} died during the run:\n{managed.log_tail()}")
        finally:
            self.procs.stop(managed)
        self.max_rps = max(self.max_rps, load.rps)
        per_req = 1e6 / load.requests if load.requests else float("nan")
        return Measurement(target.key, target.label, round_no, connections, load,
                           server_cpu * per_req, up_cpu * per_req, busy, steal, single,
                           others, exhausted)

    def run(self) -> list[Measurement]:
        self.base.start_upstream()
        assert self.base.upstream is not None
        if self.base.pin:
            pt.set_tree_affinity(self.base.upstream.pid, {0})
        for round_no in range(1, self.args.rounds + 1):
            for target in self.targets:
                m = self.measure(target, round_no)
                self.results.append(m)
                single = (f"1-conn p50 {m.single.p50_ms * 1000:6.0f} us  "
                          if m.single else "")
                print(f"  [round {round_no}] {m.key:14} {m.load.rps:6.0f} req/s  "
                      f"p50 {m.load.p50_ms:7.2f} ms  p99 {m.load.p99_ms:7.2f} ms  "
                      f"CPU {m.cpu_us_per_req:6.0f} us/req  {single}"
                      f"host busy {m.host_busy_pct:3.0f}%  "
                      + ("" if math.isnan(m.server_cpu_others_pct) else
                         f"others on CPU 1 {m.server_cpu_others_pct:3.0f}%")
                      + (f"  errors {m.load.errors + m.load.non2xx}"
                         if m.load.errors + m.load.non2xx else "")
                      + ("  REQUEST LIST EXHAUSTED" if m.requests_exhausted else ""),
                      flush=True)
        return self.results


# ======================================================================
# Report.


def _median(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else float("nan")


@dataclass
class Row:
    key: str
    label: str
    connections: int
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    upstream_cpu_us: float
    single_p50_us: float
    single_p99_us: float
    # Against `none` in the same round, medians over rounds.
    added_cpu_us: float
    cpu_ratio: float  # target CPU per request / none's (above 1: costs more)
    rps_ratio: float  # target req/s / none's
    added_single_p50_us: float
    errors: int
    exhausted: bool


def summarize(results: list[Measurement]) -> list[Row]:
    base = {m.round: m for m in results if m.key == "none"}
    nan = float("nan")
    rows: list[Row] = []
    for key in dict.fromkeys(m.key for m in results):
        ms = [m for m in results if m.key == key]
        paired = [(m, base[m.round]) for m in ms if m.round in base]

        def single(m: Measurement, which: str) -> float:
            if m.single is None:
                return nan
            return float(getattr(m.single, which)) * 1000

        rows.append(Row(
            key, ms[0].label, ms[0].connections, len(ms),
            _median([m.load.rps for m in ms]), _median([m.load.p50_ms for m in ms]),
            _median([m.load.p99_ms for m in ms]), _median([m.cpu_us_per_req for m in ms]),
            _median([m.upstream_cpu_us_per_req for m in ms]),
            _median([single(m, "p50_ms") for m in ms]),
            _median([single(m, "p99_ms") for m in ms]),
            _median([m.cpu_us_per_req - b.cpu_us_per_req for m, b in paired]),
            _median([m.cpu_us_per_req / b.cpu_us_per_req for m, b in paired
                     if b.cpu_us_per_req]),
            _median([m.load.rps / b.load.rps for m, b in paired if b.load.rps]),
            _median([single(m, "p50_ms") - single(b, "p50_ms") for m, b in paired]),
            sum(m.load.errors + m.load.non2xx for m in ms),
            any(m.requests_exhausted for m in ms),
        ))
    return rows


def fmt_ratio(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if v >= 100:
        return f"{v:,.0f}x"
    return f"{v:.2f}x" if v >= 0.1 else f"{v:.2g}x"


def format_table(rows: list[Row]) -> str:
    def num(v: float, fmt: str, signed: bool = False) -> str:
        if math.isnan(v):
            return "-"
        return format(v, ("+" if signed else "") + fmt)

    def ratio(v: float) -> str:
        return "-" if math.isnan(v) else fmt_ratio(v)

    lines = [
        "| target | conns | req/s | p50 ms | p99 ms | CPU µs/req | added CPU µs/req | "
        "CPU/req vs none | req/s vs none | 1-conn p50 µs | added 1-conn p50 µs | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = r.key == "none"
        lines.append(
            f"| {r.label} | {r.connections} | {num(r.rps, '.0f')} | {num(r.p50_ms, '.2f')} | "
            f"{num(r.p99_ms, '.2f')} | {num(r.cpu_us, ',.0f')} | "
            f"{'-' if base else num(r.added_cpu_us, ',.0f', True)} | "
            f"{'-' if base else ratio(r.cpu_ratio)} | "
            f"{'-' if base else ratio(r.rps_ratio)} | "
            f"{num(r.single_p50_us, ',.0f')} | "
            f"{'-' if base else num(r.added_single_p50_us, ',.0f', True)} | "
            f"{r.errors}{' (request list exhausted)' if r.exhausted else ''} |")
    return "\n".join(lines)


def format_summary(rows: list[Row]) -> str:
    out: list[str] = []
    for r in rows:
        if r.key == "none" or math.isnan(r.added_cpu_us):
            continue
        out.append(f"- {r.key}: {r.added_cpu_us:+,.0f} µs of server CPU per request "
                   f"({fmt_ratio(r.cpu_ratio)} no auth's), {fmt_ratio(r.rps_ratio)} its req/s"
                   + ("" if math.isnan(r.added_single_p50_us) else
                      f"; one connection: p50 {r.added_single_p50_us:+,.0f} µs"))
    return "\n".join(out)


NOTES = """\
notes:
- "added CPU µs/req" and the "vs none" ratios are per round against `none` measured in the
  same round, then the median over rounds; the other columns are medians.
- p50/p99 are under load ({conns} connections, queueing included); the 1-conn p50 is one
  request at a time, so its difference to `none` is the added latency a lone client sees.
- basic-auth caches a verified password per process (cache_seconds, default 300 s) under a
  keyed digest: the steady state measured is the cache hit. basic-nocache pays Argon2id
  (the hash's own parameters; `bastion hash-password` uses 19 MiB, 2 passes, 1 lane) on
  every request, and so does every wrong password and unknown user (a dummy hash).
- hmac-auth: X-Ca scheme, HmacSHA256; each request carries a fresh X-Ca-Nonce and
  X-Ca-Timestamp, pre-signed just before each wrk run and sent once (replays are refused:
  the check verifies a second send gets 401); its cost includes the replay-store write.
- JWT tokens are reused across requests, as clients do; jwt-auth remembers a verified token
  for up to a minute (never past exp), so the steady state measured is that lookup."""


# ======================================================================
# Entry point.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of measured load per target (default 10; 3 with --quick)")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds of unmeasured load before each (default 2; 1 with --quick)")
    p.add_argument("--single-duration", type=float, default=None,
                   help="seconds of one-connection load per target for unloaded latency, "
                        "0 to skip (default 3; 1 with --quick)")
    p.add_argument("--connections", type=int, default=64, help="concurrent connections")
    p.add_argument("--nocache-connections", type=int, default=8,
                   help="connections for basic-nocache (Argon2id per request; default 8)")
    p.add_argument("--rounds", type=int, default=None,
                   help="measure every target this many times, interleaved; medians "
                        "(default 3; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 3 s per target")
    p.add_argument("--only", help="comma-separated target keys: " + ",".join(TARGET_KEYS))
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the server to CPU 1 and wrk and the upstream to CPU 0")
    p.add_argument("--bastion", default=None, help="the bastion executable")
    p.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = p.parse_args(argv)
    pt.check_only(p, args.only, TARGET_KEYS)
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    if args.single_duration is None:
        args.single_duration = 1.0 if args.quick else 3.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1 or args.connections < 1 or args.nocache_connections < 1:
        p.error("--rounds and the connection counts must be at least 1")
    args.bastion = pt.find_bastion(args.bastion)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.bastion:
        print("cannot find the bastion executable (use --bastion)", file=sys.stderr)
        return 2
    if not shutil.which("wrk"):
        print("this benchmark needs wrk (with Lua): apt-get install wrk", file=sys.stderr)
        return 2
    pt.exit_on_signals()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-auth-bench-"))
    procs = pt.Processes(workdir)
    started = datetime.datetime.now(datetime.UTC)
    revision = pt.source_revision("auth", "proxy")
    print(f"# auth latency, {started:%Y-%m-%d %H:%M} UTC; {pt.machine_description()}")
    print(f"# bastion: {args.bastion} at {revision}")
    try:
        bench = AuthBench(args, procs, workdir)
        print(f"# {args.duration:g} s per target after {args.warmup:g} s warm-up, "
              f"{args.connections} connections (basic-nocache {args.nocache_connections}), "
              f"then {args.single_duration:g} s on 1 connection; {args.rounds} round(s), "
              f"pinning {'on' if bench.base.pin else 'off'}; wrk -t1 with a Lua request "
              f"driver for every target", flush=True)
        results = bench.run()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = summarize(results)
    print(f"\nGET {pt.BENCH_PATH} with proxy_throughput.py's browser headers plus the "
          f"credential; one route, `bastion run --workers 1`\n")
    print(format_table(rows))
    summary = format_summary(rows)
    if summary:
        print("\nagainst no auth:\n" + summary)
    print("\n" + NOTES.format(conns=args.connections))
    disturbed = [m for m in results if m.server_cpu_others_pct > BUSY_WARNING_PCT]
    if disturbed:
        share = [m.server_cpu_others_pct for m in disturbed]
        which = ("every measurement" if len(disturbed) == len(results) else
                 ", ".join(f"{m.key} (round {m.round})" for m in disturbed))
        print(f"\nWARNING: other processes took {min(share):.0f}-{max(share):.0f}% of the "
              f"server's CPU (CPU 1) during {which}: the machine was not quiet. req/s and "
              "latencies are disturbed most; CPU per request less (it counts only the "
              "server's own time).")
    if any(r.exhausted for r in rows):
        print("\nWARNING: a signed-request list ran out and requests were replayed (401s): "
              "its figures are off; re-run.")
    if args.json is not None:
        args.json.write_text(json.dumps(pt._no_nan({
            "date": started.isoformat(), "machine": pt.machine_description(),
            "revision": revision, "argv": sys.argv,
            "rows": [asdict(r) for r in rows], "runs": [asdict(m) for m in results],
        }), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
