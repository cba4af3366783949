#!/usr/bin/env python3
"""Throughput and latency of Bastion against a bare aiohttp proxy, in one run.

    python bench/proxy_throughput.py [--duration S] [--connections N] [--quick]

Targets, each measured on loopback with the same benign browser-like GET:

1. ``upstream``: the upstream server directly (aiohttp on uvloop, a fixed 1 KB body);
2. ``bare``: a minimal aiohttp reverse proxy written here (the baseline);
3. ``bastion``: ``bastion run`` with no plugins, one worker;
4. ``bastion-headers``: the same with the ``headers`` plugin on;
5. ``bastion-2w``: no plugins, two workers.

The machine is shared and drifts, so only ratios inside one run mean much.
CPU time per request (from /proc, summed over the process tree of the server
under test) moves less than requests/s.

Every process this starts lives in its own process group and is stopped at
the end, on error and on Ctrl-C too. The script also runs its own helper
processes (``--role upstream|bare|loadgen``); those are internal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

BENCH_PATH = "/api/v1/products?category=books&sort=price_asc&page=2&q=garden+chairs"
PROBE_PATH = "/_bench/request-headers"
BENCH_HEADERS: dict[str, str] = {
    "User-Agent": ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/126.0.0.0 Safari/537.36"),
    "Accept": ("text/html,application/xhtml+xml,application/xml;q=0.9,"
               "image/avif,image/webp,*/*;q=0.8"),
    "Accept-Language": "en-US,en;q=0.9,de;q=0.7",
    "Cookie": ("session=6f1c0a9e2b7d4c38a5e1f0b9d2c7a4e3; theme=dark; "
               "_ga=GA1.1.1184503921.1732601234; cart=3"),
}
UPSTREAM_BODY = (b"0123456789abcdef" * 64)[:1023] + b"\n"  # 1024 bytes
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-connection", "proxy-authenticate", "proxy-authorization",
})
READY_TIMEOUT = 60.0
STOP_GRACE = 10.0
MAX_PY_LOADGEN_REQUESTS = 2_000_000
TARGET_KEYS = ("upstream", "bare", "bastion", "bastion-headers", "bastion-2w")


# ======================================================================
# Helper roles: these run in their own processes.


def _use_uvloop() -> Callable[[Any], Any]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a Bastion dependency
        return asyncio.run
    run: Callable[[Any], Any] = uvloop.run
    return run


async def _serve_until_signalled(handler: Callable[[Any], Any], port: int,
                                 on_start: Callable[[], Any] | None = None,
                                 on_stop: Callable[[], Any] | None = None) -> None:
    from aiohttp import web

    if on_start is not None:
        await on_start()
    server = web.Server(handler, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if on_stop is not None:
            await on_stop()


def role_upstream(port: int) -> None:
    """The upstream: a fixed 1 KB body for everything, headers echoed on PROBE_PATH."""
    from aiohttp import web

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.body_exists:
            await request.read()
        if request.path == PROBE_PATH:
            seen = json.dumps([[k, v] for k, v in request.headers.items()]).encode()
            return web.Response(body=seen, content_type="application/json")
        return web.Response(body=UPSTREAM_BODY, content_type="text/plain")

    _use_uvloop()(_serve_until_signalled(handle, port))


def end_to_end(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """A CIMultiDict copy without hop-by-hop headers (incl. those named in Connection)."""
    named: set[str] = set()
    for value in headers.getall("Connection", ()):
        named.update(t.strip().lower() for t in value.split(","))
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        lower = key.lower()
        if lower in HOP_BY_HOP or lower in named:
            continue
        out.add(key, value)
    return out


def role_bare(port: int, upstream: str) -> None:
    """The baseline: the honest minimum of an aiohttp reverse proxy.

    One ClientSession with a pooled connector; method, path and query, headers
    minus hop-by-hop, and the body go up; status, reason, headers minus
    hop-by-hop and the body come back, streamed.
    """
    import aiohttp
    from aiohttp import web
    from yarl import URL

    state: dict[str, aiohttp.ClientSession] = {}

    async def start() -> None:
        state["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60),
        )

    async def stop() -> None:
        await state["session"].close()

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        session = state["session"]
        try:
            up = await session.request(
                request.method, URL(upstream + request.raw_path, encoded=True),
                headers=end_to_end(request.headers),
                data=request.content if request.body_exists else None,
                allow_redirects=False, compress=None,
            )
        except (aiohttp.ClientError, OSError, TimeoutError):
            return web.Response(status=502, text="bad gateway")
        try:
            out = web.StreamResponse(status=up.status, reason=up.reason,
                                     headers=end_to_end(up.headers))
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
        finally:
            up.release()

    _use_uvloop()(_serve_until_signalled(handle, port, start, stop))


def role_loadgen(url: str, connections: int, duration: float, headers: list[str]) -> None:
    """The fallback load generator (when wrk is missing): bounded in time and count."""
    import aiohttp

    hdrs = dict(h.split(": ", 1) for h in headers)
    latencies: list[float] = []
    counts = {"requests": 0, "errors": 0, "non2xx": 0}

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=connections)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         auto_decompress=False) as session:
            deadline = time.monotonic() + duration

            async def worker() -> None:
                while time.monotonic() < deadline and counts["requests"] < MAX_PY_LOADGEN_REQUESTS:
                    t0 = time.perf_counter()
                    try:
                        async with session.get(url, headers=hdrs) as resp:
                            await resp.read()
                            status = resp.status
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        counts["errors"] += 1
                        await asyncio.sleep(0.01)  # do not spin on a dead server
                        continue
                    latencies.append(time.perf_counter() - t0)
                    counts["requests"] += 1
                    if not 200 <= status < 400:
                        counts["non2xx"] += 1

            started = time.perf_counter()
            tasks = [asyncio.ensure_future(worker()) for _ in range(connections)]
            try:
                await asyncio.wait_for(asyncio.gather(*tasks), duration + 15)
            except TimeoutError:
                counts["errors"] += 1
            return time.perf_counter() - started

    elapsed = float(_use_uvloop()(run()))
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(json.dumps({
        "requests": counts["requests"], "seconds": elapsed,
        "rps": counts["requests"] / elapsed if elapsed else 0.0,
        "p50_ms": pct(0.50), "p99_ms": pct(0.99),
        "errors": counts["errors"], "non2xx": counts["non2xx"],
    }))


# ======================================================================
# Processes: start, pin, measure, stop.


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _child_setup(cpus: set[int] | None) -> Callable[[], None]:
    def setup() -> None:
        # Die with the bench even if it is SIGKILLed (best effort; Linux only).
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if cpus:
            os.sched_setaffinity(0, cpus)
    return setup


@dataclass
class Managed:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Every process the bench starts, each in its own group; ``stop_all`` ends them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Managed] = []

    def start(self, name: str, argv: Sequence[str], cpus: set[int] | None) -> Managed:
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_child_setup(cpus),
            )
        managed = Managed(name, proc, log_path)
        self.running.append(managed)
        return managed

    def stop(self, managed: Managed) -> None:
        proc = managed.proc
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_GRACE)
        # Whatever is left of the group (workers of a supervisor that died, say).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if managed in self.running:
            self.running.remove(managed)

    def stop_all(self) -> None:
        for managed in reversed(list(self.running)):
            self.stop(managed)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Child processes, recursively, from /proc/<pid>/task/*/children."""
    out: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            stack.extend(kids)
    return out


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    # After the ")" the fields start at field 3 (state): utime is 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    return {p: process_cpu_seconds(p) for p in (pid, *descendants(pid))}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[p] - before.get(p, 0.0) for p in after)


