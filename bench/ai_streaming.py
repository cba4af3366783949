#!/usr/bin/env python3
"""What streaming an LLM answer through Bastion costs, against the provider directly, in one run.

    python bench/ai_streaming.py [--streams N] [--chunks N] [--pace-ms MS] [--quick]

A local fake OpenAI-compatible provider (its own process, aiohttp on uvloop)
answers every ``POST /v1/chat/completions`` with one long streamed answer:
``--chunks`` (2,000) ``chat.completion.chunk`` events of one token each, each its
own write, ``--pace-ms`` apart (0: as fast as the socket takes them), then the
finish chunk, the usage chunk (when asked for) and ``data: [DONE]``. Targets:

1. ``direct``: the client talks to the fake provider;
2. ``bastion``: ``bastion run`` (one worker) with ``ai-proxy`` in front of it
   (provider type ``openai-compatible``);
3. ``bastion-stats``: the same plus ``ai-statistics``, when that plugin is
   installed;
4. ``cache-hit``: ``ai-proxy`` + ``ai-cache`` (memory store), every measured
   request answered from the cache (one event per 1,024 characters of text, so
   compare its time to first byte and bytes/s, not its events/s).

A client process (aiohttp on uvloop) sends ``--streams`` requests, one after the
other (``--concurrency`` at a time), after ``--warmup`` unmeasured ones, and
records per stream: time to first byte (request sent to the first body byte:
the role chunk), total stream time (to the end of the body), events and bytes.
Reported: TTFB p50/p99, stream time p50/p99, events/s and MB/s (medians over
the streams), the gateway's CPU per stream (utime + stime of its process tree
over the measured requests, from /proc) and the provider's, and the ratios
through / direct. The client asks for ``stream_options.include_usage`` unless
``--no-client-usage`` (then ai-proxy asks the provider for usage itself and
strips it from every chunk, re-encoding each one).

Before measuring, every target is checked: through ai-proxy the client must get
the provider's stream byte for byte; a cache hit must carry ``X-Bastion-Cache:
hit`` and the same text. CPU layout, process handling and /proc accounting come
from ``proxy_throughput.py``: with 2+ CPUs the gateway runs alone on CPU 1, the
provider and the client share CPU 0 (measured directly, the provider takes CPU
1). Unpaced, the provider writes the whole answer at once, so through Bastion
the client's first read competes with it for CPU 0; ``--pace-ms`` gives
figures closer to a real model's stream. The machine is shared and drifts:
compare inside one run, as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import proxy_throughput as pt

MODEL = "bench-model"
CHAT_PATH = "/v1/chat/completions"
CREATED = 1_700_000_000
TARGET_KEYS = ("direct", "bastion", "bastion-stats", "cache-hit")
PROMPT = [{"role": "system", "content": "You are a benchmark."},
          {"role": "user", "content": "Write a long answer."}]


# ======================================================================
# The fake provider's stream (also what the checks compare against).


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def token(i: int) -> str:
    return f"tok{i} "


def stream_events(chunks: int, include_usage: bool) -> list[bytes]:
    """The provider's answer, one SSE event per list item, as OpenAI frames it."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        c: dict[str, Any] = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                             "created": CREATED, "model": MODEL, "system_fingerprint": "fp_b",
                             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]}
        if include_usage:
            c["usage"] = None
        return f"data: {_dumps(c)}\n\n".encode()

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": token(i)}) for i in range(chunks)]
    out.append(chunk({}, "stop"))
    if include_usage:
        usage = {"prompt_tokens": 20, "completion_tokens": chunks, "total_tokens": 20 + chunks}
        last = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED,
                "model": MODEL, "system_fingerprint": "fp_b", "choices": [], "usage": usage}
        out.append(f"data: {_dumps(last)}\n\n".encode())
    out.append(b"data: [DONE]\n\n")
    return out


def answer_text(chunks: int) -> str:
    return "".join(token(i) for i in range(chunks))


def role_provider(port: int, chunks: int, pace_ms: float) -> None:
    """The fake provider: every chat completion is the same long stream."""
    from aiohttp import web

    streams = {usage: stream_events(chunks, usage) for usage in (False, True)}
    pace = pace_ms / 1000

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            return web.Response(text="fake provider")
        body = json.loads(await request.read())
        if body.get("stream") is not True:
            return web.json_response({"error": {"message": "this fake only streams"}},
                                     status=400)
        options = body.get("stream_options") or {}
        events = streams[options.get("include_usage") is True]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        for ev in events:
            await resp.write(ev)
            if pace:
                await asyncio.sleep(pace)
        await resp.write_eof()
        return resp

    pt._use_uvloop()(pt._serve_until_signalled(handle, port))


