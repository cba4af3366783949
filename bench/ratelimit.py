#!/usr/bin/env python3
"""What the ``rate-limit`` plugin costs with a Redis-backed limit, on against off, in one run.

    python bench/ratelimit.py [--duration S] [--warmup S] [--rounds N] [--quick]

Targets, each ``bastion run`` with one worker behind the same catch-all route
and loaded with bench/proxy_throughput.py's benign GET (its upstream, wrk
driver, CPU pinning and /proc CPU accounting are reused):

1. ``off``: no plugins;
2. ``on``: ``rate-limit`` with one rule (per client IP), store in Redis with
   ``timeout_ms`` = ``--store-timeout-ms`` (default 1000), so that every request
   reaches Redis even with the worker saturated;
3. ``on-3rules``: three rules (per IP, per Cookie value, whole route), still
   one ``store.limit`` call (one EVALSHA) per request;
4. ``on-50ms``: as ``on`` with the store's default ``timeout_ms`` (50): under
   saturation the event loop's own queueing exceeds it, calls time out, the
   breaker opens and part of the traffic is decided by the in-process fallback
   (its share is printed, from the gateway's metrics);
5. ``redis-down``: the one-rule config with its Redis URL pointing at a closed
   port, fail-open: the breaker skips Redis and the in-process limiter decides.

Limits are set far above what the run can reach, so every request is admitted
and proxied (a refused request would be cheaper and skew the comparison).
Redis is a private ``redis-server`` started here (no persistence), pinned with
the load generator and the upstream, so its ``INFO commandstats`` hold only
this traffic: read before and after each measured window (warm-up excluded)
and divided by the requests served. Commands Redis runs inside the Lua script
(GET, INCRBY, PEXPIRE) are counted there too; round trips are the EVALSHA/EVAL
calls. Redis's own CPU per request comes from /proc like the server's.

The machine is shared and drifts, so compare inside one run, as ratios.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import proxy_throughput as pt
import redis

# A limit no run reaches: every request is admitted and proxied.
HUGE = 1_000_000_000
TARGETS = ("off", "on", "on-3rules", "on-50ms", "redis-down")
# Client-issued commands the plugin sends; everything else in commandstats ran
# inside the script (or is our own INFO, which is excluded).
ROUND_TRIP_COMMANDS = ("evalsha", "eval", "script|load")


@dataclass
class Measured:
    key: str
    result: pt.Result
    redis_calls: dict[str, int]
    redis_cpu_s: float
    verdicts: dict[str, float]


def start_redis(procs: pt.Processes, cpus: set[int] | None) -> tuple[pt.Managed, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = pt.free_port()
    managed = procs.start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no"], cpus)
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if managed.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{managed.log_tail()}") from None
            time.sleep(0.05)
        finally:
            client.close()
    return managed, port


def plugin_verdicts(admin_url: str) -> dict[str, float]:
    """The plugin's counters from the gateway's /metrics: decided (requests), fallback."""
    status, _, body = pt.http_get(admin_url + "/metrics")
    if status != 200:
        raise RuntimeError(f"{admin_url}/metrics answered {status}")
    out = {"decided": 0.0, "fallback": 0.0}
    for line in body.decode().splitlines():
        if line.startswith("bastion_ratelimit_decisions_total{") and 'rule="per-ip"' in line:
            out["decided"] += float(line.rsplit(" ", 1)[1])
        elif (line.startswith("bastion_ratelimit_store_errors_total{")
              and 'action="fallback"' in line):
            out["fallback"] += float(line.rsplit(" ", 1)[1])
    return out


def command_calls(port: int) -> dict[str, int]:
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        stats: dict[str, Any] = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()
            if name != "cmdstat_info"}


class RedisCountingLoad(pt.LoadGenerator):
    """The bench's load generator, reading Redis's counters around the measured run."""

    def __init__(self, procs: pt.Processes, connections: int, force_python: bool,
                 redis_port: int, redis_pid: int) -> None:
        super().__init__(procs, connections, force_python)
        self.redis_port = redis_port
        self.redis_pid = redis_pid
        self.reset(0)

    def reset(self, measured_call: int) -> None:
        """Before a target: which run() call (0-based) is the measured one (after warm-up)."""
        self.measured_call = measured_call
        self.n_calls = 0
        self.calls: dict[str, int] = {}
        self.verdicts: dict[str, float] = {}
        self.redis_cpu_s = 0.0
        self.admin_url = ""

    def run(self, url: str, duration: float, cpus: set[int] | None) -> pt.Load:
        measured = self.n_calls == self.measured_call
        self.n_calls += 1
        if not measured:
            return super().run(url, duration, cpus)
        before = command_calls(self.redis_port)
        cpu_before = pt.process_cpu_seconds(self.redis_pid)
        verdicts_before = plugin_verdicts(self.admin_url)
        load = super().run(url, duration, cpus)
        self.redis_cpu_s = pt.process_cpu_seconds(self.redis_pid) - cpu_before
        after = command_calls(self.redis_port)
        verdicts = plugin_verdicts(self.admin_url)
        self.calls = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
        self.verdicts = {k: v - verdicts_before.get(k, 0.0) for k, v in verdicts.items()}
        return load


class RateLimitBench:
    def __init__(self, args: argparse.Namespace, procs: pt.Processes, workdir: Path) -> None:
        self.args = args
        self.procs = procs
        self.bench = pt.Bench(args, procs, workdir)
        self.workdir = workdir
        self.redis_port = 0
        self.redis: pt.Managed | None = None
        self.loadgen: RedisCountingLoad | None = None

    def plugin(self, key: str) -> dict[str, Any]:
        if key == "off":
            return {}
        rules: list[dict[str, Any]] = [{"name": "per-ip", "by": "ip", "limit": HUGE,
                                        "window": "1m"}]
        if key == "on-3rules":
            rules += [{"name": "per-session", "by": {"cookie": "session"}, "limit": HUGE,
                       "window": "1h"},
                      {"name": "whole-route", "by": "route", "limit": HUGE, "window": "10s"}]
        return {"rate-limit": {"rules": rules}}

    def store(self, key: str) -> dict[str, Any]:
        if key == "off":
            return {"type": "memory"}
        port = pt.free_port() if key == "redis-down" else self.redis_port
        store: dict[str, Any] = {"type": "redis", "url": f"redis://127.0.0.1:{port}/0",
                                 "prefix": f"bench-{key}:"}
        if key in ("on", "on-3rules"):
            store["timeout_ms"] = self.args.store_timeout_ms
        return store

    def start(self, key: str) -> tuple[pt.Managed, str]:
        port, admin = pt.free_port(), pt.free_port()
        config = {
            "access_log": {"enabled": False},
            "limits": {"shutdown_grace": "2s"},
            "store": self.store(key),
            "services": {"up": {"endpoints": [{"url": self.bench.upstream_url}]}},
            "routes": [{"name": "all", "match": {"path_prefix": "/"}, "service": "up"}],
            "plugins": self.plugin(key),
        }
        path = self.workdir / f"{key}.yaml"
        path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
        managed = self.procs.start(f"bastion-{key}", [
            self.args.bastion, "run", "-c", str(path), "--listen", f"127.0.0.1:{port}",
            "--admin", f"127.0.0.1:{admin}", "--workers", "1",
        ], self.bench.cpus("server", False))
        pt.wait_ready(managed, f"http://127.0.0.1:{admin}/readyz")
        assert self.loadgen is not None
        self.loadgen.admin_url = f"http://127.0.0.1:{admin}"
        return managed, f"http://127.0.0.1:{port}"

    def targets(self) -> list[pt.Target]:
        labels = {
            "off": "bastion, no plugins",
            "on": "bastion + rate-limit (1 rule, Redis)",
            "on-3rules": "bastion + rate-limit (3 rules, Redis)",
            "on-50ms": "bastion + rate-limit (1 rule, Redis, store timeout 50 ms)",
            "redis-down": "bastion + rate-limit (1 rule, Redis down: fail-open local)",
        }
        wanted = self.args.only.split(",") if self.args.only else TARGETS
        out = []
        for key in TARGETS:
            if key not in wanted:
                continue
            expect = {} if key == "off" else {"X-RateLimit-Limit": str(HUGE)}
            out.append(pt.Target(key, labels[key], partial(self.start, key),
                                 expect_headers=expect))
        return out

    def measure(self, target: pt.Target, loadgen: RedisCountingLoad) -> Measured:
        """pt.Bench.measure, with Redis's command counts and CPU around the measured load."""
        loadgen.reset(measured_call=1 if self.args.warmup > 0 else 0)
        result = self.bench.measure(target, loadgen)
        return Measured(target.key, result, loadgen.calls, loadgen.redis_cpu_s,
                        loadgen.verdicts)

    def run(self) -> tuple[list[Measured], str]:
        # Redis shares the load generator's core: the server under test has its own.
        self.redis, self.redis_port = start_redis(self.procs, self.bench.cpus("loadgen", False))
        loadgen = self.loadgen = RedisCountingLoad(
            self.procs, self.args.connections, self.args.python_load, self.redis_port,
            self.redis.pid)
        self.bench.start_upstream()
        results = []
        for round_no in range(self.args.rounds):
            for target in self.targets():
                m = self.measure(target, loadgen)
                results.append(m)
                r = m.result
                trips = sum(m.redis_calls.get(c, 0) for c in ROUND_TRIP_COMMANDS)
                fallback = (m.verdicts.get("fallback", 0.0) / m.verdicts["decided"]
                            if m.verdicts.get("decided") else 0.0)
                print(f"  [round {round_no + 1}] {target.key:11} {r.load.rps:8.0f} req/s  "
                      f"p50 {r.load.p50_ms:6.2f} ms  p99 {r.load.p99_ms:6.2f} ms  "
                      f"CPU {r.cpu_us_per_req:5.0f} us/req  redis round trips/req "
                      f"{trips / max(1, r.load.requests):.3f}  fallback "
                      f"{100 * fallback:3.0f}%  host busy "
                      f"{r.host_busy_pct:3.0f}%  errors {r.load.errors + r.load.non2xx}",
                      flush=True)
        return results, loadgen.name