def host_cpu_ticks() -> tuple[int, int, int]:
    """(busy, total, steal) clock ticks over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total, values[7]


def host_busy(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[float, float]:
    """(busy, steal) as a percentage of all CPUs between two samples."""
    total = after[1] - before[1]
    if total <= 0:
        return float("nan"), float("nan")
    return (100.0 * (after[0] - before[0]) / total, 100.0 * (after[2] - before[2]) / total)


def set_tree_affinity(pid: int, cpus: set[int]) -> None:
    for p in (pid, *descendants(pid)):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), cpus)


def http_get(url: str, headers: Mapping[str, str] | None = None,
             timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def wait_ready(managed: Managed, url: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if managed.proc.poll() is not None:
            raise RuntimeError(f"{managed.name} exited with {managed.proc.returncode}:\n"
                               f"{managed.log_tail()}")
        try:
            status, _, _ = http_get(url, timeout=1.0)
            if status == 200:
                return
            last = f"status {status}"
        except (OSError, urllib.error.URLError) as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{managed.name} not ready at {url} after {timeout:.0f}s ({last}):\n"
                       f"{managed.log_tail()}")


# ======================================================================
# Load generation.


@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> Load:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rps and total and p50 and p99):
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    if sock:
        errors = sum(int(x) for x in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Load(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(rps.group(1)), p50_ms=_ms(p50.group(1)), p99_ms=_ms(p99.group(1)),
        errors=errors, non2xx=int(non2xx.group(1)) if non2xx else 0,
    )


def _header_args() -> list[str]:
    return [f"{k}: {v}" for k, v in BENCH_HEADERS.items()]


class LoadGenerator:
    def __init__(self, procs: Processes, connections: int, force_python: bool) -> None:
        self.procs = procs
        self.connections = connections
        self.wrk = None if force_python else shutil.which("wrk")

    @property
    def name(self) -> str:
        return "wrk" if self.wrk else "python aiohttp (fallback)"

    def command(self, url: str, duration: float) -> list[str]:
        if self.wrk:
            argv = [self.wrk, "-t1", f"-c{self.connections}", f"-d{max(1, round(duration))}s",
                    "--latency"]
            for h in _header_args():
                argv += ["-H", h]
            return [*argv, url]
        argv = [sys.executable, str(Path(__file__).resolve()), "--role", "loadgen",
                "--url", url, "--connections", str(self.connections),
                "--duration", str(duration)]
        for h in _header_args():
            argv += ["--header", h]
        return argv

    def run(self, url: str, duration: float, cpus: set[int] | None) -> Load:
        managed = self.procs.start("loadgen", self.command(url, duration), cpus)
        try:
            managed.proc.wait(duration + 30)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"load generator did not finish:\n{managed.log_tail()}") from None
        finally:
            self.procs.stop(managed)
        output = managed.log_path.read_text(errors="replace")
        managed.log_path.unlink(missing_ok=True)
        if managed.proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({managed.proc.returncode}):\n{output}")
        if self.wrk:
            return parse_wrk(output)
        data = json.loads(output.strip().splitlines()[-1])
        return Load(**data)


# ======================================================================
# Targets.


@dataclass
class Result:
    key: str
    label: str
    load: Load
    cpu_us_per_req: float
    upstream_cpu_us_per_req: float
    processes: int
    host_busy_pct: float
    host_steal_pct: float


@dataclass
class Target:
    key: str
    label: str
    # Starts the server; returns it and the URL to load.
    start: Callable[[], tuple[Managed, str]]
    multi_core: bool = False
    is_upstream: bool = False
    expect_headers: dict[str, str] = field(default_factory=dict)
    expect_upstream_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Bench:
    args: argparse.Namespace
    procs: Processes
    workdir: Path
    upstream: Managed | None = None
    upstream_url: str = ""
    results: list[Result] = field(default_factory=list)
    loadgen_name: str = ""

    # CPU layout: with pinning the server under test gets a core of its own
    # and the load generator shares the other with the upstream.
    @property
    def pin(self) -> bool:
        return bool(self.args.pin) and (os.cpu_count() or 1) >= 2

    def cpus(self, role: str, multi_core: bool) -> set[int] | None:
        if not self.pin or multi_core:
            return None
        return {1} if role == "server" else {0}

    def all_cpus(self) -> set[int]:
        return set(range(os.cpu_count() or 1))

    def self_argv(self, *extra: str) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), *extra]

    def start_upstream(self) -> None:
        port = free_port()
        self.upstream = self.procs.start("upstream", self.self_argv(
            "--role", "upstream", "--port", str(port)), None)
        self.upstream_url = f"http://127.0.0.1:{port}"
        wait_ready(self.upstream, self.upstream_url + "/")

    def start_bare(self) -> tuple[Managed, str]:
        port = free_port()
        managed = self.procs.start("bare", self.self_argv(
            "--role", "bare", "--port", str(port), "--upstream", self.upstream_url),
            self.cpus("server", False))
        url = f"http://127.0.0.1:{port}"
        wait_ready(managed, url + "/")
        return managed, url

    def start_bastion(self, name: str, workers: int,
                      plugins: dict[str, Any]) -> tuple[Managed, str]:
        port, admin = free_port(), free_port()
        config = {
            "access_log": {"enabled": False},
            "limits": {"shutdown_grace": "2s"},
            "services": {"up": {"endpoints": [{"url": self.upstream_url}]}},
            "routes": [{"name": "all", "match": {"path_prefix": "/"}, "service": "up"}],
            "plugins": plugins,
        }
        config_path = self.workdir / f"{name}.yaml"
        config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
        managed = self.procs.start(name, [
            self.args.bastion, "run", "-c", str(config_path),
            "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
            "--workers", str(workers),
        ], self.cpus("server", workers > 1))
        wait_ready(managed, f"http://127.0.0.1:{admin}/readyz")
        return managed, f"http://127.0.0.1:{port}"

    def targets(self) -> list[Target]:
        headers_plugin = {"headers": {"request": {"set": {"X-A": "1"}},
                                      "response": {"set": {"X-B": "2"}}}}

        def bastion(name: str, workers: int, plugins: dict[str, Any]
                    ) -> Callable[[], tuple[Managed, str]]:
            return lambda: self.start_bastion(name, workers, plugins)

        def upstream() -> tuple[Managed, str]:
            assert self.upstream is not None
            return self.upstream, self.upstream_url

        all_targets = [
            Target("upstream", "upstream direct (aiohttp+uvloop, 1 proc)", upstream,
                   is_upstream=True),
            Target("bare", "bare aiohttp proxy (uvloop, 1 proc)", self.start_bare),
            Target("bastion", "bastion, no plugins, 1 worker", bastion("bastion", 1, {})),
            Target("bastion-headers", "bastion + headers plugin, 1 worker",
                   bastion("bastion-headers", 1, headers_plugin),
                   expect_headers={"X-B": "2"}, expect_upstream_headers={"X-A": "1"}),
            Target("bastion-2w", "bastion, no plugins, 2 workers", bastion("bastion-2w", 2, {}),
                   multi_core=True),
        ]
        wanted = self.args.only.split(",") if self.args.only else None
        return [t for t in all_targets if wanted is None or t.key in wanted]

    def check(self, target: Target, url: str) -> None:
        """The target answers the bench request correctly, and forwards like a proxy."""
        status, headers, body = http_get(url + BENCH_PATH, BENCH_HEADERS)
        if status != 200 or body != UPSTREAM_BODY:
            raise RuntimeError(f"{target.key}: bad answer {status}, {len(body)} bytes")
        for k, v in target.expect_headers.items():
            if headers.get(k) != v:
                raise RuntimeError(f"{target.key}: response header {k} is "
                                   f"{headers.get(k)!r}, expected {v!r}")
        if target.is_upstream:
            return
        # urllib sends "Connection: close": a proxy must not forward it.
        status, _, body = http_get(url + PROBE_PATH, BENCH_HEADERS)
        seen = {k.lower(): v for k, v in json.loads(body)}
        if status != 200 or seen.get("cookie") != BENCH_HEADERS["Cookie"]:
            raise RuntimeError(f"{target.key}: request headers not forwarded: {seen}")
        if "connection" in seen:
            raise RuntimeError(f"{target.key}: forwarded a hop-by-hop header: {seen}")
        for k, v in target.expect_upstream_headers.items():
            if seen.get(k.lower()) != v:
                raise RuntimeError(f"{target.key}: upstream saw {k}={seen.get(k.lower())!r}")

    def measure(self, target: Target, loadgen: LoadGenerator) -> Result:
        assert self.upstream is not None
        managed, url = target.start()
        try:
            if self.pin:
                if target.is_upstream:
                    set_tree_affinity(self.upstream.pid, {1})
                elif target.multi_core:
                    set_tree_affinity(self.upstream.pid, self.all_cpus())
                else:
                    set_tree_affinity(self.upstream.pid, {0})
            self.check(target, url)
            gen_cpus = self.cpus("loadgen", target.multi_core)
            if self.args.warmup > 0:
                loadgen.run(url + BENCH_PATH, self.args.warmup, gen_cpus)
            server_before = tree_cpu_seconds(managed.pid)
            up_before = tree_cpu_seconds(self.upstream.pid)
            host_before = host_cpu_ticks()
            load = loadgen.run(url + BENCH_PATH, self.args.duration, gen_cpus)
            busy, steal = host_busy(host_before, host_cpu_ticks())
            server_cpu = cpu_delta(server_before, tree_cpu_seconds(managed.pid))
            up_cpu = cpu_delta(up_before, tree_cpu_seconds(self.upstream.pid))
            n_procs = 1 + len(descendants(managed.pid))
            if managed.proc.poll() is not None:
                raise RuntimeError(f"{target.key} died during the run:\n{managed.log_tail()}")
        finally:
            if managed is not self.upstream:
                self.procs.stop(managed)
        per_req = 1e6 / load.requests if load.requests else float("nan")
        return Result(target.key, target.label, load, server_cpu * per_req,
                      float("nan") if target.is_upstream else up_cpu * per_req, n_procs,
                      busy, steal)

    def run(self) -> list[Result]:
        loadgen = LoadGenerator(self.procs, self.args.connections, self.args.python_load)
        self.loadgen_name = loadgen.name
        self.start_upstream()
        for round_no in range(self.args.rounds):
            for target in self.targets():
                result = self.measure(target, loadgen)
                self.results.append(result)
                print(f"  [round {round_no + 1}] {target.key:16} {result.load.rps:9.0f} req/s  "
                      f"p50 {result.load.p50_ms:7.2f} ms  p99 {result.load.p99_ms:7.2f} ms  "
                      f"CPU {result.cpu_us_per_req:6.0f} us/req  "
                      f"host busy {result.host_busy_pct:3.0f}%  "
                      f"steal {result.host_steal_pct:3.0f}%", flush=True)
        return self.results


# ======================================================================
# Report.


def _median(values: Iterator[float]) -> float:
    vals = [v for v in values if v == v]  # drop NaN
    return statistics.median(vals) if vals else float("nan")


@dataclass
class Row:
    key: str
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    upstream_cpu_us: float
    host_busy_pct: float
    errors: int
    rounds: int


def summarize(results: list[Result]) -> list[Row]:
    rows: list[Row] = []
    for key in dict.fromkeys(r.key for r in results):
        rs = [r for r in results if r.key == key]
        rows.append(Row(
            key, rs[0].label,
            _median(r.load.rps for r in rs), _median(r.load.p50_ms for r in rs),
            _median(r.load.p99_ms for r in rs), _median(r.cpu_us_per_req for r in rs),
            _median(r.upstream_cpu_us_per_req for r in rs),
            _median(r.host_busy_pct for r in rs),
            sum(r.load.errors + r.load.non2xx for r in rs), len(rs),
        ))
    return rows


def format_table(rows: list[Row]) -> str:
    def num(v: float, fmt: str) -> str:
        return "-" if v != v else format(v, fmt)

    head = ("| target | req/s | p50 ms | p99 ms | CPU µs/req (server) | "
            "CPU µs/req (upstream) | host CPU busy | errors |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.label} | {num(r.rps, '.0f')} | {num(r.p50_ms, '.2f')} | "
                     f"{num(r.p99_ms, '.2f')} | {num(r.cpu_us, '.0f')} | "
                     f"{num(r.upstream_cpu_us, '.0f')} | {num(r.host_busy_pct, '.0f')}% | "
                     f"{r.errors} |")
    return "\n".join(lines)


def format_ratios(rows: list[Row]) -> tuple[str, bool | None]:
    by = {r.key: r for r in rows}
    lines: list[str] = []
    verdict: bool | None = None

    def ratio(num: str, den: str, label: str, target: float | None = None) -> None:
        nonlocal verdict
        if num not in by or den not in by or not by[den].rps:
            return
        rps = by[num].rps / by[den].rps
        cpu = by[den].cpu_us / by[num].cpu_us if by[num].cpu_us else float("nan")
        line = f"- {label}: {rps:.2f}x req/s, {cpu:.2f}x by CPU per request"
        if target is not None:
            ok = rps >= target
            verdict = ok
            line += f" (target >= {target}: {'OK' if ok else 'BELOW TARGET'})"
        lines.append(line)

    ratio("bastion", "bare", "Bastion (1 worker) / bare aiohttp proxy", 0.8)
    ratio("bastion-headers", "bare", "Bastion + headers / bare aiohttp proxy")
    ratio("bastion-headers", "bastion", "Bastion + headers / Bastion (cost of the plugin)")
    ratio("bastion-2w", "bastion", "Bastion (2 workers) / Bastion (1 worker)")
    ratio("bare", "upstream", "bare proxy / upstream direct")
    return "\n".join(lines), verdict


def _no_nan(value: Any) -> Any:
    """NaN (a missing figure) as null, for strict JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


