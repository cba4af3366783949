"""key-auth: an API key in a header or a query parameter.

    consumers:
      - name: alice
        credentials:
          - {id: alice-key, type: key-auth, key: "${ALICE_API_KEY}"}
    ...
        plugins:
          auth:
            any_of: [key-auth]
            key-auth: {headers: [X-API-Key], query: [apikey]}

A request that carries more than one key (two headers, a header and a query
parameter, a repeated parameter) is refused: which one counts would
otherwise depend on who reads the request.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from auth.base import MISSING, Authenticator, Credential, CredentialModel, Outcome
from auth.util import lookup_digest, query_values, remove_query_params, same_secret
from proxy.config import ConfigPath
from proxy.flow import Flow
from proxy.plugin import PluginContext


class KeyCredential(CredentialModel):
    key: SecretStr

    @field_validator("key")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 8:
            raise ValueError("an API key needs at least 8 characters (use a long random one)")
        return v


class KeyAuthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    headers: list[str] = Field(default_factory=lambda: ["X-API-Key"])
    query: list[str] = Field(default_factory=list)

    @field_validator("headers", "query")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if any(not name for name in v):
            raise ValueError("names cannot be empty")
        return v


class KeyAuth(Authenticator[KeyAuthOptions]):
    name = "key-auth"
    config_model = KeyAuthOptions
    credential_model = KeyCredential

    def __init__(self, config: KeyAuthOptions, credentials: Sequence[Credential],
                 ctx: PluginContext) -> None:
        super().__init__(config, credentials, ctx)
        if not config.headers and not config.query:
            raise ValueError("key-auth needs at least one header or query parameter to read")
        self._by_digest: dict[bytes, Credential] = {
            lookup_digest(c.config.key.get_secret_value()): c for c in credentials}

    @classmethod
    def check_credentials(cls, credentials: Sequence[Credential]) -> list[tuple[ConfigPath, str]]:
        issues: list[tuple[ConfigPath, str]] = []
        seen: dict[bytes, str] = {}
        for c in credentials:
            digest = lookup_digest(c.config.key.get_secret_value())
            if digest in seen:
                issues.append(((*c.where, "key"),
                               f"this key is already credential {seen[digest]!r}'s"))
            seen.setdefault(digest, c.id)
        return issues

    async def authenticate(self, flow: Flow, body: bytes | None) -> Outcome:
        found: list[str] = []
        for name in self.config.headers:
            found.extend(flow.request_headers.getall(name, ()))
        for name in self.config.query:
            found.extend(query_values(flow, name))
        if not found:
            return MISSING
        if len(found) > 1:
            return Outcome.invalid("more than one API key in the request")
        key = found[0].strip()
        credential = self._by_digest.get(lookup_digest(key))
        if credential is None or not same_secret(credential.config.key.get_secret_value(), key):
            return Outcome.invalid("unknown API key")
        return Outcome.ok(credential)

    def challenge(self) -> str:
        names = ", ".join([*self.config.headers, *self.config.query])
        return f'Key realm="bastion", key-names="{names}"'

    def hide_credentials(self, flow: Flow) -> None:
        for name in self.config.headers:
            flow.request_headers.popall(name, None)
        if self.config.query:
            remove_query_params(flow, self.config.query)

