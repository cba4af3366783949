#!/usr/bin/env python3
"""CPU cost of WAF inspection per request: Bastion's engine against ModSecurity v3, CRS v4.

    python bench/waf_inspect.py [--quick] [--crs PATH] [--paranoia 1,2] [--profile get]
    python bench/waf_inspect.py --gateway      # also req/s through the gateway, WAF on vs off

In-process, no network. For each paranoia level, both engines load the same
rules once: Bastion's host base (``waf.engine.HOST_BASE``: request body access,
the JSON/XML body-processor rules, the body-error rules), ``SecRuleEngine On``,
the paranoia ``SecAction`` (``tx.blocking_paranoia_level``), then CRS as shipped:
``crs-setup.conf.example`` and ``rules/*.conf``. ModSecurity is libmodsecurity
3.0.x through the PyPI binding ``libmodsecurity`` (``pip install
libmodsecurity``); without it, only Bastion is measured.

Five requests, each inspected the way a connector does it (connection, URI,
headers, phase 1; body, phase 2 unless phase 1 blocked; phase 5):

1. ``get``: a GET with 5 query arguments and browser headers;
2. ``form``: a ~1 KB urlencoded form POST of 13 fields;
3. ``json``: a ~4 KB JSON POST;
4. ``attack``: a GET with SQL injection and XSS in its arguments;
5. ``tokens``: a ~3 KB form of random tokens (a JWT, OAuth state, an API key,
   a base64 avatar), the input a prefilter set's lazy DFA handles worst.

Every measured inspection gets a fresh variant of its request: the session
cookie, the search term, the CSRF token and the order id are made unique (see
``vary``), as they are in real traffic, so Bastion's cache of short values seen
before (``waf.rules.ValueCache``) helps only where real traffic would let it.

Before measuring, both engines must block the attack (403) and pass the others;
the rule ids each logged are printed. The cost is ``time.process_time`` over a
fixed number of inspections after a warm-up, the engines interleaved, repeated
and reported as medians: CPU µs per request, requests/s on one core, and the
ratio Bastion / ModSecurity (below 1 means Bastion is cheaper).

``--gateway`` additionally runs ``bastion run`` (one worker) with and without the
``waf`` plugin (CRS at paranoia 1) under wrk, using bench/proxy_throughput.py's
upstream, load generator and CPU accounting.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import datetime
import gc
import hashlib
import itertools
import json
import os
import pstats
import random
import shutil
import statistics
import string
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import proxy_throughput as pt

from proxy.worker import settle_gc
from waf.engine import HOST_BASE, build_ruleset
from waf.transaction import Transaction

if TYPE_CHECKING:
    import libmodsecurity

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CRS = REPO.parent / "shared" / "crs"
CLIENT = ("192.0.2.10", 51324)
SERVER = ("127.0.0.1", 8080)
GET_BUDGET_US = 200.0  # DESIGN.md: a benign GET at paranoia 1

# ======================================================================
# The requests.

BROWSER_HEADERS: tuple[tuple[str, str], ...] = (
    ("Host", "shop.example.com"),
    ("User-Agent", pt.BENCH_HEADERS["User-Agent"]),
    ("Accept", pt.BENCH_HEADERS["Accept"]),
    ("Accept-Language", pt.BENCH_HEADERS["Accept-Language"]),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Cookie", pt.BENCH_HEADERS["Cookie"]),
)

FORM_FIELDS: tuple[tuple[str, str], ...] = (
    ("csrf_token", "k3J9xQ2mV7pL0aRt8YwE5uN1cB6dH4sGq9ZfT2vW"),
    ("first_name", "Margaret"),
    ("last_name", "Hamilton-Okafor"),
    ("email", "margaret.hamilton@example.org"),
    ("phone", "+44 20 7946 0958"),
    ("company", "Larkspur Garden Supplies Ltd"),
    ("address_line1", "221 Larkspur Avenue"),
    ("address_line2", "Unit 4, Riverside Business Park"),
    ("city", "Cambridge"),
    ("postal_code", "CB4 1DH"),
    ("country", "GB"),
    ("newsletter", "on"),
    ("message", (
        "Hello, we would like to order twelve of the folding teak chairs and four matching "
        "tables for our cafe terrace before the end of next month. Could you tell us whether "
        "the chairs are available in the darker oil finish shown in the spring catalogue, and "
        "whether you offer a discount for trade customers buying in this quantity? We would "
        "also need delivery to the rear entrance on a weekday morning, as the street at the "
        "front is closed to vans until noon. Our previous order arrived in good condition and "
        "the assembly instructions were clear, so thank you for that. Please send a quote "
        "with the delivery charge included to the address above. Kind regards, Margaret"
    )),
)

_PRODUCTS = (
    ("GD-1042-TK", "Folding garden chair, teak", "49.90"),
    ("GD-2210-TK", "Garden table, teak, 120 cm", "219.00"),
    ("GD-0831-GR", "Seat cushion, water-repellent, green", "19.50"),
    ("LT-4410-WW", "Solar string lights, warm white, 10 m", "24.95"),
    ("PL-0092-TC", "Terracotta planter, 40 cm", "32.00"),
    ("TL-7781-ST", "Pruning shears, stainless steel", "27.40"),
)


def _json_order() -> bytes:
    items = []
    for i in range(11):
        sku, name, price = _PRODUCTS[i % len(_PRODUCTS)]
        items.append({
            "line": i + 1, "sku": sku, "name": name, "quantity": 1 + i % 4,
            "unit_price": price, "currency": "EUR",
            "options": {"gift_wrap": i % 5 == 0, "colour": ("natural", "green", "grey")[i % 3]},
            "warehouse": "DE-HAM-02", "estimated_dispatch": f"2026-12-{3 + i % 7:02d}",
        })
    order = {
        "order_id": "ORD-2026-118204", "created_at": "2026-11-26T09:41:17Z",
        "customer": {"id": 88213, "first_name": "Margaret", "last_name": "Hamilton-Okafor",
                     "email": "margaret.hamilton@example.org", "phone": "+44 20 7946 0958",
                     "loyalty_tier": "gold", "marketing_opt_in": True},
        "shipping": {"name": "Larkspur Garden Supplies Ltd", "line1": "221 Larkspur Avenue",
                     "line2": "Unit 4, Riverside Business Park", "city": "Cambridge",
                     "postal_code": "CB4 1DH", "country": "GB", "method": "standard",
                     "instructions": "Rear entrance, weekday mornings only"},
        "billing": {"same_as_shipping": True, "vat_id": "GB123456789"},
        "items": items,
        "payment": {"method": "card", "token": "tok_1QbX9ZLkdIwHu7ixq0Hz3mVs",
                    "amount": "1284.55", "currency": "EUR"},
        "coupon": "SPRING-TRADE-10",
        "notes": "Please deliver the chairs and tables together; the cushions can follow.",
    }
    return json.dumps(order, indent=1).encode()


@dataclass(frozen=True)
class BenchRequest:
    key: str
    label: str
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    attack: bool = False
    # The same headers as bytes, as the waf plugin hands them over (aiohttp's raw_headers).
    raw_headers: tuple[tuple[bytes, bytes], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw_headers", tuple(
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers))


def post_request(key: str, label: str, uri: str, ctype: str, body: bytes) -> BenchRequest:
    headers = (*BROWSER_HEADERS, ("Content-Type", ctype), ("Content-Length", str(len(body))))
    return BenchRequest(key, label, "POST", uri, headers, body)


def _token_form(seed: int) -> bytes:
    """A sign-in callback's form: an OAuth access token (JWT), state, API key, avatar.

    Random tokens are what a prefilter set's lazy DFA handles worst (a new
    state at nearly every byte), and real traffic is full of them.
    """
    rnd = random.Random(seed)

    def b64url(n: int) -> str:
        return base64.urlsafe_b64encode(rnd.randbytes(n)).decode().rstrip("=")

    return urlencode((
        ("access_token", f"{b64url(27)}.{b64url(180)}.{b64url(256)}"),
        ("state", b64url(32)),
        ("api_key", "sk_live_" + "".join(rnd.choice(_BASE62) for _ in range(40))),
        ("device_id", str(uuid.UUID(bytes=rnd.randbytes(16), version=4))),
        ("avatar", base64.b64encode(rnd.randbytes(1536)).decode()),
        ("remember_me", "on"),
    )).encode()


_BASE62 = string.ascii_letters + string.digits


def bench_requests() -> list[BenchRequest]:
    get_args = (("category", "books"), ("sort", "price_asc"), ("page", "2"),
                ("q", "garden chairs"), ("per_page", "24"))
    attack_args = (("q", "1' UNION SELECT username, password FROM users--"),
                   ("comment", "<script>alert(document.cookie)</script>"), ("page", "1"))
    form = urlencode(FORM_FIELDS).encode()
    order = _json_order()
    tokens = _token_form(0)
    return [
        BenchRequest("get", "GET, 5 args, browser headers", "GET",
                     "/api/v1/products?" + urlencode(get_args), BROWSER_HEADERS),
        post_request("form", f"POST form, 13 fields, {len(form)} B", "/account/contact",
              "application/x-www-form-urlencoded", form),
        post_request("json", f"POST JSON, {len(order)} B", "/api/v1/orders",
              "application/json", order),
        BenchRequest("attack", "GET, SQLi + XSS in args", "GET",
                     "/search?" + urlencode(attack_args, quote_via=quote), BROWSER_HEADERS,
                     attack=True),
        post_request("tokens", f"POST form, random tokens, {len(tokens)} B", "/oauth/callback",
              "application/x-www-form-urlencoded", tokens),
    ]


# ======================================================================
# The engines.


@dataclass
class Outcome:
    status: int | None  # the interruption's status, None when the request passed
    rule_id: int | None  # the rule that interrupted, where the engine says
    logged: list[tuple[int, int]]  # (phase, rule id) of every logged match, in order

    def ids(self, phases: Sequence[int] = (1, 2, 3, 4, 5)) -> list[int]:
        return [rid for phase, rid in self.logged if phase in phases]


class BastionEngine:
    name = "Bastion"

    def __init__(self, crs: Path, paranoia: int) -> None:
        t0 = time.process_time()
        self.ruleset = build_ruleset(engine="On", paranoia=paranoia, crs=crs)
        self.load_seconds = time.process_time() - t0
        # As a gateway worker runs: the rule set frozen out of the cyclic GC,
        # young collections less often (proxy.worker.settle_gc).
        settle_gc()
        self.rule_count = sum(1 for r in self.ruleset.rules if r.marker is None)

    def inspect(self, req: BenchRequest) -> Transaction:
        """One request through phases 1, 2 and 5, as the waf plugin drives it."""
        tx = Transaction(self.ruleset)
        tx.process_connection(CLIENT[0], CLIENT[1], SERVER[0], SERVER[1])
        tx.process_uri(req.uri, req.method, "HTTP/1.1")
        for name, value in req.raw_headers:
            tx.add_request_header(name, value)
        if tx.process_request_headers() is None:
            tx.process_request_body(req.body)
        tx.process_logging()
        return tx

    def run(self, req: BenchRequest) -> None:
        self.inspect(req)

    def outcome(self, req: BenchRequest) -> Outcome:
        tx = self.inspect(req)
        it = tx.interruption
        return Outcome(it.status if it else None, it.rule_id if it else None,
                       [(m.phase, m.id) for m in tx.logged_rules])


def _discard(message: str) -> None:
    """ModSecurity's server log: without a callback it prints every match to stderr."""


