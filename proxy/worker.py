"""A worker process: one Gateway on the shared port, driven by its supervisor.

The supervisor passes everything through the environment:

- ``BASTION_ACTIVE_CONFIG``: the file holding the config text to serve (the
  supervisor rewrites it before sending SIGHUP), and beside it ``.json`` with
  its serial number and the demo upstream's address;
- ``BASTION_CONFIG_SOURCE`` / ``BASTION_CONFIG_BASE_DIR``: the user's file name
  (for messages) and the directory relative paths resolve against;
- ``BASTION_LISTEN`` / ``BASTION_ADMIN``: command-line overrides;
- ``BASTION_STATUS_FD``: a pipe for JSON status lines back to the supervisor.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

from proxy.config import ConfigError, LoadedConfig, parse_config, with_overrides
from proxy.gateway import Gateway
from proxy.metrics import process_metrics

log = logging.getLogger("bastion.worker")

# Allocations between young collections (CPython's default is 700).
_GC_YOUNG_THRESHOLD = 20_000


def active_meta() -> dict[str, Any]:
    """The serial and demo-upstream address of the config in the active file."""
    path = Path(os.environ["BASTION_ACTIVE_CONFIG"] + ".json")
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return meta


def load_active() -> LoadedConfig:
    path = Path(os.environ["BASTION_ACTIVE_CONFIG"])
    loaded = parse_config(
        path.read_text(encoding="utf-8"),
        os.environ.get("BASTION_CONFIG_SOURCE", str(path)),
        Path(os.environ.get("BASTION_CONFIG_BASE_DIR", str(path.parent))),
    )
    listen = os.environ.get("BASTION_LISTEN")
    return with_overrides(loaded, listen.split(",") if listen else None,
                          os.environ.get("BASTION_ADMIN") or None)


def settle_gc() -> None:
    """Keep the cyclic GC off the request path.

    Requests make no reference cycles worth chasing often, but each one
    allocates enough to trigger a young collection every few requests, and a
    full one every few seconds that walks every long-lived object (config,
    compiled rules) and stalls all requests in flight. Freeze what exists now
    (it lives as long as this config) and collect young objects less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, 20, 50)


class _Status:
    def __init__(self) -> None:
        fd = os.environ.get("BASTION_STATUS_FD")
        self._fd = int(fd) if fd else None

    def send(self, **event: Any) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, (json.dumps({"pid": os.getpid(), **event}) + "\n").encode())
        except OSError:
            self._fd = None  # supervisor gone; keep serving until told to stop


async def run_worker() -> None:
    status = _Status()
    meta = active_meta()
    loaded = load_active()
    gateway = Gateway(loaded, metrics=process_metrics(),
                      builtin_echo_url=meta.get("builtin_echo_url"), reuse_port=True)
    await gateway.start()
    settle_gc()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloading: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        serial = 0
        try:
            meta = active_meta()
            serial = int(meta["serial"])
            new = load_active()
            gateway.builtin_echo_url = meta.get("builtin_echo_url")
            await gateway.reload(new)
            settle_gc()
        except (ConfigError, OSError, ValueError, KeyError) as exc:
            # The supervisor validated this config, so this is rare (a plugin
            # that failed to start here): keep serving the old one and say so.
            log.error("worker reload failed, still serving the previous config: %s", exc)
            status.send(event="reload", ok=False, serial=serial, error=str(exc))
            return
        status.send(event="reload", ok=True, serial=serial)

    def on_hup() -> None:
        task = loop.create_task(reload())
        reloading.add(task)
        task.add_done_callback(reloading.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Ctrl-C reaches the whole process group; the supervisor turns it into an
    # orderly SIGTERM for each worker.
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    status.send(event="ready", serial=meta["serial"], addresses=gateway.addresses)
    await stop.wait()
    log.info("worker %d draining", os.getpid())
    await gateway.stop()


def main() -> None:
    from proxy.cli import run_loop, setup_logging

    setup_logging(os.environ.get("BASTION_LOG_LEVEL", "info"))
    run_loop(run_worker())


if __name__ == "__main__":
    main()