def _median(values: Sequence[float]) -> float:
    vals = [v for v in values if v == v]
    return statistics.median(vals) if vals else float("nan")


def report(results: list[Measured]) -> None:
    rows = {r.key: r for r in pt.summarize([m.result for m in results])}
    print(pt.format_table(list(rows.values())))

    print("\nRedis per request (measured window only; commands run inside the script count):\n")
    print("| target | round trips/req | commands/req (by command) | Redis CPU µs/req | "
          "decided by the local fallback |")
    print("|---|---:|---|---:|---:|")
    for key in dict.fromkeys(m.key for m in results):
        ms = [m for m in results if m.key == key]
        per: dict[str, float] = {}
        for cmd in sorted({c for m in ms for c in m.redis_calls}):
            per[cmd] = _median([m.redis_calls.get(cmd, 0) / max(1, m.result.load.requests)
                                for m in ms])
        trips = sum(per.get(c, 0.0) for c in ROUND_TRIP_COMMANDS)
        cpu = _median([m.redis_cpu_s * 1e6 / max(1, m.result.load.requests) for m in ms])
        listing = ", ".join(f"{c} {v:.3f}" for c, v in per.items() if v >= 0.0005) or "none"
        shares = [m.verdicts["fallback"] / m.verdicts["decided"] for m in ms
                  if m.verdicts.get("decided")]
        share = f"{100 * _median(shares):.0f}%" if shares else "-"
        print(f"| {rows[key].label} | {trips:.3f} | {listing} | {cpu:.1f} | {share} |")

    off = rows.get("off")
    if off is None:
        return
    print("\nratios against `off` (req/s on/off; CPU per request on/off, higher = costlier; "
          "added latency and CPU):")
    for key in TARGETS[1:]:
        on = rows.get(key)
        if on is None:
            continue
        print(f"- {on.label}: {on.rps / off.rps:.3f}x req/s, {on.cpu_us / off.cpu_us:.3f}x CPU "
              f"per request (+{on.cpu_us - off.cpu_us:.0f} µs), p50 "
              f"+{on.p50_ms - off.p50_ms:.2f} ms ({on.p50_ms / off.p50_ms:.2f}x), p99 "
              f"+{on.p99_ms - off.p99_ms:.2f} ms ({on.p99_ms / off.p99_ms:.2f}x)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of measured load per target (default 10; 3 with --quick)")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds of unmeasured load before each (default 2; 1 with --quick)")
    p.add_argument("--connections", type=int, default=64, help="concurrent connections")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every target this many times, interleaved; medians")
    p.add_argument("--quick", action="store_true", help="short run: 3 s per target")
    p.add_argument("--only", help="comma-separated targets: " + ",".join(TARGETS))
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="no CPU pinning (see bench/README.md)")
    p.add_argument("--python-load", action="store_true",
                   help="use the Python load generator even where wrk is installed")
    p.add_argument("--store-timeout-ms", type=int, default=1000,
                   help="store.timeout_ms for the on and on-3rules targets (default 1000)")
    p.add_argument("--bastion", default=None, help="the bastion executable")
    args = p.parse_args(argv)
    pt.check_only(p, args.only, TARGETS)
    if args.rounds < 1 or args.connections < 1:
        p.error("--rounds and --connections must be at least 1")
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    args.bastion = pt.find_bastion(args.bastion)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.bastion:
        print("cannot find the bastion executable (use --bastion)", file=sys.stderr)
        return 2
    pt.exit_on_signals()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-rl-bench-"))
    procs = pt.Processes(workdir)
    bench = RateLimitBench(args, procs, workdir)
    started = datetime.datetime.now(datetime.UTC)
    print(f"# rate-limit cost, {started:%Y-%m-%d %H:%M} UTC; {pt.machine_description()}")
    print(f"# bastion: {args.bastion} at {pt.source_revision('proxy', 'traffic')}")
    print(f"# {args.duration:g} s per target after {args.warmup:g} s warm-up, "
          f"{args.connections} connections, {args.rounds} round(s), one worker, "
          f"pinning {'on' if bench.bench.pin else 'off'}", flush=True)
    try:
        results, loadgen_name = bench.run()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nload generator: {loadgen_name}; GET {pt.BENCH_PATH} (one client IP, so one "
          "hot key per rule)\n")
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