class ModSecurityEngine:
    name = "ModSecurity"

    def __init__(self, crs: Path, paranoia: int) -> None:
        import libmodsecurity  # an optional dependency: ImportError is handled by the caller

        self.lib = libmodsecurity
        t0 = time.process_time()
        self.modsec = libmodsecurity.ModSecurity()
        self.modsec.set_connector_information("bastion-bench/waf_inspect")
        self.modsec.set_log_callback(_discard)
        self.rules = libmodsecurity.RulesSet()
        # What build_ruleset(engine="On", paranoia=N, crs=...) assembles, in the same order.
        host = (HOST_BASE + "\nSecRuleEngine On\nSecResponseBodyAccess Off\n"
                "SecAuditEngine Off\n"
                f'SecAction "id:900000,phase:1,pass,t:none,nolog,'
                f'setvar:tx.blocking_paranoia_level={paranoia}"\n')
        count = self._check(self.rules.load(host), "<host config>")
        setup = crs / "crs-setup.conf.example"
        for path in [setup, *sorted((crs / "rules").glob("*.conf"))]:
            count += self._check(self.rules.load_from_uri(str(path)), str(path))
        self.load_seconds = time.process_time() - t0
        self.rule_count = count
        self.version = self.modsec.who_am_i()

    def _check(self, loaded: int, what: str) -> int:
        if loaded < 0:
            raise RuntimeError(f"ModSecurity cannot load {what}: {self.rules.get_parser_error()}")
        return loaded

    def inspect(self, req: BenchRequest
                ) -> tuple[libmodsecurity.Transaction, libmodsecurity.Intervention | None]:
        """The same request the way a connector (ModSecurity-nginx) drives it."""
        t = self.lib.Transaction(self.modsec, self.rules)
        t.process_connection(CLIENT[0], CLIENT[1], SERVER[0], SERVER[1])
        t.process_uri(req.uri, req.method, "1.1")
        for name, value in req.headers:
            t.add_request_header(name, value)
        t.process_request_headers()
        it = t.intervention()
        if it is None or not it.disruptive:
            if req.body:
                t.append_request_body(req.body)
            t.process_request_body()
            it = t.intervention()
        t.process_logging()
        return t, it

    def run(self, req: BenchRequest) -> None:
        self.inspect(req)

    def outcome(self, req: BenchRequest) -> Outcome:
        t, it = self.inspect(req)
        blocked = it is not None and it.disruptive
        return Outcome(it.status if it is not None and blocked else None, None,
                       [(m.phase, m.rule_id) for m in t.get_rule_messages()])


