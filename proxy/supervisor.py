"""`bastion run`: the supervisor process.

It owns the control plane: it loads and validates config, hosts the admin
listener and the demo upstream, and keeps N worker processes serving the data
port (SO_REUSEPORT). A reload (file change, SIGHUP, admin PUT /config) is
validated here first; only a config that builds reaches the workers, each of
which swaps it in atomically. A worker that dies is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.admin import admin_app
from proxy.config import ConfigError, LoadedConfig, load_config, parse_config, with_overrides
from proxy.echo import echo_app
from proxy.metrics import Metrics, process_metrics
from proxy.runtime import build_runtime

log = logging.getLogger("bastion.supervisor")

_RESTART_BACKOFF_MAX = 10.0
_RELOAD_ACK_TIMEOUT = 10.0


@dataclass(eq=False)
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    ready: bool = False
    reload_serial: int = 0
    failed_serial: int = 0
    failure: str = ""
    started_at: float = 0.0
    restarts: int = 0
    acks: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


def site_port(site: web.TCPSite) -> int:
    """The port a site bound (for port 0)."""
    server: Any = site._server
    port: int = server.sockets[0].getsockname()[1]
    return port


def uses_builtin_echo(loaded: LoadedConfig) -> bool:
    return any(ep.url == "builtin:echo"
               for svc in loaded.config.services.values() for ep in svc.endpoints)


async def validate_build(loaded: LoadedConfig, metrics: Metrics, start: bool = True) -> None:
    """Build (and by default start) the runtime, to catch what pydantic alone cannot.

    The supervisor starts plugins too, so a plugin whose start() fails is
    refused here rather than in every worker; ``bastion check`` does not, so
    it needs nothing but the file.
    """
    runtime = await build_runtime(loaded, metrics, builtin_echo_url="http://127.0.0.1:9",
                                  start=start)
    await runtime.close()


class Supervisor:
    def __init__(self, config_path: str | None, workers: int = 1,
                 listen: list[str] | None = None, admin: str | None = None,
                 watch_interval: float = 1.0, log_level: str = "info") -> None:
        self.config_path = Path(config_path).resolve() if config_path else None
        self.n_workers = workers
        self.listen = listen
        self.admin = admin
        self.watch_interval = watch_interval
        self.log_level = log_level
        self.metrics = process_metrics()
        self.workers = [_Worker(i) for i in range(workers)]
        self.loaded: LoadedConfig | None = None
        self.serial = 0
        self.state_dir = Path(tempfile.mkdtemp(prefix="bastion-"))
        self.active_file = self.state_dir / "active.yaml"
        self.echo_url: str | None = None
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._acked = asyncio.Condition()
        self._runners: list[web.AppRunner] = []
        self._file_stamp: tuple[int, int, int] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- config

    def _load(self, text: str | None = None) -> LoadedConfig:
        if text is None:
            loaded = load_config(self.config_path)
        else:
            source = str(self.config_path) if self.config_path else "<admin>"
            base = self.config_path.parent if self.config_path else Path.cwd()
            loaded = parse_config(text, source, base)
        return with_overrides(loaded, self.listen, self.admin)

    def _write_active(self, loaded: LoadedConfig) -> None:
        self.serial += 1
        meta = {"serial": self.serial, "builtin_echo_url": self.echo_url}
        for path, text in ((self.active_file, loaded.text),
                           (Path(str(self.active_file) + ".json"), json.dumps(meta))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)

    def _stamp(self) -> tuple[int, int, int] | None:
        if self.config_path is None:
            return None
        try:
            st = self.config_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    async def reload(self, text: str | None = None, origin: str = "file") -> list[str]:
        """Validate, then hand the new config to every worker. Returns the issues."""
        async with self._lock:
            try:
                loaded = self._load(text)
                await validate_build(loaded, self.metrics)
            except ConfigError as exc:
                self.metrics.config_reloads.labels("error").inc()
                for issue in exc.issues:
                    log.error("config reload (%s) rejected, still serving the previous one: "
                              "%s: %s", origin, exc.source, issue)
                return [str(i) for i in exc.issues]
            assert self.loaded is not None
            if (loaded.config.listeners != self.loaded.config.listeners
                    or loaded.config.admin.address != self.loaded.config.admin.address):
                log.warning("listener addresses changed: they take effect on restart")
            if uses_builtin_echo(loaded) and self.echo_url is None:
                await self._start_echo()
            self.loaded = loaded
            self._write_active(loaded)
            serial = self.serial
            for w in self.workers:
                if w.process is not None and w.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        w.process.send_signal(signal.SIGHUP)
            failures = await self._await_acks(serial)
            if failures:
                # Validated here yet failed there (a plugin's start() meeting a
                # different world): those workers keep their previous config.
                self.metrics.config_reloads.labels("error").inc()
                for failure in failures:
                    log.error("config reload (%s): %s", origin, failure)
                return failures
            self.metrics.config_reloads.labels("success").inc()
            log.info("config reloaded (%s), serial %d", origin, serial)
            return []

    async def _await_acks(self, serial: int) -> list[str]:
        """Wait (boundedly) for every live worker to take up ``serial``; its failures."""

        def settled(w: _Worker) -> bool:
            return (w.reload_serial >= serial or w.failed_serial >= serial
                    or w.process is None or w.process.returncode is not None)

        async def wait() -> None:
            async with self._acked:
                await self._acked.wait_for(lambda: all(map(settled, self.workers)))

        try:
            await asyncio.wait_for(wait(), _RELOAD_ACK_TIMEOUT)
        except TimeoutError:
            return [f"worker {w.index} did not confirm the reload in {_RELOAD_ACK_TIMEOUT:g}s"
                    for w in self.workers if not settled(w)]
        return [f"worker {w.index} could not apply it: {w.failure}"
                for w in self.workers if w.failed_serial >= serial]

    async def _notify_acks(self) -> None:
        async with self._acked:
            self._acked.notify_all()

    # ------------------------------------------------------- control plane API

    def current(self) -> LoadedConfig:
        assert self.loaded is not None
        return self.loaded

    async def apply(self, text: str) -> list[str]:
        return await self.reload(text, origin="admin")

    def ready(self) -> bool:
        return all(w.ready and w.process is not None and w.process.returncode is None
                   for w in self.workers)

    def status(self) -> dict[str, Any]:
        return {
            "config_serial": self.serial,
            "workers": [
                {"pid": w.process.pid if w.process else None, "ready": w.ready,
                 "restarts": w.restarts, "config_serial": w.reload_serial}
                for w in self.workers
            ],
        }

    # -------------------------------------------------------------- processes

    async def _start_echo(self) -> None:
        runner = web.AppRunner(echo_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        port = site_port(site)
        self.echo_url = f"http://127.0.0.1:{port}"
        log.info("demo echo upstream on %s", self.echo_url)

    async def _start_admin(self) -> None:
        assert self.loaded is not None
        cfg = self.loaded.config.admin
        if not cfg.enabled:
            return
        runner = web.AppRunner(admin_app(self, self.metrics), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, cfg.host, cfg.port).start()
        self._runners.append(runner)
        log.info("admin listening on http://%s", cfg.address)

    def _worker_env(self, status_fd: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "BASTION_ACTIVE_CONFIG": str(self.active_file),
            "BASTION_CONFIG_SOURCE": self.loaded.source if self.loaded else "",
            "BASTION_CONFIG_BASE_DIR": str(self.loaded.base_dir if self.loaded else Path.cwd()),
            "BASTION_LISTEN": ",".join(self.listen or []),
            "BASTION_ADMIN": self.admin or "",
            "BASTION_STATUS_FD": str(status_fd),
            "BASTION_LOG_LEVEL": self.log_level,
        })
        return env

    async def _spawn(self, w: _Worker) -> None:
        read_fd, write_fd = os.pipe()
        try:
            w.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "proxy.worker", env=self._worker_env(write_fd),
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(write_fd)
        w.ready = False
        w.started_at = time.monotonic()
        self._track(self._read_status(w, read_fd))
        log.info("worker %d started (pid %d)", w.index, w.process.pid)

    async def _read_status(self, w: _Worker, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
        try:
            while line := await reader.readline():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                serial = int(event.get("serial") or 0)
                if event.get("event") == "ready":
                    w.ready = True
                    w.reload_serial = serial
                elif event.get("event") == "reload":
                    if event.get("ok"):
                        w.reload_serial = max(w.reload_serial, serial)
                    else:
                        w.failed_serial = max(w.failed_serial, serial)
                        w.failure = str(event.get("error"))
                        log.error("worker %d failed to reload: %s", w.index, w.failure)
                await self._notify_acks()
        finally:
            transport.close()

    async def _watch_worker(self, w: _Worker) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            assert w.process is not None
            code = await w.process.wait()
            w.ready = False
            await self._notify_acks()
            if self._stopping.is_set():
                return
            lived = time.monotonic() - w.started_at
            log.error("worker %d (pid %d) exited with %s; restarting", w.index,
                      w.process.pid, code)
            backoff = 0.5 if lived > 30 else min(backoff * 2, _RESTART_BACKOFF_MAX)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff if lived < 5 else 0.05)
            if self._stopping.is_set():
                return
            w.restarts += 1
            await self._spawn(w)

    async def _watch_file(self) -> None:
        self._file_stamp = self._stamp()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.watch_interval)
            stamp = self._stamp()
            if stamp is not None and stamp != self._file_stamp:
                self._file_stamp = stamp
                await self.reload(origin="file change")

    def _track(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -------------------------------------------------------------------- run

    async def run(self) -> int:
        try:
            self.loaded = self._load()
            await validate_build(self.loaded, self.metrics)
        except ConfigError as exc:
            for issue in exc.issues:
                print(f"{exc.source}: {issue}", file=sys.stderr)
            return 2
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP,
                                lambda: self._track(self.reload(origin="SIGHUP")))
        try:
            if uses_builtin_echo(self.loaded):
                await self._start_echo()
            self._write_active(self.loaded)
            for w in self.workers:
                await self._spawn(w)
                self._track(self._watch_worker(w))
            await self._start_admin()
            if self.config_path is not None:
                self._track(self._watch_file())
            listen = ", ".join(f"http://{ln.address}" for ln in self.loaded.config.listeners)
            log.info("bastion serving on %s with %d worker(s)", listen, self.n_workers)
            await self._stopping.wait()
            log.info("shutting down: draining workers")
            await self._stop_workers()
            return 0
        finally:
            for runner in self._runners:
                await runner.cleanup()
            for task in list(self._tasks):
                task.cancel()
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def _stop_workers(self) -> None:
        assert self.loaded is not None
        grace = self.loaded.config.limits.shutdown_grace + 5.0
        procs = [w.process for w in self.workers
                 if w.process is not None and w.process.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), grace)
        except TimeoutError:
            for p in procs:
                if p.returncode is None:
                    log.warning("worker pid %d did not drain in time; killing", p.pid)
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
