"""What an authenticator is: the contract every credential type implements.

An authenticator answers one question about one request: which consumer does
the credential it carries belong to? It does not decide whether the request
may pass; ``auth.plugin`` does that, the same way for every type (any_of /
all_of, allow lists, anonymous, identity headers). So an authenticator:

- declares the fields of its consumer credentials (``credential_model``) and
  of its per-route options (``config_model``);
- builds its lookup index from the consumers' credentials once per config;
- returns an :class:`Outcome` per request: ``missing`` (this request carries
  no credential of this type), ``invalid`` (it carries one that does not
  verify), ``ok`` (with the credential), or ``handled`` (it answered the
  request itself);
- may answer requests addressed to itself (``intercept``: an OIDC callback)
  and send an unauthenticated browser to log in instead of a bare 401
  (``respond_unauthenticated``);
- says what ``WWW-Authenticate`` challenge a 401 carries, and how to remove
  its credential from the request (``hide_credentials``).

Authenticators are found through the entry-point group
``bastion.authenticators`` (type name -> ``module:Class``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, Literal, TypeVar

from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict

from proxy.config import ConfigPath, ConsumerConfig
from proxy.flow import Flow
from proxy.plugin import PluginContext

__all__ = [
    "Authenticator",
    "Credential",
    "CredentialModel",
    "Outcome",
    "authenticator_class",
    "available_authenticators",
]

ENTRY_POINT_GROUP = "bastion.authenticators"


class CredentialModel(BaseModel):
    """Base for a credential's own fields (``id`` and ``type`` are common and not repeated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Credential:
    """One consumer credential, validated by its authenticator's ``credential_model``."""

    consumer: ConsumerConfig
    id: str
    type: str
    config: Any  # an instance of the authenticator's credential_model
    # Where it was written, e.g. ("consumers", 0, "credentials", 1).
    where: ConfigPath = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["missing", "invalid", "ok", "handled"]
    credential: Credential | None = None
    # Why a credential was refused, for the decision log; never a secret.
    reason: str = ""
    # Extra upstream headers on success (e.g. JWT claims_to_headers).
    headers: Mapping[str, str] = field(default_factory=dict)
    # For identities that are not configured consumers (OIDC users): the
    # consumer to act as; ``credential`` is then None.
    consumer: ConsumerConfig | None = None
    credential_id: str | None = None
    # Headers for the client's response whatever it is, refusals included (a
    # refreshed or cleared session cookie); pairs, so Set-Cookie may repeat.
    response_headers: Sequence[tuple[str, str]] = ()

    @classmethod
    def ok(cls, credential: Credential, headers: Mapping[str, str] | None = None) -> Outcome:
        return cls("ok", credential, headers=headers or {})

    @classmethod
    def identity(cls, consumer: ConsumerConfig, credential_id: str,
                 headers: Mapping[str, str] | None = None) -> Outcome:
        return cls("ok", None, headers=headers or {}, consumer=consumer,
                   credential_id=credential_id)

    @classmethod
    def invalid(cls, reason: str) -> Outcome:
        return cls("invalid", reason=reason)

    @property
    def who(self) -> ConsumerConfig | None:
        if self.credential is not None:
            return self.credential.consumer
        return self.consumer

    @property
    def which(self) -> str | None:
        if self.credential is not None:
            return self.credential.id
        return self.credential_id


MISSING = Outcome("missing")
HANDLED = Outcome("handled")

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class EmptyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Authenticator(Generic[ConfigT]):
    name: ClassVar[str] = ""
    # Per-route options, written under the auth plugin's config as `<type>: {...}`.
    config_model: ClassVar[type[BaseModel]] = EmptyOptions
    # The fields of a consumer credential of this type; None when the type
    # has no configured credentials (its identities come from elsewhere).
    credential_model: ClassVar[type[CredentialModel] | None] = None
    # Bytes of request body this type may need (see needs_body); the plugin
    # asks the pipeline to buffer that much on routes that use it (413 past it).
    body_limit: int = 0

    def __init__(self, config: ConfigT, credentials: Sequence[Credential],
                 ctx: PluginContext) -> None:
        self.config = config
        self.credentials = tuple(credentials)
        self.ctx = ctx

    @classmethod
    def check_credentials(cls, credentials: Sequence[Credential]) -> list[tuple[ConfigPath, str]]:
        """Problems across credentials of this type (e.g. two consumers with one key)."""
        return []

    async def start(self) -> None:
        """Called once before the config goes live (fetch keys, discovery...)."""

    async def close(self) -> None:
        """Called once when the config is retired."""

    async def intercept(self, flow: Flow) -> bool:
        """Answer a request addressed to the authenticator itself (an OIDC callback).

        Runs before any authentication; True when it responded.
        """
        return False

    async def respond_unauthenticated(self, flow: Flow) -> bool:
        """Answer an unauthenticated request otherwise than 401 (send a browser to log in).

        True when it responded; the first authenticator that does wins.
        """
        return False

    def needs_body(self, flow: Flow) -> bool:
        """Whether this request can only be judged with its body (e.g. a signed digest).

        Honoured only when ``body_limit`` is set; the decision then waits for
        the whole body, after the other plugins' ``on_request_headers``.
        """
        return False

    async def authenticate(self, flow: Flow, body: bytes | None) -> Outcome:
        """Identify the request's credential of this type.

        ``body`` is the whole request body when ``needs_body`` said so, else
        None (an authenticator that needs it must then fail closed). Read
        credentials from ``flow.request.headers`` (what the client sent) or
        ``flow.request_headers`` (what goes upstream, identity headers already
        stripped): they hold the same credentials at this point.
        """
        raise NotImplementedError

    def challenge(self) -> str | None:
        """The WWW-Authenticate value a 401 carries for this type."""
        return None

    def hide_credentials(self, flow: Flow) -> None:
        """Remove this type's credential from what goes upstream."""

    def upstream_header_names(self) -> Sequence[str]:
        """Headers this authenticator may set upstream: stripped from every incoming request."""
        return ()


@dataclass
class AuthResult:
    """What the plugin decided, stored on the flow for later plugins and logs."""

    consumer: ConsumerConfig | None
    credential_id: str | None
    anonymous: bool = False
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)


@cache
def _entry_point_authenticators() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


_registered: dict[str, type[Authenticator[Any]]] = {}


def register_authenticator(cls: type[Authenticator[Any]]) -> type[Authenticator[Any]]:
    """Register in this process (tests, embedding); entry points are the norm."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no name")
    _registered[cls.name] = cls
    return cls


def available_authenticators() -> list[str]:
    return sorted(set(_entry_point_authenticators()) | set(_registered))


def authenticator_class(name: str) -> type[Authenticator[Any]]:
    """The class registered under ``name``; KeyError when there is none."""
    if name in _registered:
        return _registered[name]
    ep = _entry_point_authenticators().get(name)
    if ep is None:
        raise KeyError(name)
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Authenticator)):
        raise TypeError(f"entry point {name!r} is not an Authenticator subclass")
    if cls.name != name:
        raise TypeError(f"entry point {name!r} loads an authenticator of type {cls.name!r}")
    _registered[name] = cls
    return cls


def header_values(flow: Flow, names: Sequence[str]) -> list[tuple[str, str]]:
    """Every (header name, value) among ``names`` on the incoming request."""
    out: list[tuple[str, str]] = []
    for name in names:
        for value in flow.request_headers.getall(name, ()):
            out.append((name, value))
    return out