Engine = BastionEngine | ModSecurityEngine


# ======================================================================
# Measuring.


_variant_counter = itertools.count(1)


def vary(req: BenchRequest) -> BenchRequest:
    """``req`` with the values that differ between real requests made unique.

    Real traffic repeats its header values (a browser sends the same
    User-Agent and Accept on every request) but not everything: session
    ids, CSRF tokens, search terms and order ids change. Every measured
    inspection gets such a fresh variant, so a cache of values seen before
    helps only where real traffic would let it.
    """
    n = next(_variant_counter)
    token = hashlib.sha256(str(n).encode()).hexdigest()
    uri = (req.uri.replace("garden+chairs", f"garden+chairs+{n}")
           .replace("page=1", f"page={n}"))
    body = (req.body.replace(b"k3J9xQ2mV7pL0aRt8YwE5uN1cB6dH4sGq9ZfT2vW", token[:40].encode())
            .replace(b"ORD-2026-118204", f"ORD-2026-{n % 1000000:06d}".encode())
            .replace(b"tok_1QbX9ZLkdIwHu7ixq0Hz3mVs", f"tok_{token[:24]}".encode()))
    if req.key == "tokens":
        body = _token_form(n)
    headers = []
    for name, value in req.headers:
        if name == "Cookie":
            value = value.replace("6f1c0a9e2b7d4c38a5e1f0b9d2c7a4e3", token[:32])
        elif name == "Content-Length":
            value = str(len(body))
        headers.append((name, value))
    return replace(req, uri=uri, headers=tuple(headers), body=body)