# ======================================================================
# The client: sequential streams, timed.


def role_client(url: str, n: int, concurrency: int, body: str) -> None:
    import aiohttp

    data = body.encode()
    results: list[dict[str, Any]] = []
    failures: list[str] = []

    async def one(session: aiohttp.ClientSession) -> None:
        t0 = time.perf_counter()
        first = None
        nbytes = events = 0
        last = 0
        try:
            async with session.post(url, data=data,
                                    headers={"Content-Type": "application/json"}) as resp:
                if resp.status != 200:
                    failures.append(f"status {resp.status}")
                    await resp.read()
                    return
                async for part in resp.content.iter_any():
                    if first is None:
                        first = time.perf_counter()
                    nbytes += len(part)
                    events += part.count(b"\n\n") + (last == 10 and part[0] == 10)
                    last = part[-1]
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            failures.append(repr(exc))
            return
        end = time.perf_counter()
        results.append({"ttfb": (first or end) - t0, "total": end - t0, "events": events,
                        "bytes": nbytes})

    async def run() -> None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         auto_decompress=False) as session:
            left = n

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await one(session)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    pt._use_uvloop()(run())
    print(json.dumps({"streams": results, "failures": failures}))


# ======================================================================
# Targets and measurement.


@dataclass
class Result:
    key: str
    label: str
    streams: int
    failures: int
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    total_p50_ms: float
    total_p99_ms: float
    events_per_s: float
    mb_per_s: float
    events_per_stream: float
    bytes_per_stream: float
    gateway_cpu_ms: float
    provider_cpu_ms: float
    host_busy_pct: float


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


@dataclass
class Target:
    key: str
    label: str
    plugins: dict[str, Any] = field(default_factory=dict)
    direct: bool = False
    cache: bool = False