def source_revision(*paths: str) -> str:
    """The commit under test, and whether the work tree under ``paths`` differs from it."""
    paths = paths or ("proxy", "traffic")
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", *paths],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    where = " or ".join(f"{p}/" for p in paths)
    return head + (f" + uncommitted changes in {where}" if dirty else "")


def machine_description() -> str:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"nproc {os.cpu_count()}, {model}, Python {sys.version.split()[0]}"


# ======================================================================
# Entry point.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of measured load per target (default 10; 3 with --quick)")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds of unmeasured load before each (default 2; 1 with --quick)")
    p.add_argument("--connections", type=int, default=64, help="concurrent connections")
    p.add_argument("--quick", action="store_true", help="short run: 3 s per target")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every target this many times, interleaved; report medians")
    p.add_argument("--only", help="comma-separated target keys: " + ",".join(TARGET_KEYS))
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the server under test to CPU 1 and the rest to CPU 0")
    p.add_argument("--python-load", action="store_true",
                   help="use the Python load generator even where wrk is installed")
    p.add_argument("--bastion", default=None, help="the bastion executable")
    p.add_argument("--json", type=Path, help="also write the results here as JSON")
    # Internal: the helper processes.
    p.add_argument("--role", choices=["upstream", "bare", "loadgen"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--upstream", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--header", action="append", default=[], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    check_only(p, args.only, TARGET_KEYS)
    if args.rounds < 1 or args.connections < 1:
        p.error("--rounds and --connections must be at least 1")
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    args.bastion = find_bastion(args.bastion)
    return args


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP end the run as SystemExit (so cleanup runs); Ctrl-C as usual."""
    signal.signal(signal.SIGTERM, _raise_on_signal)
    signal.signal(signal.SIGHUP, _raise_on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def check_only(p: argparse.ArgumentParser, only: str | None, keys: Sequence[str]) -> None:
    """``--only`` names known targets, or the parser exits with the list."""
    if only:
        unknown = set(only.split(",")) - set(keys)
        if unknown:
            p.error(f"unknown target(s) {sorted(unknown)}; choose from {', '.join(keys)}")


def find_bastion(given: str | None) -> str | None:
    """``--bastion``, else the executable beside this Python, else on PATH."""
    if given is not None:
        return given
    beside = Path(sys.executable).with_name("bastion")
    return str(beside) if beside.exists() else shutil.which("bastion")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "upstream":
        role_upstream(args.port)
        return 0
    if args.role == "bare":
        role_bare(args.port, args.upstream)
        return 0
    if args.role == "loadgen":
        role_loadgen(args.url, args.connections, args.duration, args.header)
        return 0
    if not args.bastion:
        print("cannot find the bastion executable (use --bastion)", file=sys.stderr)
        return 2

    exit_on_signals()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    procs = Processes(workdir)
    bench = Bench(args, procs, workdir)
    started = datetime.datetime.now(datetime.UTC)
    revision = source_revision()
    print(f"# proxy throughput, {started:%Y-%m-%d %H:%M} UTC; {machine_description()}")
    print(f"# bastion: {args.bastion} at {revision}")
    print(f"# {args.duration:g} s per target after {args.warmup:g} s warm-up, "
          f"{args.connections} connections, {args.rounds} round(s), "
          f"pinning {'on' if bench.pin else 'off'}", flush=True)
    try:
        results = bench.run()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = summarize(results)
    print(f"\nload generator: {bench.loadgen_name}; GET {BENCH_PATH}\n")
    print(format_table(rows))
    ratios, verdict = format_ratios(rows)
    print("\nratios:\n" + (ratios or "(none: a ratio needs both of its targets)"))
    if args.json is not None:
        args.json.write_text(json.dumps(_no_nan({
            "date": started.isoformat(), "machine": machine_description(),
            "revision": revision, "argv": sys.argv, "load_generator": bench.loadgen_name,
            "rows": [asdict(r) for r in rows], "runs": [asdict(r) for r in results],
        }), indent=2))
    if verdict is False:
        print("\nBastion (1 worker) is below 0.8x of the bare proxy: profile it "
              "(see bench/README.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
