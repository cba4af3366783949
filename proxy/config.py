"""The configuration file: YAML -> ``${ENV}`` substitution -> pydantic models.

Errors carry the YAML path of the bad field and the line it sits on, so
``bastion check`` can point at it. Plugin configs are validated here too
(against each plugin's own model), so a config that loads is a config that
builds.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from proxy.regex import compile_regex
from proxy.store import StoreConfig

ConfigPath = tuple[str | int, ...]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
}


def _parse_duration(value: Any) -> Any:
    """Accept seconds as a number or a string like ``250ms``, ``5s``, ``2m``."""
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if not m:
            raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 5s, 2m)")
        return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    return value


def _parse_size(value: Any) -> Any:
    """Accept bytes as an integer or a string like ``16KiB``, ``10MB``."""
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if not m:
            raise ValueError(f"not a size: {value!r} (use e.g. 16KiB, 10MiB)")
        unit = m.group(2).lower() if m.group(2) else None
        return int(m.group(1)) * _SIZE_UNITS[unit]
    return value


Duration = Annotated[float, BeforeValidator(_parse_duration), Field(ge=0)]
Size = Annotated[int, BeforeValidator(_parse_size), Field(ge=0)]


class Model(BaseModel):
    """Base for config models: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    port_no = int(port)
    if not 0 <= port_no <= 65535:
        raise ValueError(f"port out of range in {address!r}")
    return host.strip("[]"), port_no


class ListenerConfig(Model):
    address: str = "127.0.0.1:8080"

    @field_validator("address")
    @classmethod
    def _check_address(cls, v: str) -> str:
        _split_address(v)
        return v

    @property
    def host(self) -> str:
        return _split_address(self.address)[0]

    @property
    def port(self) -> int:
        return _split_address(self.address)[1]


class AdminConfig(ListenerConfig):
    address: str = "127.0.0.1:9901"
    enabled: bool = True
    # Bearer token for state-changing endpoints (PUT /config). Without one
    # those endpoints answer 403: the admin API fails closed.
    token: SecretStr | None = None


class LimitsConfig(Model):
    max_header_bytes: Size = 16 * 1024
    max_url_bytes: Size = 8 * 1024
    max_headers: int = Field(100, ge=1)
    # 0 disables the check (streaming uploads of any size).
    max_body_bytes: Size = 10 * 1024 * 1024
    client_header_timeout: Duration = 10.0
    client_body_timeout: Duration = 30.0
    keepalive_timeout: Duration = 75.0
    shutdown_grace: Duration = 15.0


class AccessLogConfig(Model):
    enabled: bool = True
    # "-" is standard output; anything else a file path (appended to).
    path: str = "-"