def cpu_us_per_request(run: Callable[[BenchRequest], None], req: BenchRequest,
                       iterations: int) -> float:
    variants = [vary(req) for _ in range(iterations)]
    gc.collect()
    t0 = time.process_time()
    for variant in variants:
        run(variant)
    return (time.process_time() - t0) / iterations * 1e6


@dataclass
class Cell:
    paranoia: int
    request: BenchRequest
    samples: dict[str, list[float]] = field(default_factory=dict)  # engine -> µs per rep

    def median(self, engine: str) -> float:
        values = self.samples.get(engine)
        return statistics.median(values) if values else float("nan")

    def spread(self, engine: str) -> str:
        values = self.samples.get(engine)
        return f"{min(values):.0f}-{max(values):.0f}" if values else "-"


def sanity(engines: Sequence[Engine], requests: Sequence[BenchRequest],
           paranoia: int) -> list[str]:
    """Attack blocked with 403 and the rest passed, by every engine; returns the failures."""
    failures: list[str] = []
    for req in requests:
        outcomes = {e.name: e.outcome(req) for e in engines}
        for name, out in outcomes.items():
            verdict = f"blocked {out.status}" if out.status is not None else "passed"
            if out.rule_id is not None:
                verdict += f" by {out.rule_id}"
            print(f"  PL{paranoia} {req.key:7} {name:12} {verdict:18} logged: "
                  f"{' '.join(map(str, out.ids())) or '-'}")
            if req.attack and out.status != 403:
                failures.append(f"PL{paranoia} {req.key}: {name} did not block it ({verdict})")
            if not req.attack and out.status is not None:
                failures.append(f"PL{paranoia} {req.key}: {name} blocked a benign request "
                                f"(rules {out.ids()})")
        if len(outcomes) == 2:
            b_out, m_out = outcomes.values()
            for label, phases in (("phases 1-2", (1, 2)), ("phases 3-5", (3, 4, 5))):
                b_ids, m_ids = set(b_out.ids(phases)), set(m_out.ids(phases))
                if b_ids != m_ids:
                    print(f"  PL{paranoia} {req.key:7} {label} differ: only Bastion "
                          f"{sorted(b_ids - m_ids)}, only ModSecurity {sorted(m_ids - b_ids)}")
                elif b_ids:
                    print(f"  PL{paranoia} {req.key:7} {label}: the same rule ids in both")
    return failures