class StreamingBench:
    def __init__(self, args: argparse.Namespace, procs: pt.Processes, workdir: Path) -> None:
        self.args = args
        self.procs = procs
        self.workdir = workdir
        self.layout = pt.Bench(args, procs, workdir)  # the CPU layout only
        self.provider: pt.Managed | None = None
        self.provider_url = ""
        self.results: list[Result] = []
        self.skipped: list[str] = []

    @property
    def body(self) -> str:
        req: dict[str, Any] = {"model": MODEL, "messages": PROMPT, "stream": True}
        if self.args.client_usage:
            req["stream_options"] = {"include_usage": True}
        return _dumps(req)

    def targets(self) -> list[Target]:
        from proxy.plugin import available_plugins

        proxy = {"providers": {"fake": {"type": "openai-compatible",
                                        "base_url": self.provider_url + "/v1"}},
                 "default": {"provider": "fake"}}
        out = [Target("direct", "provider direct (aiohttp+uvloop)", direct=True),
               Target("bastion", "bastion + ai-proxy, 1 worker", {"ai-proxy": proxy})]
        if "ai-statistics" in available_plugins():
            out.append(Target("bastion-stats", "bastion + ai-proxy + ai-statistics",
                              {"ai-proxy": proxy, "ai-statistics": {}}))
        else:
            self.skipped.append("bastion-stats (ai-statistics is not installed)")
        out.append(Target("cache-hit", "bastion + ai-proxy + ai-cache, every request a hit",
                          {"ai-proxy": proxy,
                           "ai-cache": {"ttl": "1h", "max_entry_bytes": "64MiB"}},
                          cache=True))
        wanted = self.args.only.split(",") if self.args.only else None
        return [t for t in out if wanted is None or t.key in wanted]

    def start_provider(self) -> None:
        port = pt.free_port()
        self.provider = self.procs.start("provider", [
            sys.executable, str(Path(__file__).resolve()), "--role", "provider",
            "--port", str(port), "--chunks", str(self.args.chunks),
            "--pace-ms", str(self.args.pace_ms)], None)
        self.provider_url = f"http://127.0.0.1:{port}"
        pt.wait_ready(self.provider, self.provider_url + "/")

    def start_bastion(self, target: Target) -> tuple[pt.Managed, str]:
        port, admin = pt.free_port(), pt.free_port()
        config = {
            "access_log": {"enabled": False},
            "limits": {"shutdown_grace": "2s"},
            "store": {"type": "memory"},
            # ai-proxy picks the upstream itself: the route's service is never called.
            "services": {"unused": {"endpoints": [{"url": "http://127.0.0.1:9"}]}},
            "routes": [{"name": "llm", "match": {"path_prefix": "/v1/"}, "service": "unused",
                        "plugins": target.plugins}],
        }
        path = self.workdir / f"{target.key}.yaml"
        path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
        managed = self.procs.start(target.key, [
            self.args.bastion, "run", "-c", str(path), "--listen", f"127.0.0.1:{port}",
            "--admin", f"127.0.0.1:{admin}", "--workers", "1",
        ], self.layout.cpus("server", False))
        pt.wait_ready(managed, f"http://127.0.0.1:{admin}/readyz")
        return managed, f"http://127.0.0.1:{port}"

    def fetch(self, url: str) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(url + CHAT_PATH, data=self.body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()

    def check(self, target: Target, url: str) -> None:
        expected = b"".join(stream_events(self.args.chunks, self.args.client_usage))
        status, headers, body = self.fetch(url)
        if status != 200 or not headers.get("Content-Type", "").startswith("text/event-stream"):
            raise RuntimeError(f"{target.key}: answered {status} {headers}")
        if not target.cache:
            if body != expected:
                raise RuntimeError(f"{target.key}: the stream differs from the provider's "
                                   f"({len(body)} bytes, expected {len(expected)})")
            return
        status, headers, body = self.fetch(url)  # the first one filled the cache
        if headers.get("X-Bastion-Cache") != "hit":
            raise RuntimeError(f"{target.key}: no cache hit: {headers}")
        text = ""
        for block in body.decode().split("\n\n"):
            if block.startswith("data: {"):
                for c in json.loads(block[6:])["choices"]:
                    text += c["delta"].get("content") or ""
        if text != answer_text(self.args.chunks) or not body.endswith(b"data: [DONE]\n\n"):
            raise RuntimeError(f"{target.key}: the cached answer differs")

    def client(self, url: str, n: int) -> dict[str, Any]:
        argv = [sys.executable, str(Path(__file__).resolve()), "--role", "client",
                "--url", url + CHAT_PATH, "--streams", str(n),
                "--concurrency", str(self.args.concurrency), "--body", self.body]
        managed = self.procs.start("client", argv, self.layout.cpus("loadgen", False))
        try:
            managed.proc.wait(600)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the client did not finish:\n{managed.log_tail()}") from None
        finally:
            self.procs.stop(managed)
        output = managed.log_path.read_text(errors="replace")
        managed.log_path.unlink(missing_ok=True)
        if managed.proc.returncode != 0:
            raise RuntimeError(f"the client failed ({managed.proc.returncode}):\n{output}")
        data: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        return data

    def measure(self, target: Target) -> Result:
        assert self.provider is not None
        managed: pt.Managed | None = None
        if target.direct:
            url = self.provider_url
        else:
            managed, url = self.start_bastion(target)
        try:
            if self.layout.pin:
                # As proxy_throughput.py places its upstream: on the server's CPU when it
                # is the server under test, else beside the client.
                pt.set_tree_affinity(self.provider.pid, {1} if target.direct else {0})
            self.check(target, url)
            if self.args.warmup:
                self.client(url, self.args.warmup)
            gw_before = pt.tree_cpu_seconds(managed.pid) if managed else {}
            prov_before = pt.tree_cpu_seconds(self.provider.pid)
            host_before = pt.host_cpu_ticks()
            data = self.client(url, self.args.streams)
            busy, _ = pt.host_busy(host_before, pt.host_cpu_ticks())
            gw_cpu = pt.cpu_delta(gw_before, pt.tree_cpu_seconds(managed.pid)) if managed \
                else float("nan")
            prov_cpu = pt.cpu_delta(prov_before, pt.tree_cpu_seconds(self.provider.pid))
            if managed is not None and managed.proc.poll() is not None:
                raise RuntimeError(f"{target.key} died during the run:\n{managed.log_tail()}")
        finally:
            if managed is not None:
                self.procs.stop(managed)
        streams = data["streams"]
        n = len(streams) or 1
        ttfb = [s["ttfb"] * 1000 for s in streams]
        total = [s["total"] * 1000 for s in streams]
        return Result(
            target.key, target.label, len(streams), len(data["failures"]),
            percentile(ttfb, 0.5), percentile(ttfb, 0.99),
            percentile(total, 0.5), percentile(total, 0.99),
            statistics.median(s["events"] / s["total"] for s in streams) if streams
            else float("nan"),
            statistics.median(s["bytes"] / s["total"] / 1e6 for s in streams) if streams
            else float("nan"),
            sum(s["events"] for s in streams) / n, sum(s["bytes"] for s in streams) / n,
            gw_cpu * 1000 / n, prov_cpu * 1000 / n, busy)

    def run(self) -> list[Result]:
        self.start_provider()
        for round_no in range(self.args.rounds):
            for target in self.targets():
                r = self.measure(target)
                self.results.append(r)
                print(f"  [round {round_no + 1}] {r.key:14} TTFB p50 {r.ttfb_p50_ms:7.2f} ms "
                      f"p99 {r.ttfb_p99_ms:7.2f} ms  stream p50 {r.total_p50_ms:8.1f} ms  "
                      f"{r.events_per_s:8.0f} ev/s  gateway CPU {r.gateway_cpu_ms:6.1f} "
                      f"ms/stream  failures {r.failures}", flush=True)
        return self.results


# ======================================================================
# Report.


def summarize(results: list[Result]) -> list[Result]:
    """One row per target: the median of each figure over the rounds."""
    rows: list[Result] = []
    for key in dict.fromkeys(r.key for r in results):
        rs = [r for r in results if r.key == key]
        med: dict[str, Any] = {}
        for name in Result.__dataclass_fields__:
            values = [getattr(r, name) for r in rs]
            if name in ("key", "label"):
                med[name] = values[0]
            elif name in ("streams", "failures"):
                med[name] = sum(values)
            else:
                med[name] = pt._median(iter(values))
        rows.append(Result(**med))
    return rows


def format_table(rows: list[Result]) -> str:
    def num(v: float, fmt: str) -> str:
        return "-" if v != v else format(v, fmt)

    lines = ["| target | TTFB p50 ms | TTFB p99 ms | stream p50 ms | stream p99 ms | events/s "
             "| MB/s | events/stream | gateway CPU ms/stream | provider CPU ms/stream "
             "| host busy | failures |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r.label} | {num(r.ttfb_p50_ms, '.2f')} | {num(r.ttfb_p99_ms, '.2f')} | "
            f"{num(r.total_p50_ms, '.1f')} | {num(r.total_p99_ms, '.1f')} | "
            f"{num(r.events_per_s, '.0f')} | {num(r.mb_per_s, '.2f')} | "
            f"{num(r.events_per_stream, '.0f')} | {num(r.gateway_cpu_ms, '.1f')} | "
            f"{num(r.provider_cpu_ms, '.1f')} | {num(r.host_busy_pct, '.0f')}% | "
            f"{r.failures} |")
    return "\n".join(lines)


def format_ratios(rows: list[Result]) -> str:
    by = {r.key: r for r in rows}
    lines: list[str] = []

    def through(key: str, base: str, label: str) -> None:
        if key not in by or base not in by:
            return
        a, b = by[key], by[base]
        lines.append(
            f"- {label}: TTFB p50 {a.ttfb_p50_ms / b.ttfb_p50_ms:.2f}x, "
            f"p99 {a.ttfb_p99_ms / b.ttfb_p99_ms:.2f}x; stream time p50 "
            f"{a.total_p50_ms / b.total_p50_ms:.2f}x, p99 {a.total_p99_ms / b.total_p99_ms:.2f}x; "
            f"events/s {a.events_per_s / b.events_per_s:.2f}x; MB/s {a.mb_per_s / b.mb_per_s:.2f}x")

    through("bastion", "direct", "through Bastion (ai-proxy) / direct")
    through("bastion-stats", "direct", "through Bastion (ai-proxy + ai-statistics) / direct")
    through("bastion-stats", "bastion", "ai-proxy + ai-statistics / ai-proxy alone")
    if "cache-hit" in by and "direct" in by:
        a, b = by["cache-hit"], by["direct"]
        lines.append(f"- cache hit / direct: TTFB p50 {a.ttfb_p50_ms / b.ttfb_p50_ms:.2f}x; "
                     f"stream time p50 {a.total_p50_ms / b.total_p50_ms:.2f}x; "
                     f"MB/s {a.mb_per_s / b.mb_per_s:.2f}x")
    for key in ("bastion", "bastion-stats", "cache-hit"):
        if key in by and "direct" in by and by["direct"].provider_cpu_ms:
            r = by[key]
            lines.append(f"- {key}: gateway CPU per stream {r.gateway_cpu_ms:.1f} ms = "
                         f"{r.gateway_cpu_ms / by['direct'].provider_cpu_ms:.2f}x the provider's "
                         f"own CPU per stream when called directly; "
                         f"{1000 * r.gateway_cpu_ms / max(r.events_per_stream, 1):.1f} µs per "
                         "event relayed")
    return "\n".join(lines)


# ======================================================================
# Entry point.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--streams", type=int, default=None,
                   help="measured streams per target (default 100; 20 with --quick)")
    p.add_argument("--warmup", type=int, default=None,
                   help="unmeasured streams before (default 10; 3 with --quick)")
    p.add_argument("--chunks", type=int, default=2000, help="token chunks per streamed answer")
    p.add_argument("--pace-ms", type=float, default=0.0,
                   help="pause between two chunks at the provider (0: none)")
    p.add_argument("--concurrency", type=int, default=1, help="streams in flight at once")
    p.add_argument("--no-client-usage", dest="client_usage", action="store_false",
                   help="the client does not ask for stream_options.include_usage")
    p.add_argument("--quick", action="store_true", help="short run")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every target this many times, interleaved; report medians")
    p.add_argument("--only", help="comma-separated target keys: " + ",".join(TARGET_KEYS))
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the gateway to CPU 1 and the rest to CPU 0")
    p.add_argument("--bastion", default=None, help="the bastion executable")
    p.add_argument("--json", type=Path, help="also write the results here as JSON")
    # Internal: the helper processes.
    p.add_argument("--role", choices=["provider", "client"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--body", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    pt.check_only(p, args.only, TARGET_KEYS)
    if args.streams is None:
        args.streams = 20 if args.quick else 100
    if args.warmup is None:
        args.warmup = 3 if args.quick else 10
    if min(args.streams, args.chunks, args.concurrency, args.rounds) < 1 or args.warmup < 0:
        p.error("--streams, --chunks, --concurrency and --rounds must be at least 1")
    args.bastion = pt.find_bastion(args.bastion)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "provider":
        role_provider(args.port, args.chunks, args.pace_ms)
        return 0
    if args.role == "client":
        role_client(args.url, args.streams, args.concurrency, args.body)
        return 0
    if not args.bastion:
        print("cannot find the bastion executable (use --bastion)", file=sys.stderr)
        return 2
    pt.exit_on_signals()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-ai-bench-"))
    procs = pt.Processes(workdir)
    bench = StreamingBench(args, procs, workdir)
    started = datetime.datetime.now(datetime.UTC)
    revision = pt.source_revision("proxy", "ai")
    print(f"# AI streaming overhead, {started:%Y-%m-%d %H:%M} UTC; {pt.machine_description()}")
    print(f"# bastion: {args.bastion} at {revision}")
    print(f"# {args.streams} streams per target after {args.warmup} warm-up, concurrency "
          f"{args.concurrency}, {args.chunks} chunks per answer, pace {args.pace_ms:g} ms, "
          f"client usage {'on' if args.client_usage else 'off'}, {args.rounds} round(s), "
          f"pinning {'on' if bench.layout.pin else 'off'}", flush=True)
    try:
        results = bench.run()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = summarize(results)
    print()
    print(format_table(rows))
    print("\nratios (through / direct; above 1.00x is slower or costlier):")
    print(format_ratios(rows) or "(none: a ratio needs both of its targets)")
    for s in bench.skipped:
        print(f"\nskipped: {s}")
    if args.json is not None:
        args.json.write_text(json.dumps(pt._no_nan({
            "date": started.isoformat(), "machine": pt.machine_description(),
            "revision": revision, "argv": sys.argv,
            "rows": [asdict(r) for r in rows], "runs": [asdict(r) for r in results],
        }), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
