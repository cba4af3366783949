"""The admin listener: metrics, health, and the running config.

Read-only endpoints are open (the listener is loopback by default); anything
that changes state needs ``Authorization: Bearer <admin.token>``, and with no
token configured it is refused outright.

Feature packages add their own endpoints (the WAF's CC bans, say) through
the entry-point group ``bastion.admin``: a function ``(app, AdminContext)``
that adds routes, as ``bastion.commands`` adds CLI commands.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

from aiohttp import web

from proxy.config import LoadedConfig, redacted
from proxy.metrics import CONTENT_TYPE, Metrics
from proxy.store import Store, StoreConfig, create_store

log = logging.getLogger("bastion.admin")

MAX_CONFIG_BYTES = 4 * 1024 * 1024


class ControlPlane(Protocol):
    """What the admin API needs from whoever runs the gateway."""

    def current(self) -> LoadedConfig: ...

    async def apply(self, text: str) -> list[str]:
        """Validate and switch to ``text``; the issues found, empty when applied."""
        ...

    def ready(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data, indent=2),
                        content_type="application/json")


def redacted_config(loaded: LoadedConfig) -> dict[str, Any]:
    data = loaded.config.model_dump(mode="json")
    # Credential fields are secrets whatever they are called.
    for consumer in data.get("consumers", []):
        consumer["credentials"] = [
            {k: (v if k in ("id", "type") else "***") for k, v in cred.items()}
            for cred in consumer.get("credentials", [])
        ]
    result: dict[str, Any] = redacted(data)
    return result


@dataclass
class AdminContext:
    """What an admin extension gets: the control plane, the auth check, the store."""

    control: ControlPlane
    # None when the request may change state; else the 401/403 to answer.
    authorize: Callable[[web.Request], web.Response | None]
    _store: Store | None = field(default=None, repr=False)
    _store_config: StoreConfig | None = field(default=None, repr=False)
    _retired: list[Store] = field(default_factory=list, repr=False)

    def store(self) -> Store:
        """The store the running config names (the workers' shared state, with Redis)."""
        wanted = self.control.current().config.store
        if self._store is None or self._store_config != wanted:
            old = self._store
            self._store, self._store_config = create_store(wanted), wanted.model_copy()
            if old is not None:
                self._retired.append(old)
        return self._store

    async def close(self) -> None:
        for store in [*self._retired, *([self._store] if self._store else [])]:
            try:
                await store.close()
            except Exception:
                log.exception("admin store failed to close")


def json_response(data: Any, status: int = 200) -> web.Response:
    """The admin API's JSON answer (for extensions)."""
    return _json(data, status)


def admin_app(control: ControlPlane, metrics: Metrics) -> web.Application:
    app = web.Application(client_max_size=MAX_CONFIG_BYTES)

    def authorize(request: web.Request) -> web.Response | None:
        token = control.current().config.admin.token
        secret = token.get_secret_value() if token is not None else ""
        if not secret:
            return _json({"error": "admin.token is not configured: state changes are disabled"},
                         403)
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), secret.encode()):
            return web.Response(status=401, text=json.dumps({"error": "bad or missing token"}),
                                content_type="application/json",
                                headers={"WWW-Authenticate": 'Bearer realm="bastion-admin"'})
        return None

    async def get_metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def healthz(request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        ready = control.ready()
        return _json({"ready": ready, **control.status()}, 200 if ready else 503)

    async def get_config(request: web.Request) -> web.Response:
        loaded = control.current()
        return _json({"source": loaded.source, "config": redacted_config(loaded)})

    async def put_config(request: web.Request) -> web.Response:
        denied = authorize(request)
        if denied is not None:
            return denied
        try:
            text = await request.text()
        except UnicodeDecodeError:
            return _json({"error": "the config must be UTF-8 text"}, 400)
        issues = await control.apply(text)
        if issues:
            return _json({"error": "invalid config; the running config is unchanged",
                          "issues": issues}, 400)
        return _json({"status": "applied", **control.status()})

    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/config", get_config)
    app.router.add_put("/config", put_config)

    context = AdminContext(control, authorize)
    for ep in sorted(entry_points(group="bastion.admin"), key=lambda e: e.name):
        try:
            ep.load()(app, context)
        except Exception as exc:  # a broken extension must not take the admin API down
            log.warning("admin extension %s unavailable: %s", ep.name, exc)

    async def cleanup(app: web.Application) -> None:
        await context.close()

    app.on_cleanup.append(cleanup)
    return app