def measure(engines: Sequence[Engine], requests: Sequence[BenchRequest], paranoia: int,
            args: argparse.Namespace) -> list[Cell]:
    cells = [Cell(paranoia, req) for req in requests]
    for cell in cells:
        for engine in engines:
            for _ in range(args.warmup):
                engine.run(vary(cell.request))
    for rep in range(args.repeats):
        for cell in cells:
            line = [f"  [PL{paranoia} rep {rep + 1}] {cell.request.key:7}"]
            for engine in engines:
                us = cpu_us_per_request(engine.run, cell.request, args.iterations)
                cell.samples.setdefault(engine.name, []).append(us)
                line.append(f"{engine.name} {us:8.0f} us")
            print("  ".join(line), flush=True)
    return cells


def format_table(cells: Sequence[Cell], with_modsec: bool) -> str:
    def num(v: float, fmt: str) -> str:
        return "-" if v != v else format(v, fmt)

    head = "| request | PL | Bastion µs/req | Bastion req/s (1 core) |"
    rule = "|---|---:|---:|---:|"
    if with_modsec:
        head += " ModSecurity µs/req | ModSecurity req/s (1 core) | Bastion / ModSecurity |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    for c in cells:
        b = c.median(BastionEngine.name)
        row = (f"| {c.request.label} | {c.paranoia} | {num(b, '.0f')} "
               f"({c.spread(BastionEngine.name)}) | {num(1e6 / b, '.0f')} |")
        if with_modsec:
            m = c.median(ModSecurityEngine.name)
            row += (f" {num(m, '.0f')} ({c.spread(ModSecurityEngine.name)}) | "
                    f"{num(1e6 / m, '.0f')} | {num(b / m, '.2f')}x |")
        lines.append(row)
    return "\n".join(lines)


