"""Shared pytest fixtures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from proxy.config import parse_config
from proxy.echo import echo_app
from proxy.gateway import Gateway
from proxy.supervisor import site_port

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

_LOCAL_REDIS = ("127.0.0.1", 6379)


_HANDED_OUT: set[int] = set()


def free_tcp_port() -> int:
    """A port that was free a moment ago (another process could still grab it).

    The kernel may hand the same ephemeral port to two binds in a row once the
    first socket is closed, so a port given out before in this test session is
    never given again: a gateway's listen and admin ports must differ.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def redis_answers_ping(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private redis-server subprocess that a test may kill and start again.

    The port stays the same across restarts, so clients configured with `url`
    can be checked for reconnecting by themselves. Nothing is persisted.
    """

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = free_tcp_port() if port is None else port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, ready_timeout: float = 5.0) -> None:
        if self.running:
            return
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if redis_answers_ping("127.0.0.1", self.port, timeout=0.2):
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not come up on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing anything gracefully."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=5)
        self._proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a usable Redis: the local one on 6379, else a private subprocess."""
    if redis_answers_ping(*_LOCAL_REDIS):
        yield "redis://{}:{}/0".format(*_LOCAL_REDIS)
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis answering on 127.0.0.1:6379 and no redis-server binary")
    server = RedisServer(binary)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"could not start redis-server: {exc}")
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test, so tests sharing a Redis never collide."""
    return f"bastion-test:{uuid.uuid4().hex}:"


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[[], RedisServer]]:
    """Start private redis-servers (on free ports) that the test may kill/restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary")
    servers: list[RedisServer] = []

    def start() -> RedisServer:
        assert binary is not None
        server = RedisServer(binary)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.kill()


# ---------------------------------------------------------------------------
# Gateways and upstreams
# ---------------------------------------------------------------------------


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")


class GatewayProcess:
    """``bastion run`` as a real process, with its config in a file the test may rewrite."""

    def __init__(self, config: dict[str, Any] | None, tmp_path: Path, workers: int = 1,
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        """With ``config=None`` the gateway runs on its embedded default config."""
        self.port = free_tcp_port()
        self.admin_port = free_tcp_port()
        self.config_file = tmp_path / "gateway.yaml"
        self.log_file = tmp_path / "gateway.log"
        config_args: list[str] = []
        if config is not None:
            self.write_config(config)
            config_args = ["-c", str(self.config_file)]
        self.args = [
            sys.executable, "-m", "proxy.cli", "run", *config_args,
            "--listen", f"127.0.0.1:{self.port}", "--admin", f"127.0.0.1:{self.admin_port}",
            "--workers", str(workers), "--watch-interval", "0.1", *extra_args,
        ]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def write_config(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_file)

    def start(self) -> GatewayProcess:
        self._log = self.log_file.open("ab")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.admin_url + "/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway not ready after {timeout}s:\n{self.log()}")

    def status(self) -> dict[str, Any]:
        """The supervisor's /readyz document (served with 503 while not ready)."""
        try:
            with urllib.request.urlopen(self.admin_url + "/readyz", timeout=2) as resp:
                data: dict[str, Any] = json.load(resp)
        except urllib.error.HTTPError as exc:
            data = json.load(exc)
        return data

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start ``bastion run`` processes: ``gateway_process(config, workers=2)``."""
    started: list[GatewayProcess] = []

    def start(config: dict[str, Any] | None, **kwargs: Any) -> GatewayProcess:
        sub = tmp_path / f"gw{len(started)}"
        sub.mkdir()
        gw = GatewayProcess(config, sub, **kwargs)
        started.append(gw)
        return gw.start()

    yield start
    for gw in started:
        gw.stop()


def service(*urls: str, **extra: Any) -> dict[str, Any]:
    """A service config for these endpoint URLs."""
    return {"endpoints": [{"url": u} for u in urls], **extra}


def simple_config(upstream_url: str, **extra: Any) -> dict[str, Any]:
    """One catch-all route to one upstream; ``extra`` merges into the top level."""
    config: dict[str, Any] = {
        "access_log": {"enabled": False},
        "services": {"up": service(upstream_url)},
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "service": "up"}],
    }
    config.update(extra)
    return config


@dataclass
class InProcessGateway:
    gateway: Gateway

    @property
    def url(self) -> str:
        host, port = self.gateway.addresses[0]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self.gateway.addresses[0][1]


@pytest.fixture
async def gateway() -> AsyncIterator[Callable[..., Awaitable[InProcessGateway]]]:
    """A Gateway in the test's own event loop, on a free port: ``await gateway(config)``."""
    started: list[Gateway] = []

    async def start(config: dict[str, Any] | str) -> InProcessGateway:
        if isinstance(config, dict):
            config = {"listeners": [{"address": "127.0.0.1:0"}], **config}
            text = yaml.safe_dump(config, sort_keys=False)
        else:
            text = config
        gw = Gateway(parse_config(text, "<test>"))
        await gw.start()
        started.append(gw)
        return InProcessGateway(gw)

    yield start
    for gw in started:
        await gw.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Serve an aiohttp app (or the echo app) on a free port: ``url = await upstream(app)``."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application | None = None, port: int = 0) -> str:
        runner = web.AppRunner(app or echo_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{site_port(site)}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that leaves requests as the test wrote them."""
    async with aiohttp.ClientSession(auto_decompress=False,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
