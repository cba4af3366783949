"""The plugin API: the one contract every Bastion feature is written against.

A plugin is a class with a pydantic config model and up to five async hooks:

    on_request_headers(flow)
    on_request_body(flow, chunk, end) -> chunk
    on_response_headers(flow)
    on_response_body(flow, chunk, end) -> chunk
    on_done(flow)

Any hook may answer locally with ``flow.respond(...)``; the rest of the chain
is then skipped. Plugins are found through the entry-point group
``bastion.plugins`` (name -> ``module:Class``), so a third-party package adds
one exactly as the built-ins do. One instance is built per distinct resolved
config when a config loads, and lives until that config is replaced.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, SecretBytes, SecretStr, ValidationError

from proxy.config import (
    Config,
    ConfigIssue,
    ConfigPath,
    ConsumerConfig,
    format_path,
    issue_at,
    iter_plugin_configs,
    validation_issues,
)

if TYPE_CHECKING:
    from proxy.flow import Flow
    from proxy.metrics import Metrics
    from proxy.store import Store

__all__ = [
    "EmptyConfig",
    "Group",
    "Plugin",
    "PluginContext",
    "available_plugins",
    "register_plugin",
]

ENTRY_POINT_GROUP = "bastion.plugins"


class Group(IntEnum):
    """Phase groups, run in this order (as Higress orders AUTHN/AUTHZ/STATS)."""

    # Before anyone is authenticated: flood protection and IP allow/deny, so
    # a flood costs no credential checks.
    EDGE = 50
    AUTHN = 100
    AUTHZ = 200
    SECURITY = 300
    TRAFFIC = 400
    AI = 500


class EmptyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass
class PluginContext:
    """What a plugin may use besides its own config."""

    store: Store
    metrics: Metrics
    consumers: tuple[ConsumerConfig, ...] = ()
    base_dir: Path = field(default_factory=Path.cwd)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("bastion.plugin"))


class Plugin(Generic[ConfigT]):
    """Base class; override only the hooks you need (the rest cost nothing)."""

    name: ClassVar[str] = ""
    group: ClassVar[Group] = Group.TRAFFIC
    # Higher runs earlier within its group.
    priority: ClassVar[int] = 0
    config_model: ClassVar[type[BaseModel]] = EmptyConfig
    # True: on_response_body sees every response body as a stream (and the
    # gateway drops Content-Length, since the plugin may rewrite it). False:
    # it sees only bodies it asked for with flow.buffer_response_body(), so
    # other responses stream through untouched.
    response_body_streaming: ClassVar[bool] = True

    def __init__(self, config: ConfigT, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        # Set to a byte count to receive the whole request body in one
        # on_request_body(end=True) call; the pipeline buffers once for all
        # plugins that ask. Past the limit: "reject" answers 413, "truncate"
        # hands over the first `limit` bytes and streams the rest unseen.
        self.request_body_limit: int | None = None
        self.request_body_overflow: Literal["reject", "truncate"] = "reject"

    async def start(self) -> None:
        """Called once after construction, before the config goes live."""

    async def close(self) -> None:
        """Called once when the config this instance belongs to is retired."""

    async def on_request_headers(self, flow: Flow) -> None:
        pass

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        return chunk

    async def on_response_headers(self, flow: Flow) -> None:
        pass

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        return chunk

    async def on_done(self, flow: Flow) -> None:
        pass

    def overrides(self, hook: str) -> bool:
        return getattr(type(self), hook) is not getattr(Plugin, hook)

    @classmethod
    def check_config(cls, config: Config,
                     uses: Sequence[tuple[ConfigPath, BaseModel]]) -> list[tuple[ConfigPath, str]]:
        """Cross-checks a field-by-field model cannot make, as (path, message) pairs.

        Called for every available plugin at each load, used or not (``uses``
        lists where this one is configured, with its validated config), so a
        plugin that owns part of the top-level config (``consumers``, say)
        rejects a bad value even on a config no route uses it in.
        """
        return []


_registered: dict[str, type[Plugin[Any]]] = {}


def register_plugin(cls: type[Plugin[Any]]) -> type[Plugin[Any]]:
    """Register a plugin class in this process (tests, embedding); entry points are the norm."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no name")
    _registered[cls.name] = cls
    return cls


@cache
def _entry_point_plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_plugins() -> list[str]:
    return sorted(set(_entry_point_plugins()) | set(_registered))


def plugin_class(name: str) -> type[Plugin[Any]]:
    """The class registered under ``name``; KeyError when there is none."""
    if name in _registered:
        return _registered[name]
    ep = _entry_point_plugins().get(name)
    if ep is None:
        raise KeyError(name)
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise TypeError(f"entry point {name!r} is not a Plugin subclass")
    if cls.name != name:
        raise TypeError(f"entry point {name!r} loads a plugin named {cls.name!r}")
    _registered[name] = cls
    return cls