def profile(engine: BastionEngine, req: BenchRequest, iterations: int, top: int) -> str:
    """cProfile over ``iterations`` inspections of one request: the top functions."""
    for _ in range(min(iterations, 20)):
        engine.run(req)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(iterations):
        engine.run(req)
    prof.disable()
    stats = pstats.Stats(prof)
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in rows.values())

    def where(key: tuple[str, int, str]) -> str:
        file, line, func = key
        with contextlib.suppress(ValueError):
            file = str(Path(file).resolve().relative_to(REPO))
        if file == "~":
            return func
        return f"{file}:{line} {func}"

    out = [f"cProfile, Bastion, {req.key} ({req.label}), {iterations} requests; "
           f"profiled total {total / iterations * 1e6:.0f} µs/req (cProfile inflates it)",
           "", "by own time:", "",
           "| function | calls/req | own µs/req | own % | cumulative µs/req |",
           "|---|---:|---:|---:|---:|"]
    by_own = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for key, (_cc, nc, tt, ct, _callers) in by_own:
        out.append(f"| `{where(key)}` | {nc / iterations:.0f} | {tt / iterations * 1e6:.0f} | "
                   f"{100 * tt / total:.1f}% | {ct / iterations * 1e6:.0f} |")
    out += ["", "by cumulative time (Bastion's own code):", "",
            "| function | calls/req | cumulative µs/req | cumulative % |", "|---|---:|---:|---:|"]
    ours = [kv for kv in rows.items() if str(REPO / "waf") in str(Path(kv[0][0]).resolve())]
    for key, (_cc, nc, _tt, ct, _callers) in sorted(ours, key=lambda kv: kv[1][3],
                                                    reverse=True)[:top]:
        out.append(f"| `{where(key)}` | {nc / iterations:.0f} | {ct / iterations * 1e6:.0f} | "
                   f"{100 * ct / total:.1f}% |")
    return "\n".join(out)


# ======================================================================
# Through the gateway (optional).


def gateway(args: argparse.Namespace, crs: Path, attack: BenchRequest) -> int:
    ns = argparse.Namespace(pin=args.pin, bastion=args.bastion, warmup=args.gw_warmup,
                            duration=args.gw_duration, connections=args.connections,
                            python_load=False, only=None, rounds=args.gw_rounds)
    workdir = Path(tempfile.mkdtemp(prefix="bastion-waf-bench-"))
    procs = pt.Processes(workdir)
    bench = pt.Bench(ns, procs, workdir)
    waf_plugin = {"waf": {"crs": str(crs), "paranoia": 1}}

    def start_waf() -> tuple[pt.Managed, str]:
        managed, url = bench.start_bastion("bastion-waf", 1, waf_plugin)
        status, _, body = pt.http_get(url + attack.uri, dict(attack.headers[1:]))
        if status != 403:
            procs.stop(managed)
            raise RuntimeError(f"bastion-waf: the attack request got {status}, not 403: "
                               f"{body[:200]!r}")
        return managed, url

    targets = [
        pt.Target("bastion", "bastion, no plugins, 1 worker",
                  lambda: bench.start_bastion("bastion", 1, {})),
        pt.Target("bastion-waf", "bastion + waf (CRS v4, PL1, block), 1 worker", start_waf),
    ]
    print(f"\n# through the gateway: {ns.duration:g} s per target after {ns.warmup:g} s "
          f"warm-up, {ns.connections} connections, {ns.rounds} round(s), "
          f"pinning {'on' if bench.pin else 'off'}", flush=True)
    results: list[pt.Result] = []
    try:
        loadgen = pt.LoadGenerator(procs, ns.connections, False)
        bench.start_upstream()
        for round_no in range(ns.rounds):
            for target in targets:
                r = bench.measure(target, loadgen)
                results.append(r)
                print(f"  [round {round_no + 1}] {target.key:12} {r.load.rps:8.0f} req/s  "
                      f"p50 {r.load.p50_ms:8.2f} ms  p99 {r.load.p99_ms:8.2f} ms  "
                      f"CPU {r.cpu_us_per_req:6.0f} us/req  host busy "
                      f"{r.host_busy_pct:3.0f}%  errors {r.load.errors + r.load.non2xx}",
                      flush=True)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = {r.key: r for r in pt.summarize(results)}
    print(f"\nload generator: {loadgen.name}; GET {pt.BENCH_PATH} "
          "(bench/proxy_throughput.py's request); the attack got 403 through the WAF\n")
    print(pt.format_table(list(rows.values())))
    plain, waf = rows["bastion"], rows["bastion-waf"]
    print(f"\n- Bastion + WAF / Bastion: {waf.rps / plain.rps:.3f}x req/s; CPU per request "
          f"{waf.cpu_us:.0f} against {plain.cpu_us:.0f} µs: the WAF adds "
          f"{waf.cpu_us - plain.cpu_us:.0f} µs")
    return 0


