"""A compiled config: routing table, services and live plugin instances.

A runtime is immutable once built. Reloading builds a new one beside the old;
requests hold the runtime they started on, and the old one is closed when the
last of them finishes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from proxy.config import ConfigError, ConfigIssue, LoadedConfig, format_path
from proxy.forwarding import TrustedProxies
from proxy.metrics import Metrics
from proxy.pipeline import PluginChain
from proxy.plugin import Plugin, PluginContext, resolve_all_plugins
from proxy.routing import Route, RouteTable
from proxy.store import Store, create_store
from proxy.upstream import Service

log = logging.getLogger("bastion.runtime")


@dataclass(eq=False)
class Runtime:
    loaded: LoadedConfig
    table: RouteTable
    services: dict[str, Service]
    plugins: list[Plugin[Any]]
    trusted: TrustedProxies
    store: Store
    owns_store: bool
    generation: int
    active: int = 0
    retired: bool = False
    _closed: bool = field(default=False, repr=False)

    @property
    def limits(self) -> Any:
        return self.loaded.config.limits

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for plugin in self.plugins:
            try:
                await plugin.close()
            except Exception:
                log.exception("plugin %s failed to close", plugin.name)
        if self.owns_store:
            await self.store.close()


async def build_runtime(loaded: LoadedConfig, metrics: Metrics, *, generation: int = 1,
                        builtin_echo_url: str | None = None,
                        previous: Runtime | None = None, start: bool = True) -> Runtime:
    """Compile ``loaded`` and start its plugins. Raises ConfigError; leaves nothing running."""
    config = loaded.config
    resolved, issues = resolve_all_plugins(config, loaded.lines)
    if issues:
        raise ConfigError(issues, loaded.source)

    services: dict[str, Service] = {}
    for name, svc in config.services.items():
        try:
            services[name] = Service(
                name, svc, builtin_echo_url,
                previous.services.get(name) if previous else None,
            )
        except ValueError as exc:
            raise ConfigError([ConfigIssue(f"services.{name}.endpoints", str(exc),
                                           loaded.lines.get(("services", name)))],
                              loaded.source) from None

    if previous is not None and previous.loaded.config.store == config.store:
        store, owns_store = previous.store, False
    else:
        store, owns_store = create_store(config.store), True
    ctx = PluginContext(store=store, metrics=metrics, consumers=tuple(config.consumers),
                        base_dir=loaded.base_dir)

    instances: dict[str, Plugin[Any]] = {}
    started: list[Plugin[Any]] = []
    routes: list[Route] = []
    try:
        for i, route_cfg in enumerate(config.routes):
            chain_plugins = []
            for rp in resolved[route_cfg.name]:
                key = rp.key()
                if key not in instances:
                    where, line = format_path(rp.where), loaded.lines.get(rp.where)
                    try:
                        instances[key] = rp.cls(rp.config, ctx)
                    except Exception as exc:
                        raise ConfigError([ConfigIssue(where, f"plugin failed to build: {exc}",
                                                       line)], loaded.source) from exc
                    if start:
                        try:
                            await instances[key].start()
                        except Exception as exc:
                            raise ConfigError([ConfigIssue(
                                where, f"plugin failed to start: {exc}", line)],
                                loaded.source) from exc
                        started.append(instances[key])
                chain_plugins.append(instances[key])
            routes.append(Route(route_cfg, i, services[route_cfg.service],
                                PluginChain(chain_plugins)))
    except BaseException:
        for plugin in started:
            try:
                await plugin.close()
            except Exception:
                log.exception("plugin %s failed to close", plugin.name)
        if owns_store:
            await store.close()
        raise

    return Runtime(
        loaded=loaded,
        table=RouteTable(routes),
        services=services,
        plugins=list(instances.values()),
        trusted=TrustedProxies(config.trusted_proxies),
        store=store,
        owns_store=owns_store,
        generation=generation,
    )
