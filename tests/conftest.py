"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

_LOCAL_REDIS = ("127.0.0.1", 6379)


def free_tcp_port() -> int:
    """A port that was free a moment ago (another process could still grab it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
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