class EndpointConfig(Model):
    # http(s)://host:port, or "builtin:echo" for the demo upstream that
    # `bastion run` hosts itself.
    url: str
    weight: int = Field(1, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if v == "builtin:echo":
            return v
        if not re.match(r"^https?://[^/\s]+(/.*)?$", v):
            raise ValueError(f"expected http(s)://host:port or builtin:echo, got {v!r}")
        return v.rstrip("/")


class HealthConfig(Model):
    # Passive health: this many consecutive failures eject an endpoint ...
    max_failures: int = Field(5, ge=1)
    # ... for this long.
    eject_seconds: Duration = 10.0


class RetryConfig(Model):
    # Extra attempts after the first, each on another endpoint where possible.
    attempts: int = Field(1, ge=0, le=10)
    # Connect failures are always safe to retry: nothing reached the upstream.
    on_connect_failure: bool = True
    # Idempotent methods are also retried on a reset or timeout before the
    # response starts, and on these statuses.
    idempotent: bool = True
    on_status: list[int] = Field(default_factory=lambda: [502, 503, 504])


class ServiceConfig(Model):
    endpoints: list[EndpointConfig] = Field(min_length=1)
    load_balancing: Literal["round_robin", "weighted"] = "round_robin"
    connect_timeout: Duration = 5.0
    read_timeout: Duration = 60.0
    retries: RetryConfig = RetryConfig()
    health: HealthConfig = HealthConfig()
    # Keep the client's Host header (True) or send the endpoint's host.
    preserve_host: bool = True


class ValueMatch(Model):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ValueMatch:
        kinds = [k for k in ("exact", "prefix", "regex", "present") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of exact, prefix, regex, present")
        if self.regex is not None:
            _check_regex(self.regex)
        return self


def _check_regex(pattern: str) -> None:
    compile_regex(pattern)


def _as_value_match(v: Any) -> Any:
    return {"exact": v} if isinstance(v, str) else v


MatchValue = Annotated[ValueMatch, BeforeValidator(_as_value_match)]


class RequestMatch(Model):
    """Which requests by host, path and method: every given condition must hold.

    Routes extend it with header and query conditions; plugins that scope
    their rules to part of the traffic (cc-protection) use it as it is.
    """

    # Exact names or "*.example.com" wildcards; empty means any host.
    hosts: list[str] = Field(default_factory=list)
    path: str | None = None
    path_prefix: str | None = None
    # RE2, matched against the whole normalized path.
    path_regex: str | None = None
    methods: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Self:
        paths = [p for p in (self.path, self.path_prefix, self.path_regex) if p is not None]
        if len(paths) > 1:
            raise ValueError("give at most one of path, path_prefix, path_regex")
        for p in (self.path, self.path_prefix):
            if p is not None and not p.startswith("/"):
                raise ValueError(f"paths start with '/': {p!r}")
        for h in self.hosts:
            if "*" in h and not (h.startswith("*.") and "*" not in h[2:]):
                raise ValueError(f"host wildcards are a leading '*.' only: {h!r}")
        return self

    @field_validator("methods")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [m.upper() for m in v]

    @field_validator("path_regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            _check_regex(v)
        return v


class RouteMatch(RequestMatch):
    headers: dict[str, MatchValue] = Field(default_factory=dict)
    query: dict[str, MatchValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _host_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "host" in data:
            data = dict(data)
            host = data.pop("host")
            data["hosts"] = [host] if isinstance(host, str) else host
        return data


class RouteConfig(Model):
    name: str = Field(min_length=1)
    match: RouteMatch = RouteMatch()
    service: str
    plugins: dict[str, Any] = Field(default_factory=dict)


class ConsumerConfig(Model):
    """A client of the gateway; the auth plugins give credentials their types."""

    name: str = Field(min_length=1)
    groups: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    credentials: list[dict[str, Any]] = Field(default_factory=list)


class Config(Model):
    listeners: list[ListenerConfig] = Field(default_factory=lambda: [ListenerConfig()],
                                            min_length=1)
    admin: AdminConfig = AdminConfig()
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list
    )
    limits: LimitsConfig = LimitsConfig()
    store: StoreConfig = StoreConfig()
    access_log: AccessLogConfig = AccessLogConfig()
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    plugins: dict[str, Any] = Field(default_factory=dict)
    consumers: list[ConsumerConfig] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [ipaddress.ip_network(str(x), strict=False) for x in v]
        return v

    def reference_issues(self) -> list[tuple[ConfigPath, str]]:
        """Cross-references pydantic cannot check field by field."""
        issues: list[tuple[ConfigPath, str]] = []
        seen: set[str] = set()
        for i, route in enumerate(self.routes):
            if route.name in seen:
                issues.append((("routes", i, "name"), f"duplicate route name {route.name!r}"))
            seen.add(route.name)
            if route.service not in self.services:
                known = ", ".join(self.services) or "none defined"
                issues.append((("routes", i, "service"),
                               f"unknown service {route.service!r} (known: {known})"))
        names: set[str] = set()
        for i, consumer in enumerate(self.consumers):
            if consumer.name in names:
                issues.append((("consumers", i, "name"),
                               f"duplicate consumer name {consumer.name!r}"))
            names.add(consumer.name)
        return issues


# --------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path or '<root>'}: {self.message}{where}"


class ConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue], source: str = "<config>") -> None:
        self.issues = issues
        self.source = source
        super().__init__(f"{source}: " + "; ".join(str(i) for i in issues))


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    source: str
    text: str
    base_dir: Path
    lines: Mapping[ConfigPath, int] = field(default_factory=dict)


_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def format_path(path: ConfigPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_map(text: str) -> dict[ConfigPath, int]:
    """YAML path -> 1-based line of the node, from the composed node tree."""
    lines: dict[ConfigPath, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, path: ConfigPath) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else str(key)
                walk(value, (*path, k))
                # Point at the key, not at where a nested block starts.
                lines[(*path, k)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return lines


def _substitute_env(data: Any, path: ConfigPath, env: Mapping[str, str],
                    issues: list[ConfigIssue]) -> Any:
    """Replace ${NAME} / ${NAME:-default} in string values; ``$${`` is a literal ``${``."""
    if isinstance(data, dict):
        return {k: _substitute_env(v, (*path, k), env, issues) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute_env(v, (*path, i), env, issues) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:

        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name, default = m.group(1), m.group(2)
            value = env.get(name)
            # As in the shell, ${NAME:-default} also covers a set-but-empty NAME.
            if default is not None and not value:
                return default
            if value is not None:
                return value
            issues.append(ConfigIssue(format_path(path), f"environment variable {name} is not set"))
            return ""

        return _ENV_RE.sub(repl, data)
    return data


def issue_at(loc: ConfigPath, message: str, lines: Mapping[ConfigPath, int]) -> ConfigIssue:
    # Pydantic adds union member names to locations; keep the longest prefix
    # that names a real node for the line number.
    line = None
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            line = lines[loc[:n]]
            break
    return ConfigIssue(format_path(loc), message, line)


def validation_issues(exc: ValidationError, lines: Mapping[ConfigPath, int],
                      prefix: ConfigPath = ()) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        loc = (*prefix, *(p for p in err["loc"] if isinstance(p, str | int)))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if msg.startswith("Assertion failed, "):
            msg = msg[len("Assertion failed, "):]
        issues.append(issue_at(loc, msg, lines))
    return issues


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None,
                 env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Parse and validate config text, plugin configs included. Raises ConfigError."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigIssue("", f"invalid YAML: {problem}", line)], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue("", "the config must be a mapping", 1)], source)
    lines = _line_map(text)
    issues: list[ConfigIssue] = []
    data = _substitute_env(data, (), os.environ if env is None else env, issues)
    if issues:
        raise ConfigError([issue_at(_unformat(i.path), i.message, lines) for i in issues], source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_issues(exc, lines), source) from None
    refs = config.reference_issues()
    if refs:
        raise ConfigError([issue_at(path, msg, lines) for path, msg in refs], source)
    # Imported here: the plugin registry imports this module for its types.
    from proxy.plugin import resolve_all_plugins

    plugin_issues = resolve_all_plugins(config, lines)[1]
    if plugin_issues:
        raise ConfigError(plugin_issues, source)
    return LoadedConfig(config, source, text, base_dir or Path.cwd(), lines)


def _unformat(path: str) -> ConfigPath:
    parts: list[str | int] = []
    for m in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(m.group(2)) if m.group(2) is not None else m.group(1))
    return tuple(parts)


DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")


def load_config(path: str | Path | None) -> LoadedConfig:
    """Load a config file, or the embedded default when ``path`` is None."""
    file = DEFAULT_CONFIG_PATH if path is None else Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        issue = ConfigIssue("", f"cannot read config: {exc.strerror}")
        raise ConfigError([issue], str(file)) from None
    source = "<embedded default>" if path is None else str(file)
    return parse_config(text, source, file.parent.resolve())


def redacted(data: Any) -> Any:
    """The config as a plain structure with every secret-looking value masked."""
    secret_words = ("token", "secret", "password", "key", "credential")

    def walk(v: Any, key: str = "") -> Any:
        if isinstance(v, dict):
            return {k: walk(x, str(k)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if isinstance(v, SecretStr):
            return "***"
        if key and isinstance(v, str) and any(w in key.lower() for w in secret_words):
            return "***"
        return v

    return walk(data)


def iter_plugin_configs(config: Config) -> Iterator[tuple[ConfigPath, str, Any]]:
    """Every plugin config in the file with its path: globals, then routes."""
    for name, cfg in config.plugins.items():
        yield ("plugins", name), name, cfg
    for i, route in enumerate(config.routes):
        for name, cfg in route.plugins.items():
            yield ("routes", i, "plugins", name), name, cfg


def with_overrides(loaded: LoadedConfig, listen: list[str] | None = None,
                   admin: str | None = None) -> LoadedConfig:
    """Apply command-line ``--listen``/``--admin`` over what the file says."""
    update: dict[str, Any] = {}
    try:
        if listen:
            update["listeners"] = [ListenerConfig(address=a) for a in listen]
        if admin:
            update["admin"] = loaded.config.admin.model_copy(
                update={"address": AdminConfig(address=admin).address})
    except ValidationError as exc:
        raise ConfigError(validation_issues(exc, {}, ("command line",)), loaded.source) from None
    if not update:
        return loaded
    return LoadedConfig(loaded.config.model_copy(update=update), loaded.source, loaded.text,
                        loaded.base_dir, loaded.lines)