@dataclass(frozen=True)
class ResolvedPlugin:
    """A plugin class with its validated config, as one route uses it."""

    name: str
    cls: type[Plugin[Any]]
    config: BaseModel
    # Where this config was written: ("plugins", name) or ("routes", i, "plugins", name).
    where: ConfigPath = ()

    def key(self) -> str:
        """Identity for sharing one instance between routes with equal configs.

        Secrets count: two routes whose configs differ only in a secret must
        not share an instance (JSON mode would mask them alike).
        """
        return self.name + ":" + json.dumps(self.config.model_dump(), sort_keys=True,
                                            default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return ["secret", repr(value.get_secret_value())]
    if isinstance(value, set | frozenset):
        return sorted(map(repr, value))
    return repr(value)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _enabled(raw: Any) -> tuple[bool, Any]:
    """`name: false` or `enabled: false` switch a plugin off; strip the flag."""
    if raw is False:
        return False, {}
    if raw is None or raw is True:
        return True, {}
    if isinstance(raw, Mapping) and "enabled" in raw:
        rest = {k: v for k, v in raw.items() if k != "enabled"}
        return bool(raw["enabled"]), rest
    return True, raw


def resolve_all_plugins(
    config: Config, lines: Mapping[ConfigPath, int]
) -> tuple[dict[str, list[ResolvedPlugin]], list[ConfigIssue]]:
    """Per route name, its plugins (global merged with route) in run order.

    This is the one place where route-over-global inheritance is decided. A
    route's mapping is deep-merged over the global one for the same plugin.
    """
    issues: list[ConfigIssue] = []
    for path, name, raw in iter_plugin_configs(config):
        try:
            plugin_class(name)
        except KeyError:
            known = ", ".join(available_plugins()) or "none"
            issues.append(ConfigIssue(format_path(path),
                                      f"unknown plugin {name!r} (known: {known})",
                                      lines.get(path)))
        except Exception as exc:
            issues.append(ConfigIssue(format_path(path), f"cannot load plugin {name!r}: {exc}",
                                      lines.get(path)))
        else:
            if not (raw is None or isinstance(raw, bool | Mapping)):
                issues.append(ConfigIssue(format_path(path), "a plugin config is a mapping",
                                          lines.get(path)))
    if issues:
        return {}, issues

    # A global config must stand on its own; routes refine it.
    for name, raw in config.plugins.items():
        on, body = _enabled(raw)
        if on:
            try:
                plugin_class(name).config_model.model_validate(body)
            except ValidationError as exc:
                issues.extend(validation_issues(exc, lines, ("plugins", name)))
    if issues:
        return {}, issues

    resolved: dict[str, list[ResolvedPlugin]] = {}
    for i, route in enumerate(config.routes):
        chain: list[ResolvedPlugin] = []
        names = list(config.plugins) + [n for n in route.plugins if n not in config.plugins]
        for name in names:
            g_on, g_raw = _enabled(config.plugins.get(name))
            if name in route.plugins:
                r_on, r_raw = _enabled(route.plugins[name])
                if not r_on:
                    continue
                raw = _merge(g_raw, r_raw) if name in config.plugins else r_raw
                where: ConfigPath = ("routes", i, "plugins", name)
            else:
                if not g_on:
                    continue
                raw, where = g_raw, ("plugins", name)
            cls = plugin_class(name)
            try:
                cfg = cls.config_model.model_validate(raw)
            except ValidationError as exc:
                issues.extend(validation_issues(exc, lines, where))
                continue
            chain.append(ResolvedPlugin(name, cls, cfg, where))
        chain.sort(key=lambda p: (p.cls.group, -p.cls.priority))
        resolved[route.name] = chain
    if not issues:
        issues.extend(_cross_check(config, resolved, lines))
    return resolved, issues


def _cross_check(config: Config, resolved: Mapping[str, list[ResolvedPlugin]],
                 lines: Mapping[ConfigPath, int]) -> list[ConfigIssue]:
    uses: dict[str, dict[ConfigPath, BaseModel]] = {}
    for chain in resolved.values():
        for rp in chain:
            uses.setdefault(rp.name, {})[rp.where] = rp.config
    issues: list[ConfigIssue] = []
    for name in available_plugins():
        try:
            cls = plugin_class(name)
        except Exception:
            continue  # unused and unloadable: only a referenced one is an error (above)
        for path, message in cls.check_config(config, list(uses.get(name, {}).items())):
            issues.append(issue_at(path, message, lines))
    return issues

