"""The ``headers`` plugin: add, set, rename and remove request and response headers.

    plugins:
      headers:
        request:
          remove: [X-Internal-Debug]
          rename: {X-Api-Version: X-Version}
          set: {X-Env: prod}
          add: {Via: bastion}
        response:
          remove: [Server]
          set: {Strict-Transport-Security: max-age=31536000}

Operations apply in that order: remove, rename, set (replaces every value),
add (appends one more value). Hop-by-hop headers are the proxy's business and
cannot be set here.
"""

from __future__ import annotations

from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict, Field, field_validator

from proxy.flow import Flow
from proxy.forwarding import HOP_BY_HOP
from proxy.plugin import Group, Plugin

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _check_name(name: str) -> str:
    if not name or not _TOKEN_CHARS.issuperset(name):
        raise ValueError(f"not a valid header name: {name!r}")
    if name.lower() in HOP_BY_HOP:
        raise ValueError(f"{name} is a hop-by-hop header, managed by the proxy")
    if name.lower() == "content-length":
        # Framing: the proxy sets it from the body it actually sends.
        raise ValueError(f"{name} is managed by the proxy")
    return name


def _check_value(name: str, value: object) -> str:
    # YAML gives bools, numbers and nulls; a header value is text as written.
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif value is None or isinstance(value, dict | list):
        raise ValueError(f"{name}: header values are text, not {value!r} (quote it)")
    text = str(value)
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError(f"{name}: header values cannot contain CR, LF or NUL")
    return text


class HeaderOps(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    remove: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)
    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)

    @field_validator("remove")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return [_check_name(n) for n in v]

    @field_validator("rename")
    @classmethod
    def _renames(cls, v: dict[str, str]) -> dict[str, str]:
        return {_check_name(k): _check_name(n) for k, n in v.items()}

    @field_validator("set", "add", mode="before")
    @classmethod
    def _values(cls, v: object) -> object:
        # YAML turns `X-Demo: 1` into an int: headers are text.
        if isinstance(v, dict):
            return {_check_name(str(k)): _check_value(str(k), x) for k, x in v.items()}
        return v

    def apply(self, headers: CIMultiDict[str]) -> None:
        for name in self.remove:
            headers.popall(name, None)
        for old, new in self.rename.items():
            values = headers.popall(old, None)
            if values:
                headers.popall(new, None)
                for value in values:
                    headers.add(new, value)
        for name, value in self.set.items():
            headers[name] = value
        for name, value in self.add.items():
            headers.add(name, value)

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.set or self.add)


class HeadersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request: HeaderOps = HeaderOps()
    response: HeaderOps = HeaderOps()


class HeadersPlugin(Plugin[HeadersConfig]):
    name = "headers"
    group = Group.TRAFFIC
    config_model = HeadersConfig

    async def on_request_headers(self, flow: Flow) -> None:
        if self.config.request:
            self.config.request.apply(flow.request_headers)

    async def on_response_headers(self, flow: Flow) -> None:
        if self.config.response:
            self.config.response.apply(flow.response_headers)