# ======================================================================
# Entry point.



def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--crs", type=Path, default=None,
                   help=f"the CRS v4 directory (default: $BASTION_CRS or {DEFAULT_CRS})")
    p.add_argument("--quick", action="store_true",
                   help="30 inspections per measurement, 3 repetitions, 5 warm-up")
    p.add_argument("--iterations", type=int, default=None,
                   help="inspections per measurement (default 200; 30 with --quick)")
    p.add_argument("--repeats", type=int, default=None,
                   help="measurements per request and engine, interleaved; medians "
                        "(default 5; 3 with --quick)")
    p.add_argument("--warmup", type=int, default=None,
                   help="unmeasured inspections (of fresh variants) per request and engine "
                        "first, as a running gateway has seen traffic: RE2 builds its "
                        "DFA states lazily (default 400; 200 with --quick)")
    p.add_argument("--paranoia", default="1,2", help="comma-separated paranoia levels")
    p.add_argument("--no-modsecurity", action="store_true", help="measure Bastion only")
    p.add_argument("--profile", metavar="REQUEST",
                   choices=["get", "form", "json", "attack", "tokens"],
                   help="also cProfile Bastion on this request at the first paranoia level")
    p.add_argument("--profile-top", type=int, default=20, help="functions listed per profile")
    p.add_argument("--gateway", action="store_true",
                   help="also measure req/s through `bastion run` with the waf plugin on and off")
    p.add_argument("--gw-duration", type=float, default=None,
                   help="gateway: seconds of load per target (default 10; 3 with --quick)")
    p.add_argument("--gw-warmup", type=float, default=None,
                   help="gateway: seconds of warm-up load (default 2; 1 with --quick)")
    p.add_argument("--gw-rounds", type=int, default=None,
                   help="gateway: rounds, interleaved (default 3; 1 with --quick)")
    p.add_argument("--connections", type=int, default=64, help="gateway: connections")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="gateway: no CPU pinning (see bench/README.md)")
    p.add_argument("--bastion", default=None, help="gateway: the bastion executable")
    args = p.parse_args(argv)
    quick = args.quick
    for name, full, short in (("iterations", 200, 30), ("repeats", 5, 3), ("warmup", 400, 200),
                              ("gw_duration", 10.0, 3.0), ("gw_warmup", 2.0, 1.0),
                              ("gw_rounds", 3, 1)):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    if args.iterations < 1 or args.repeats < 1 or args.warmup < 0 or args.gw_rounds < 1:
        p.error("--iterations, --repeats and --gw-rounds must be at least 1, --warmup 0 or more")
    try:
        args.levels = [int(x) for x in args.paranoia.split(",")]
    except ValueError:
        p.error("--paranoia: comma-separated integers")
    if any(not 1 <= n <= 4 for n in args.levels):
        p.error("--paranoia: levels 1 to 4")
    if args.crs is None:
        env = os.environ.get("BASTION_CRS")
        args.crs = Path(env) if env else DEFAULT_CRS
    args.bastion = pt.find_bastion(args.bastion)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    crs: Path = args.crs.resolve()
    if not (crs / "crs-setup.conf.example").exists() or not (crs / "rules").is_dir():
        print(f"{crs} is not a CRS v4 directory (crs-setup.conf.example and rules/); "
              "give one with --crs", file=sys.stderr)
        return 2
    if args.gateway and not args.bastion:
        print("cannot find the bastion executable (use --bastion)", file=sys.stderr)
        return 2
    pt.exit_on_signals()

    started = datetime.datetime.now(datetime.UTC)
    print(f"# WAF inspection in-process, {started:%Y-%m-%d %H:%M} UTC; "
          f"{pt.machine_description()}")
    print(f"# bastion at {pt.source_revision('waf')}; CRS {crs}")
    print(f"# {args.iterations} inspections per measurement after {args.warmup} warm-up, "
          f"{args.repeats} repetitions (engines interleaved), medians; "
          f"CPU = time.process_time()", flush=True)
    requests = bench_requests()
    for req in requests:
        print(f"#   {req.key:7} {req.method} {req.uri[:100]}{'...' if len(req.uri) > 100 else ''}"
              f"  ({len(req.headers)} headers, body {len(req.body)} B)")

    modsec_note = "not measured (--no-modsecurity)"
    use_modsec = not args.no_modsecurity
    if use_modsec:
        try:
            import libmodsecurity
        except ImportError as exc:
            use_modsec = False
            modsec_note = (f"NOT MEASURED: the libmodsecurity binding does not import ({exc}); "
                           f"`{sys.executable} -m pip install libmodsecurity`")
        else:
            modsec_note = f"libmodsecurity {libmodsecurity.__version__}"
    print(f"# ModSecurity: {modsec_note}", flush=True)

    cells: list[Cell] = []
    failures: list[str] = []
    profiled = ""
    for level in args.levels:
        engines: list[Engine] = [BastionEngine(crs, level)]
        if use_modsec:
            engines.append(ModSecurityEngine(crs, level))
        print(f"\nparanoia {level}: "
              + "; ".join(f"{e.name} loaded {e.rule_count} rules (its own count) in "
                          f"{e.load_seconds:.2f} s CPU" for e in engines))
        if isinstance(engines[-1], ModSecurityEngine):
            print(f"  ({engines[-1].version})")
        failures += sanity(engines, requests, level)
        cells += measure(engines, requests, level, args)
        if args.profile and not profiled:
            bastion = engines[0]
            assert isinstance(bastion, BastionEngine)
            req = next(r for r in requests if r.key == args.profile)
            profiled = profile(bastion, req, args.iterations, args.profile_top)

    print(f"\nModSecurity: {modsec_note}\n")
    print(format_table(cells, use_modsec))
    for c in cells:
        if c.request.key == "get" and c.paranoia == 1:
            b = c.median(BastionEngine.name)
            verdict = "within" if b <= GET_BUDGET_US else "OVER"
            print(f"\nbenign GET at PL1: Bastion {b:.0f} µs against a budget of "
                  f"{GET_BUDGET_US:.0f} µs ({verdict} budget, {b / GET_BUDGET_US:.1f}x)")
    if failures:
        print("\nSANITY CHECK FAILED:\n" + "\n".join(f"- {f}" for f in failures))
    else:
        print("\nsanity: every engine blocked the attack with 403 and passed the benign requests")
    if profiled:
        print("\n" + profiled)
    status = 1 if failures else 0
    if args.gateway:
        attack = next(r for r in requests if r.attack)
        try:
            status = max(status, gateway(args, crs, attack))
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
