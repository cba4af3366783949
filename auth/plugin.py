"""The ``auth`` plugin: the one place that decides who a request is and whether it may pass.

    consumers:
      - name: alice
        groups: [partners]
        credentials:
          - {id: alice-key, type: key-auth, key: "${ALICE_KEY}"}
    routes:
      - name: api
        match: {path_prefix: /api/}
        service: app
        plugins:
          auth:
            any_of: [key-auth, jwt-auth]     # or all_of: [...]
            allow: [alice]                   # consumer names; and/or
            allow_groups: [partners]
            anonymous: guest                 # a consumer for requests with no credential
            hide_credentials: true
            key-auth: {headers: [X-API-Key]}

Every authenticator (``auth.base.Authenticator``) only identifies; this
module combines their outcomes, applies the allow lists and the anonymous
consumer, answers 401 (with a ``WWW-Authenticate`` challenge per type) or
403, and on success sets ``X-Consumer-Username``, ``X-Credential-Identifier``
and ``X-Mse-Consumer`` upstream. The kernel drops those headers from every
incoming request (``proxy.forwarding.IDENTITY_HEADERS``), so a client can
never assert an identity.

``anonymous`` applies only when the request carries no credential of any
listed type: a credential that is present and wrong is a 401, never a quiet
downgrade to the anonymous consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from auth.base import (
    Authenticator,
    Credential,
    Outcome,
    authenticator_class,
    available_authenticators,
)
from proxy.config import Config, ConfigPath, ConsumerConfig
from proxy.flow import Flow
from proxy.plugin import Group, Plugin, PluginContext

log = logging.getLogger("bastion.auth")

_RESERVED = {"id", "type"}


class _AuthBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    any_of: list[str] | None = None
    all_of: list[str] | None = None
    allow: list[str] = Field(default_factory=list)
    allow_groups: list[str] = Field(default_factory=list)
    anonymous: str | None = None
    hide_credentials: bool = False

    @model_validator(mode="after")
    def _combination(self) -> _AuthBase:
        if (self.any_of is None) == (self.all_of is None):
            raise ValueError("say which authenticators apply: exactly one of any_of or all_of")
        types = self.types
        if not types:
            raise ValueError("any_of / all_of lists no authenticator")
        if len(set(types)) != len(types):
            raise ValueError("an authenticator is listed twice")
        known = available_authenticators()
        for t in types:
            if t not in known:
                raise ValueError(f"unknown authenticator {t!r} (known: {', '.join(known)})")
            try:
                authenticator_class(t)
            except Exception as exc:
                raise ValueError(f"cannot load authenticator {t!r}: {exc}") from None
        for name in type(self).model_fields:
            alias = type(self).model_fields[name].alias
            if alias and getattr(self, name) is not None and alias not in types:
                raise ValueError(f"options for {alias} are given but {self.mode} does not list it")
        return self

    @property
    def types(self) -> list[str]:
        return list(self.any_of if self.any_of is not None else self.all_of or [])

    @property
    def mode(self) -> Literal["any_of", "all_of"]:
        return "any_of" if self.any_of is not None else "all_of"

    def options(self, auth_type: str) -> BaseModel:
        value = getattr(self, _field_name(auth_type), None)
        if value is None:
            value = authenticator_class(auth_type).config_model()
        assert isinstance(value, BaseModel)
        return value


def _field_name(auth_type: str) -> str:
    return auth_type.replace("-", "_")


def _build_config_model() -> type[_AuthBase]:
    # One optional field per installed authenticator, named as its type, so
    # a mistake in its options is reported at its exact path
    # (routes.0.plugins.auth.jwt-auth.issuer).
    # One that cannot load is left out here and reported where a config uses it.
    fields: dict[str, Any] = {}
    for auth_type in available_authenticators():
        try:
            model = authenticator_class(auth_type).config_model
        except Exception as exc:
            log.warning("authenticator %s unavailable: %s", auth_type, exc)
            continue
        fields[_field_name(auth_type)] = (model | None, Field(default=None, alias=auth_type))
    return create_model("AuthConfig", __base__=_AuthBase, **fields)


AuthConfig = _build_config_model()


# --------------------------------------------------------------------------
# Consumers' credentials


@dataclass
class CredentialIndex:
    """Every consumer credential, validated, by type."""

    by_type: dict[str, list[Credential]] = field(default_factory=dict)
    issues: list[tuple[ConfigPath, str]] = field(default_factory=list)


def load_credentials(consumers: Sequence[ConsumerConfig]) -> CredentialIndex:
    index = CredentialIndex()
    seen_ids: dict[str, ConfigPath] = {}
    known = available_authenticators()
    for i, consumer in enumerate(consumers):
        for j, raw in enumerate(consumer.credentials):
            where: ConfigPath = ("consumers", i, "credentials", j)
            cred_id, cred_type = raw.get("id"), raw.get("type")
            if not isinstance(cred_id, str) or not cred_id:
                index.issues.append(((*where, "id"), "a credential needs an id (a string)"))
                continue
            if cred_id in seen_ids:
                index.issues.append(((*where, "id"), f"duplicate credential id {cred_id!r}"))
                continue
            seen_ids[cred_id] = where
            try:
                if cred_type in known:
                    authenticator_class(str(cred_type))
            except Exception as exc:
                index.issues.append(((*where, "type"),
                                     f"cannot load authenticator {cred_type!r}: {exc}"))
                continue
            if cred_type not in known:
                index.issues.append(((*where, "type"),
                                     f"unknown credential type {cred_type!r} "
                                     f"(known: {', '.join(known)})"))
                continue
            cls = authenticator_class(str(cred_type))
            if cls.credential_model is None:
                index.issues.append(((*where, "type"),
                                     f"{cred_type} takes no consumer credentials"))
                continue
            fields = {k: v for k, v in raw.items() if k not in _RESERVED}
            try:
                parsed = cls.credential_model.model_validate(fields)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
                    msg = err["msg"].removeprefix("Value error, ")
                    index.issues.append(((*where, *loc), msg))
                continue
            index.by_type.setdefault(str(cred_type), []).append(
                Credential(consumer, cred_id, str(cred_type), parsed, where))
    for cred_type, creds in index.by_type.items():
        index.issues.extend(authenticator_class(cred_type).check_credentials(creds))
    return index


# --------------------------------------------------------------------------
# The plugin


@dataclass
class _State:
    deferred: bool = False


class AuthPlugin(Plugin[Any]):
    name = "auth"
    group = Group.AUTHN
    priority = 100
    config_model = AuthConfig
    response_body_streaming = False

    def __init__(self, config: Any, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        index = load_credentials(ctx.consumers)
        if index.issues:  # check_config reports these with their paths first
            path, message = index.issues[0]
            raise ValueError(f"{'.'.join(map(str, path))}: {message}")
        self.mode = config.mode
        self.authenticators: list[Authenticator[Any]] = [
            authenticator_class(t)(config.options(t), index.by_type.get(t, []), ctx)
            for t in config.types
        ]
        self.allow = frozenset(config.allow)
        self.allow_groups = frozenset(config.allow_groups)
        self.anonymous: ConsumerConfig | None = None
        if config.anonymous is not None:
            self.anonymous = next(c for c in ctx.consumers if c.name == config.anonymous)
        self.hide = bool(config.hide_credentials)
        # Headers any authenticator here may set: stripped before it runs.
        self.owned_headers = tuple(dict.fromkeys(
            name for a in self.authenticators for name in a.upstream_header_names()))
        self._challenges = [c for a in self.authenticators if (c := a.challenge())]
        body_limit = max((a.body_limit for a in self.authenticators), default=0)
        if body_limit:
            self.request_body_limit = body_limit
            self.request_body_overflow = "reject"
        self._outcomes = ctx.metrics.counter(
            "bastion_auth_outcomes_total",
            "Authenticator results, by authenticator and outcome (missing/invalid/ok/handled)",
            ["authenticator", "outcome"])
        self._decisions = ctx.metrics.counter(
            "bastion_auth_decisions_total",
            "Auth plugin verdicts: allow, anonymous, unauthenticated (401), forbidden (403)",
            ["verdict"])
        self._outcome_children: dict[tuple[str, str], Any] = {}
        self._verdict_children: dict[str, Any] = {}

    def _count_outcome(self, authenticator: str, status: str) -> None:
        # Label children looked up once: labels() per request costs more than
        # most authenticators' own work.
        key = (authenticator, status)
        child = self._outcome_children.get(key)
        if child is None:
            child = self._outcome_children[key] = self._outcomes.labels(authenticator, status)
        child.inc()

    def _count_verdict(self, verdict: str) -> None:
        child = self._verdict_children.get(verdict)
        if child is None:
            child = self._verdict_children[verdict] = self._decisions.labels(verdict)
        child.inc()

    @classmethod
    def check_config(cls, config: Config,
                     uses: Sequence[tuple[ConfigPath, BaseModel]]) -> list[tuple[ConfigPath, str]]:
        index = load_credentials(config.consumers)
        issues = list(index.issues)
        names = {c.name for c in config.consumers}
        for where, cfg in uses:
            anonymous = getattr(cfg, "anonymous", None)
            if anonymous is not None and anonymous not in names:
                issues.append(((*where, "anonymous"),
                               f"anonymous names no consumer: {anonymous!r}"))
        return issues

    async def start(self) -> None:
        for a in self.authenticators:
            await a.start()

    async def close(self) -> None:
        for a in self.authenticators:
            await a.close()

    # -- hooks

    async def on_request_headers(self, flow: Flow) -> None:
        for name in self.owned_headers:
            flow.request_headers.popall(name, None)
        for a in self.authenticators:
            if await a.intercept(flow):
                return
        # An authenticator that needs the body gets it whole: the pipeline
        # buffers up to request_body_limit (set from body_limit) on this route.
        # Without that buffer there is no body to give it, and it sees None.
        if (self.request_body_limit and flow.request.body_exists
                and any(a.needs_body(flow) for a in self.authenticators)):
            flow.state(self, _State).deferred = True
            return
        await self._decide(flow, None)

    def overrides(self, hook: str) -> bool:
        # The body hook is only for authenticators that judge the body; without
        # one, bodies on this route stream past untouched (and stay retryable).
        if hook == "on_request_body" and not self.request_body_limit:
            return False
        return super().overrides(hook)

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        state = flow.state(self, _State)
        if state.deferred and end:
            state.deferred = False
            await self._decide(flow, chunk)
        return chunk

    # -- the decision

    async def _decide(self, flow: Flow, body: bytes | None) -> None:
        outcomes: list[tuple[Authenticator[Any], Outcome]] = []
        chosen: Outcome | None = None
        for a in self.authenticators:
            outcome = await a.authenticate(flow, body)
            self._count_outcome(a.name, outcome.status)
            if outcome.status == "handled":
                return
            outcomes.append((a, outcome))
            if self.mode == "any_of" and outcome.status == "ok":
                chosen = outcome
                break

        for _, outcome in outcomes:
            for name, value in outcome.response_headers:
                flow.add_response_header(name, value)
        if self.mode == "all_of":
            chosen = self._all_of(flow, outcomes)
            if flow.local_response is not None:
                return

        anonymous = False
        if chosen is None:
            presented = [(a, o) for a, o in outcomes if o.status != "missing"]
            if presented:
                a, o = presented[0]
                self._deny(flow, 401, "invalid credentials", a.name, o.reason)
                return
            if self.anonymous is None:
                for a in self.authenticators:
                    if await a.respond_unauthenticated(flow):
                        flow.decide("auth", "login", authenticator=a.name)
                        return
                self._deny(flow, 401, "authentication required", None, "no credential")
                return
            consumer: ConsumerConfig = self.anonymous
            credential_id: str | None = None
            anonymous = True
        else:
            who = chosen.who
            assert who is not None
            consumer, credential_id = who, chosen.which

        if not self._allowed(consumer):
            self._deny(flow, 403, "consumer not allowed", None, "not in allow list",
                       consumer=consumer.name)
            return

        headers = flow.request_headers
        flow.consumer = consumer
        flow.credential_id = credential_id
        # Authenticators' own headers first: the identity headers below are
        # set last, so no claim mapping can overwrite them.
        for _, outcome in outcomes:
            if outcome.status == "ok":
                for name, value in outcome.headers.items():
                    headers[name] = value
        headers["X-Consumer-Username"] = consumer.name
        headers["X-Mse-Consumer"] = consumer.name
        if credential_id is not None:
            headers["X-Credential-Identifier"] = credential_id
        if consumer.groups:
            headers["X-Consumer-Groups"] = ",".join(consumer.groups)
        if anonymous:
            headers["X-Anonymous-Consumer"] = "true"
        if self.hide:
            for a in self.authenticators:
                a.hide_credentials(flow)
        verdict = "anonymous" if anonymous else "allow"
        self._count_verdict(verdict)
        flow.decide("auth", verdict, consumer=consumer.name,
                    authenticator=None if chosen is None else _type_of(outcomes, chosen))

    def _all_of(self, flow: Flow,
                outcomes: list[tuple[Authenticator[Any], Outcome]]) -> Outcome | None:
        if all(o.status == "missing" for _, o in outcomes):
            return None
        failed = [(a, o) for a, o in outcomes if o.status != "ok"]
        if failed:
            a, o = failed[0]
            message = "invalid credentials" if o.status == "invalid" else "authentication required"
            self._deny(flow, 401, message, a.name, o.reason or "credential missing")
            return None
        names = {o.who.name for _, o in outcomes if o.who is not None}
        if len(names) != 1:
            self._deny(flow, 401, "credentials name different consumers", None,
                       "all_of credentials disagree")
            return None
        return outcomes[0][1]

    def _allowed(self, consumer: ConsumerConfig) -> bool:
        if not self.allow and not self.allow_groups:
            return True
        return consumer.name in self.allow or not self.allow_groups.isdisjoint(consumer.groups)

    def _deny(self, flow: Flow, status: int, message: str, authenticator: str | None,
              reason: str, consumer: str | None = None) -> None:
        # What authenticators asked the client to get (a cleared or refreshed
        # session cookie) goes on the refusal too: flow.add_response_header.
        headers: CIMultiDict[str] = CIMultiDict()
        if status == 401:
            for challenge in self._challenges:
                headers.add("WWW-Authenticate", challenge)
        verdict = "unauthenticated" if status == 401 else "forbidden"
        self._count_verdict(verdict)
        flow.decide("auth", verdict, authenticator=authenticator, reason=reason,
                    consumer=consumer)
        flow.respond_error(status, message, headers)


def _type_of(outcomes: list[tuple[Authenticator[Any], Outcome]], chosen: Outcome) -> str:
    return next(a.name for a, o in outcomes if o is chosen)


__all__ = ["AuthConfig", "AuthPlugin", "load_credentials"]
