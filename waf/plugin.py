"""The ``waf`` plugin: SecLang rules (OWASP CRS or your own) on the request pipeline.

    plugins:
      waf:
        mode: block            # or detect: log and count, never refuse
        paranoia: 1
        crs: /etc/bastion/crs  # a CRS directory (crs-setup.conf.example + rules/)
        rules: [my-rules/*.conf]
        builtin_rules: true    # Bastion's own rule set (default: on unless crs or rules is set)
        directives: |
          SecRule ARGS:debug "@streq 1" "id:10001,phase:1,deny,msg:'debug forbidden'"
        exclusions:
          ids: [920350]
          tags: [attack-xss]
          targets: [{id: 942100, target: "ARGS:search"}]
        audit_log: /var/log/bastion/waf-audit.log

Phases map onto the plugin hooks: 1 on request headers, 2 on the request
body (or straight after the headers when there is none), 3 on response
headers, 4 on the response body (only for the configured MIME types; other
responses keep streaming), 5 when the exchange is done.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from proxy.flow import Flow
from proxy.plugin import Group, Plugin, PluginContext
from waf.audit import AuditLog
from waf.engine import build_ruleset, builtin_rule_files
from waf.rules import RuleSetError
from waf.seclang import SecLangError
from waf.transaction import Interruption, Transaction


class TargetExclusion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: int | None = None
    tag: str | None = None
    target: str

    @model_validator(mode="after")
    def _one_selector(self) -> TargetExclusion:
        if (self.id is None) == (self.tag is None):
            raise ValueError("give exactly one of id or tag")
        return self


class Exclusions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ids: list[int] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    targets: list[TargetExclusion] = Field(default_factory=list)

    def directives(self) -> str:
        lines = [f"SecRuleRemoveById {i}" for i in self.ids]
        lines += [f'SecRuleRemoveByTag "{t}"' for t in self.tags]
        for t in self.targets:
            if t.id is not None:
                lines.append(f'SecRuleUpdateTargetById {t.id} "!{t.target}"')
            else:
                lines.append(f'SecRuleUpdateTargetByTag "{t.tag}" "!{t.target}"')
        return "\n".join(lines)


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = False
    mime_types: list[str] = Field(default_factory=lambda: ["text/html", "text/plain",
                                                           "application/json"])
    limit: int = Field(512 * 1024, ge=1)


class WafConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["block", "detect"] = "block"
    paranoia: int = Field(1, ge=1, le=4)
    crs: str | None = None
    rules: list[str] = Field(default_factory=list)
    # Bastion's own rule set (the repository's rules/): None loads it when
    # neither crs nor rules names another rule set.
    builtin_rules: bool | None = None
    directives: str = ""
    exclusions: Exclusions = Exclusions()
    request_body_limit: int = Field(1024 * 1024, ge=0)
    # Past the limit: refuse (413) or inspect the first request_body_limit bytes.
    request_body_overflow: Literal["reject", "inspect_prefix"] = "reject"
    response_body: ResponseBody = ResponseBody()
    show_rule_ids: bool = True
    audit_log: str | None = None

    @field_validator("directives")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\0" in v:
            raise ValueError("directives cannot contain NUL")
        return v


class WafPlugin(Plugin[WafConfig]):
    name = "waf"
    group = Group.SECURITY
    config_model = WafConfig
    response_body_streaming = False

    def __init__(self, config: WafConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        base = ctx.base_dir
        files: list[Path] = []
        for pattern in config.rules:
            path = pattern if os.path.isabs(pattern) else str(base / pattern)
            found = sorted(glob.glob(path))
            if not found:
                raise ValueError(f"rules: nothing matches {pattern!r}")
            files.extend(Path(f) for f in found)
        crs = None
        if config.crs is not None:
            crs = Path(config.crs) if os.path.isabs(config.crs) else base / config.crs
        builtin = config.builtin_rules
        if builtin is None:
            builtin = crs is None and not config.rules
        if builtin:
            files = builtin_rule_files() + files
        try:
            self.ruleset = build_ruleset(
                engine="On" if config.mode == "block" else "DetectionOnly",
                paranoia=config.paranoia, inline=config.directives, crs=crs, files=files,
                exclusions=config.exclusions.directives(),
                response_body=config.response_body.enabled,
                response_mime_types=tuple(config.response_body.mime_types), base_dir=base)
        except (RuleSetError, SecLangError, OSError) as exc:
            raise ValueError(f"rules failed to load: {exc}") from None
        self.request_body_limit = config.request_body_limit
        self.request_body_overflow = ("truncate" if config.request_body_overflow ==
                                      "inspect_prefix" else "reject")
        self._audit_log = AuditLog(config.audit_log, ctx.base_dir)
        self._decisions = ctx.metrics.counter(
            "bastion_waf_decisions_total", "WAF verdicts, by mode and action", ["mode", "action"])
        self._rule_hits = ctx.metrics.counter(
            "bastion_waf_rule_matches_total", "Logged WAF rule matches, by rule id", ["rule_id"])

    async def start(self) -> None:
        self._audit_log.start()

    async def close(self) -> None:
        self._audit_log.close()

    # ----------------------------------------------------------------- hooks

    async def on_request_headers(self, flow: Flow) -> None:
        tx = Transaction(self.ruleset, flow.request_id)
        flow.state(self, lambda: tx)
        request = flow.request
        peer = request.transport.get_extra_info("peername") if request.transport else None
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        tx.process_connection(flow.client_ip, peer[1] if peer else 0,
                              sock[0] if sock else "", sock[1] if sock else 0)
        tx.process_uri(request.raw_path, request.method,
                       f"HTTP/{request.version.major}.{request.version.minor}")
        for name, value in request.raw_headers:
            tx.add_request_header(name, value)
        if self._refuse(flow, tx, tx.process_request_headers()):
            return
        if not request.body_exists:
            self._refuse(flow, tx, tx.process_request_body(b""))

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        tx: Transaction = flow.state(self, _missing)
        self._refuse(flow, tx, tx.process_request_body(chunk, flow.request_body_truncated))
        return chunk

    async def on_response_headers(self, flow: Flow) -> None:
        tx: Transaction = flow.state(self, _missing)
        interruption = tx.process_response_headers(flow.response_status, "HTTP/1.1",
                                                   flow.response_headers.items())
        if self._refuse(flow, tx, interruption):
            return
        if tx.response_body_wanted():
            tx.response_body_limit = self.config.response_body.limit
            flow.buffer_response_body(self.config.response_body.limit, "truncate")
        else:
            # Phase 4 still runs (outbound scoring, 959100), on an empty body.
            self._refuse(flow, tx, tx.process_response_body(b""))

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        tx: Transaction = flow.state(self, _missing)
        self._refuse(flow, tx, tx.process_response_body(chunk))
        return chunk

    async def on_done(self, flow: Flow) -> None:
        tx: Transaction | None = flow.state(self, lambda: None)
        if tx is None:
            return
        tx.process_logging()
        logged = tx.logged_rules
        if tx.interruption is not None:
            action = "blocked"
        elif any(m.disruptive for m in tx.matched):
            action = "detected"
        else:
            action = "passed"
        self._decisions.labels(self.config.mode, action).inc()
        for m in logged:
            self._rule_hits.labels(str(m.id)).inc()
        if action != "passed":
            flow.decide("waf", action, rules=[m.id for m in logged])
        if logged and self._audit_log.open:
            self._audit(flow, tx, action)

    # --------------------------------------------------------------- helpers

    def _refuse(self, flow: Flow, tx: Transaction, interruption: Interruption | None) -> bool:
        if interruption is None or flow.local_response is not None:
            return interruption is not None
        body: dict[str, Any] = {"error": "request blocked by the web application firewall",
                                "request_id": flow.request_id}
        if interruption.rule_id == 0:  # a SecRequestBodyLimit refusal, not a rule
            body["error"] = "request body exceeds the WAF's SecRequestBodyLimit"
        elif self.config.show_rule_ids:
            body["rule_ids"] = [m.id for m in tx.logged_rules] or [interruption.rule_id]
        status = interruption.status
        headers = {}
        if interruption.action == "redirect" and interruption.url:
            headers["Location"] = interruption.url
        flow.respond(status, body, headers)
        return True

    def _audit(self, flow: Flow, tx: Transaction, action: str) -> None:
        request = flow.request
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "transaction_id": flow.request_id,
            "client_ip": flow.client_ip,
            "request_line": f"{request.method} {request.raw_path} "
                            f"HTTP/{request.version.major}.{request.version.minor}",
            "route": flow.route.name if flow.route is not None else None,
            "action": action,
            "mode": self.config.mode,
            "anomaly_scores": tx.anomaly_scores(),
            "matched": [m.as_dict() for m in tx.logged_rules],
        }
        self._audit_log.write(record)


def _missing() -> Transaction:
    raise RuntimeError("waf: no transaction for this flow (on_request_headers did not run)")
