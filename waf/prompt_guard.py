"""The ``ai-prompt-guard`` plugin: WAF rules on the text of LLM prompts and answers.

    plugins:
      ai-prompt-guard:
        roles: [user]                     # messages to inspect: system, user, assistant, tool
        actions: {prompt-injection: block, secret: mask, pii: mask}
        paranoia: 1
        rules: [my-prompt-rules/*.conf]   # on top of Bastion's (builtin_rules: true)
        directives: |
          SecRule ARGS:/^prompt\\./ "@rx (?i)project\\s+falcon" \\
              "id:1890001,phase:2,pass,log,tag:'prompt-guard/category/confidential'"
        response: {enabled: true, action: mask}
        audit_log: /var/log/bastion/prompt-guard.log

The plugin reads an OpenAI-format request body (chat ``messages``, the
completions ``prompt``, the embeddings ``input``; also the Responses API's
``input``/``instructions`` and Anthropic's ``system``), puts each message's
text into a WAF ``Transaction`` as an argument named after its role
(``ARGS:prompt.user``, ``ARGS:prompt.system``, ...; ``ARGS:prompt`` is all of
them joined, ``ARGS:prompt.decoded`` holds base64 segments decoded), and runs
a rule set: Bastion's prompt rules (``waf/prompt_rules/``) and the
configured ones. Each matching rule names a category in a tag
(``prompt-guard/category/<name>``); the category's action decides:

- ``block``: answer 403 with an OpenAI-style error, nothing goes upstream;
- ``mask``: replace what the rule's ``@rx`` matches in the forwarded JSON
  with ``[REDACTED:<label>]`` (the body is re-encoded);
- ``log``: record the detection, forward the request untouched.

With ``response.enabled`` the model's answer (non-streaming JSON) goes
through the same rule set as ``ARGS:completion``; event streams can be
checked at their end, ``log`` only (``response.streams``).

This module reads the JSON itself: the ``waf`` package depends on ``proxy``
only, never on ``ai``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import glob
import json
import os
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from proxy.flow import Flow
from proxy.plugin import Group, Plugin, PluginContext
from proxy.regex import compile_regex
from proxy.sse import SSEBufferOverflow, SSEParser
from waf.audit import AuditLog
from waf.engine import build_ruleset
from waf.operators.rx import Rx
from waf.plugin import Exclusions
from waf.rules import Rule, RuleSet, RuleSetError, Selector
from waf.seclang import SecLangError
from waf.transaction import MatchedRule, Transaction

PLUGIN_NAME = "ai-prompt-guard"

# Bastion's prompt rules (see waf/prompt_rules/README.md).
PROMPT_RULES = Path(__file__).resolve().parent / "prompt_rules"

CATEGORY_TAG = "prompt-guard/category/"
LABEL_TAG = "prompt-guard/label/"
VALIDATE_TAG = "prompt-guard/validate/"
UNCATEGORIZED = "uncategorized"

Action = Literal["block", "mask", "log"]
Role = Literal["system", "user", "assistant", "tool"]

# What the default rules' categories do unless `actions` says otherwise.
DEFAULT_ACTIONS: dict[str, Action] = {
    "prompt-injection": "block",
    "secret": "mask",
    "pii": "mask",
}
_STRENGTH = {"log": 0, "mask": 1, "block": 2}

# Message roles as OpenAI, Anthropic and the Responses API write them; any
# other (or none) is read as "user", so an odd role cannot hide a message.
_ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user",
                 "assistant": "assistant", "model": "assistant", "tool": "tool",
                 "function": "tool", "ipython": "tool"}
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})

_MIB = 1024 * 1024


def _default_roles() -> list[Role]:
    return ["user"]


class ResponseCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = False
    # One action for every category found in an answer.
    action: Action = "log"
    # Check text/event-stream answers too, when they end (log only).
    streams: bool = False
    # How much of an answer is buffered (JSON) or accumulated (streams).
    limit: int = Field(4 * _MIB, ge=1)


class PromptGuardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # detect: every action becomes log (a dry run).
    mode: Literal["enforce", "detect"] = "enforce"
    builtin_rules: bool = True
    rules: list[str] = Field(default_factory=list)
    directives: str = ""
    exclusions: Exclusions = Exclusions()
    paranoia: int = Field(1, ge=1, le=4)
    roles: list[Role] = Field(default_factory=_default_roles, min_length=1)
    # category -> action, over DEFAULT_ACTIONS.
    actions: dict[str, Action] = Field(default_factory=dict)
    # Categories in neither, and rules without a category tag.
    default_action: Action = "block"
    mask_template: str = "[REDACTED:{label}]"
    block_status: int = Field(403, ge=400, le=599)
    show_rule_ids: bool = False
    # A JSON body that cannot be read: forward it untouched, or answer 400.
    malformed: Literal["pass", "reject"] = "pass"
    request_body_limit: int = Field(8 * _MIB, ge=1)
    # Past the limit: 413, or forward the body uninspected.
    request_body_overflow: Literal["reject", "pass"] = "reject"
    response: ResponseCheck = ResponseCheck()
    audit_log: str | None = None

    @field_validator("directives")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\0" in v:
            raise ValueError("directives cannot contain NUL")
        return v

    @field_validator("actions")
    @classmethod
    def _category_names(cls, v: dict[str, Action]) -> dict[str, Action]:
        for name in v:
            if not name or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
                raise ValueError(f"category {name!r}: letters, digits, '-', '_', '.' only")
        return v

    @field_validator("mask_template")
    @classmethod
    def _template(cls, v: str) -> str:
        if "\0" in v:
            raise ValueError("mask_template cannot contain NUL")
        return v


# ---------------------------------------------------------------------------
# Checksums a regex cannot compute (tag prompt-guard/validate/<name>)


def luhn_valid(text: str) -> bool:
    """The Luhn (mod 10) check over the digits of ``text`` (13 to 19 of them)."""
    digits = [int(c) for c in text if c.isascii() and c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616: country letters, check digits, mod 97 of the rearranged number is 1."""
    compact = "".join(text.split()).upper()
    if not 15 <= len(compact) <= 34 or not compact.isascii() or not compact.isalnum():
        return False
    if not (compact[:2].isalpha() and compact[2:4].isdigit()):
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


VALIDATORS: dict[str, Callable[[str], bool]] = {"luhn": luhn_valid, "iban": iban_valid}


# ---------------------------------------------------------------------------
# Text in OpenAI-format bodies


@dataclass
class Segment:
    """One piece of text: its ARGS name, and where it lives in the parsed JSON.

    ``parent[slot]`` is the string (so a mask can write it back); both are
    None for text that is not in the body as such (joined or decoded).
    """

    key: str
    text: str
    parent: Any = None
    slot: Any = None

    @property
    def locatable(self) -> bool:
        return self.parent is not None


def _role(value: Any) -> str:
    if isinstance(value, str):
        return _ROLE_ALIASES.get(value.lower(), "user")
    return "user"


def _content(role: str, holder: Any, slot: Any, out: list[Segment]) -> None:
    """A message's content: a string, or a list of parts (text parts and strings)."""
    value = holder[slot]
    if isinstance(value, str):
        out.append(Segment(f"prompt.{role}", value, holder, slot))
    elif isinstance(value, list):
        for i, part in enumerate(value):
            if isinstance(part, str):
                out.append(Segment(f"prompt.{role}", part, value, i))
            elif isinstance(part, dict) and part.get("type") in _TEXT_PARTS \
                    and isinstance(part.get("text"), str):
                out.append(Segment(f"prompt.{role}", part["text"], part, "text"))


def _messages(items: list[Any], out: list[Segment]) -> None:
    for i, item in enumerate(items):
        if isinstance(item, str):  # Responses API / embeddings: a list of strings
            out.append(Segment("prompt.user", item, items, i))
        elif isinstance(item, dict) and "content" in item:
            _content(_role(item.get("role")), item, "content", out)


def request_segments(body: Any) -> list[Segment] | None:
    """Every prompt text of an OpenAI-format request; None when it is not one.

    Chat completions ``messages`` (string content, or parts of type text),
    completions ``prompt`` and embeddings ``input`` (a string or a list of
    strings; token arrays carry no text), the Responses API's
    ``instructions`` and message-list ``input``, Anthropic's ``system``.
    """
    if not isinstance(body, dict):
        return None
    out: list[Segment] = []
    found = False
    messages = body.get("messages")
    if isinstance(messages, list):
        found = True
        _messages(messages, out)
    for name, role in (("system", "system"), ("instructions", "system")):
        if name in body and isinstance(body[name], str | list):
            found = True
            _content(role, body, name, out)
    for name in ("prompt", "input"):
        value = body.get(name)
        if isinstance(value, str):
            found = True
            out.append(Segment("prompt.user", value, body, name))
        elif isinstance(value, list):
            found = True
            _messages(value, out)
    return out if found else None


def response_segments(body: Any) -> list[Segment]:
    """The answer's text: chat ``choices[].message.content``, completions
    ``choices[].text``; Anthropic ``content[]`` and Responses ``output[]`` text parts."""
    out: list[Segment] = []
    if not isinstance(body, dict):
        return out

    def parts(items: Any) -> None:
        if isinstance(items, list):
            for part in items:
                if isinstance(part, dict) and part.get("type") in _TEXT_PARTS \
                        and isinstance(part.get("text"), str):
                    out.append(Segment("completion", part["text"], part, "text"))

    choices = body.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            if isinstance(message, dict):
                content = message.get("content")
                if isinstance(content, str):
                    out.append(Segment("completion", content, message, "content"))
                else:
                    parts(content)
            if isinstance(choice.get("text"), str):
                out.append(Segment("completion", choice["text"], choice, "text"))
    parts(body.get("content"))
    output = body.get("output")
    if isinstance(output, list):
        for item in output:
            if isinstance(item, dict):
                parts(item.get("content"))
    return out


def stream_delta(data: Any) -> list[tuple[int, str]]:
    """(index, text) pairs one stream event adds: OpenAI chat/completions
    chunks, Anthropic ``content_block_delta``, Responses ``output_text.delta``."""
    if not isinstance(data, dict):
        return []
    out: list[tuple[int, str]] = []
    choices = data.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index")
            i = index if isinstance(index, int) and not isinstance(index, bool) else 0
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                out.append((i, delta["content"]))
            elif isinstance(choice.get("text"), str):
                out.append((i, choice["text"]))
    kind = data.get("type")
    delta = data.get("delta")
    if kind == "content_block_delta" and isinstance(delta, dict) \
            and isinstance(delta.get("text"), str):
        index = data.get("index")
        out.append((index if isinstance(index, int) else 0, delta["text"]))
    elif kind == "response.output_text.delta" and isinstance(delta, str):
        index = data.get("output_index")
        out.append((index if isinstance(index, int) else 0, delta))
    return out


# Runs of base64 (standard or URL-safe alphabet) long enough to hide a sentence.
_BASE64_RUN = compile_regex(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_MAX_DECODED = 32
_MAX_TOKEN = 64 * 1024


def _printable(text: str) -> bool:
    if len(text.strip()) < 6 or not any(c.isalpha() for c in text):
        return False
    good = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return good >= 0.9 * len(text)


def _base64_text(token: str) -> str | None:
    token = token.rstrip("=")
    if len(token) % 4 == 1 or len(token) > _MAX_TOKEN:
        return None
    padded = token + "=" * (-len(token) % 4)
    try:
        if "-" in token or "_" in token:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if _printable(text) else None


def decoded_variants(texts: Iterable[str]) -> list[str]:
    """Other readings of the texts, for ARGS:prompt.decoded.

    Base64 runs that decode to readable UTF-8 text (and base64 inside that,
    once), and the NFKC form with format characters (zero-width spaces,
    joiners, bidi controls) removed where it differs from the text.
    """
    out: list[str] = []

    def scan(text: str, depth: int) -> None:
        for m in _BASE64_RUN.finditer(text):
            if len(out) >= _MAX_DECODED:
                return
            decoded = _base64_text(m.group(0))
            if decoded is not None:
                out.append(decoded)
                if depth < 1:
                    scan(decoded, depth + 1)

    for text in texts:
        if len(out) >= _MAX_DECODED:
            break
        if not text.isascii():
            normal = "".join(c for c in unicodedata.normalize("NFKC", text)
                             if unicodedata.category(c) != "Cf")
            if normal != text:
                out.append(normal)
        scan(text, 0)
    return out[:_MAX_DECODED]


# ---------------------------------------------------------------------------
# JSON in, JSON out


class _Unreadable(ValueError):
    pass


def parse_body(body: bytes) -> tuple[Any, bool]:
    """The parsed body and whether it must be re-encoded to match what was inspected.

    A body that is not valid UTF-8 is read with replacement characters, and
    an object with a repeated key keeps the last value (as Python does); in
    both cases an upstream could read the raw bytes differently, so the
    inspected reading is what gets forwarded.
    """
    rewrite = False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
        rewrite = True
    text = text.removeprefix("\ufeff")
    duplicates = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        obj: dict[str, Any] = {}
        for k, v in items:
            if k in obj:
                duplicates = True
            obj[k] = v
        return obj

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError) as exc:
        raise _Unreadable(str(exc)) from None
    return value, rewrite or duplicates


def dump_body(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------
# What the plugin knows about each rule


@dataclass(frozen=True)
class RuleInfo:
    id: int
    category: str
    label: str
    # The rule's own @rx (first link), for spans; None for other operators.
    regex: Any = None
    # Length-preserving transformations to apply before the regex: "lower"/"upper".
    case: str | None = None
    validator: Callable[[str], bool] | None = None
    selectors: tuple[Selector, ...] = ()
    exclusions: tuple[Selector, ...] = ()

    def targets(self, key: str) -> bool:
        """Whether the rule reads ARGS entry ``key`` (every entry when it reads no ARGS)."""
        args = [s for s in self.selectors if s.collection in ("ARGS", "ARGS_POST") and not s.count]
        if not args:
            return True
        if not any(s.matches_key(key) for s in args):
            return False
        return not any(s.collection in ("ARGS", "ARGS_POST") and s.matches_key(key)
                       for s in self.exclusions)


def rule_info(rule: Rule) -> RuleInfo:
    category = UNCATEGORIZED
    label = ""
    validator = None
    for tag in rule.tags:
        if tag.startswith(CATEGORY_TAG) and category == UNCATEGORIZED:
            category = tag[len(CATEGORY_TAG):] or UNCATEGORIZED
        elif tag.startswith(LABEL_TAG) and not label:
            label = tag[len(LABEL_TAG):]
        elif tag.startswith(VALIDATE_TAG):
            name = tag[len(VALIDATE_TAG):]
            if name not in VALIDATORS:
                raise ValueError(f"rule {rule.id}: unknown validator {name!r} "
                                 f"(known: {', '.join(sorted(VALIDATORS))})")
            validator = VALIDATORS[name]
    regex = None
    case = None
    if isinstance(rule.operator, Rx) and not rule.negated:
        regex = rule.operator.regex
        names = [n.lower() for n in rule.transformation_names]
        if "none" in names:
            names = names[len(names) - names[::-1].index("none"):]
        if set(names) <= {"lowercase", "uppercase"}:
            case = ("lower" if names[-1] == "lowercase" else "upper") if names else None
        else:
            regex = None  # the transformed value's offsets are not the text's
    if validator is not None and regex is None:
        raise ValueError(f"rule {rule.id}: a prompt-guard/validate tag needs a plain @rx rule "
                         "(t:none, or only t:lowercase/t:uppercase)")
    return RuleInfo(rule.id, category, label or category, regex, case, validator,
                    tuple(rule.selectors), tuple(rule.exclusions))


# ---------------------------------------------------------------------------
# Per-request state and verdicts


@dataclass
class Hit:
    info: RuleInfo
    msg: str
    matched_var_name: str
    matched_var: str
    action: Action
    # (segment index, start, end): byte offsets in the segment's UTF-8 text.
    spans: list[tuple[int, int, int]] = field(default_factory=list)
    escalated: bool = False  # mask wanted, nothing to mask: blocked instead


@dataclass
class _StreamText:
    parser: SSEParser
    limit: int
    texts: dict[int, list[str]] = field(default_factory=dict)
    size: int = 0
    broken: bool = False


@dataclass
class _State:
    # "json" (buffered answer) or "sse" (stream) once the response headers are seen.
    response: str | None = None
    stream: _StreamText | None = None


def _no_state() -> _State | None:
    return None


class PromptGuardPlugin(Plugin[PromptGuardConfig]):
    name = PLUGIN_NAME
    group = Group.SECURITY
    config_model = PromptGuardConfig
    response_body_streaming = False

    def __init__(self, config: PromptGuardConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        base = ctx.base_dir
        files: list[Path] = sorted(PROMPT_RULES.glob("*.conf")) if config.builtin_rules else []
        if config.builtin_rules and not files:
            raise ValueError(f"Bastion's prompt rules are missing: no *.conf in {PROMPT_RULES}")
        for pattern in config.rules:
            path = pattern if os.path.isabs(pattern) else str(base / pattern)
            found = sorted(glob.glob(path))
            if not found:
                raise ValueError(f"rules: nothing matches {pattern!r}")
            files.extend(Path(f) for f in found)
        if not files and not config.directives.strip():
            raise ValueError("no rules: builtin_rules is off and neither rules nor "
                             "directives give any")
        try:
            # Engine On, so allow and ctl:ruleEngine work for exemptions; the
            # rules pass and log, and the plugin decides from their categories.
            self.ruleset: RuleSet = build_ruleset(
                engine="On", paranoia=config.paranoia, inline=config.directives,
                files=files, exclusions=config.exclusions.directives(), base_dir=base)
        except (RuleSetError, SecLangError, OSError) as exc:
            raise ValueError(f"rules failed to load: {exc}") from None
        self.rules: dict[int, RuleInfo] = {}
        for rule in self.ruleset.rules:
            if rule.marker is None and rule.id:
                self.rules[rule.id] = rule_info(rule)
        self.actions: dict[str, Action] = {**DEFAULT_ACTIONS, **config.actions}
        self.roles = frozenset(config.roles)
        # Patterns that redact the audit log: every labelled @rx rule.
        self._redactors = [i for i in self.rules.values()
                           if i.regex is not None and i.category != "prompt-injection"
                           and i.category != UNCATEGORIZED]
        self.request_body_limit = config.request_body_limit
        self.request_body_overflow = ("reject" if config.request_body_overflow == "reject"
                                      else "truncate")
        if config.response.enabled and config.response.streams:
            # Per instance: only a config that checks streams sees every
            # response body (which also makes the gateway drop Content-Length).
            self.__dict__["response_body_streaming"] = True
        self._audit_log = AuditLog(config.audit_log, ctx.base_dir)
        self._decisions = ctx.metrics.counter(
            "bastion_prompt_guard_decisions_total",
            "Prompt guard verdicts, by direction (request, response), category and action",
            ["direction", "category", "action"])
        self._rule_hits = ctx.metrics.counter(
            "bastion_prompt_guard_rule_matches_total",
            "Prompt guard rule matches, by rule id", ["rule_id"])

    async def start(self) -> None:
        self._audit_log.start()

    async def close(self) -> None:
        self._audit_log.close()

    # ----------------------------------------------------------------- hooks

    async def on_request_headers(self, flow: Flow) -> None:
        if self.config.response.enabled:
            # A compressed answer could not be read: ask for an identity one.
            flow.request_headers["Accept-Encoding"] = "identity"

    async def on_request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        ctype = flow.request_headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype.startswith("multipart/") or ctype == "application/x-www-form-urlencoded":
            return chunk  # uploads (audio, files): no prompt JSON here
        jsonish = ctype in ("", "application/json") or ctype.endswith("+json")
        if not end or flow.request_body_truncated:
            self._unread(flow, "request", "body larger than request_body_limit", jsonish=False)
            return chunk
        # The gateway forwards a compressed body as it came: inspect it
        # decoded (a client must not slip a prompt past by gzipping it), and
        # forward it untouched unless it has to be rewritten.
        encoding = flow.request_headers.get("Content-Encoding", "").strip().lower()
        encoded = encoding not in ("", "identity")
        readable = chunk
        if encoded:
            decoded = _decompress(chunk, encoding, self.request_body_limit or 0)
            if decoded is None:
                # Unknown coding, damaged, or larger than the limit once decoded:
                # unreadable bodies are refused (a prompt could hide in them).
                self._unread(flow, "request", f"body in Content-Encoding {encoding!r}", True)
                if flow.local_response is None:
                    flow.respond(415, {"error": {
                        "message": f"Content-Encoding {encoding!r} cannot be inspected.",
                        "type": "invalid_request_error", "param": None,
                        "code": "unsupported_encoding"}})
                return b""
            readable = decoded
        if not jsonish and not encoded and chunk.lstrip()[:1] != b"{":
            return chunk
        try:
            body, rewrite = parse_body(readable)
        except _Unreadable:
            self._unread(flow, "request", "compressed body" if encoded else "invalid JSON",
                         jsonish or encoded)
            return chunk
        segments = request_segments(body)
        if segments is None:
            return chunk  # JSON, but not an AI API request
        flow.state(self, _State)
        segments = [s for s in segments if s.key.split(".", 1)[1] in self.roles]
        if not segments:
            self._count("request", [])
            return self._rewritten(flow, body) if rewrite else chunk
        entries = list(segments)
        entries.append(Segment("prompt", "\n".join(s.text for s in segments)))
        entries.extend(Segment("prompt.decoded", t)
                       for t in decoded_variants(s.text for s in segments))
        hits = self._check(flow, entries, "request", None)
        if any(h.action == "block" for h in hits):
            self._refuse(flow, hits, "request")
            return b""
        if any(h.action == "mask" for h in hits):
            _apply_masks(entries, hits, self.config.mask_template)
            rewrite = True
        return self._rewritten(flow, body) if rewrite else chunk

    def _rewritten(self, flow: Flow, body: Any) -> bytes:
        """The re-encoded request body: plain JSON, whatever encoding the client declared."""
        flow.request_headers.popall("Content-Encoding", None)
        return dump_body(body)

    async def on_response_headers(self, flow: Flow) -> None:
        state = flow.state(self, _no_state)
        check = self.config.response
        if state is None or not check.enabled or not 200 <= flow.response_status < 300:
            return
        encoding = flow.response_headers.get("Content-Encoding", "identity").strip().lower()
        ctype = flow.response_headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype == "application/json" or ctype.endswith("+json"):
            if encoding not in ("", "identity"):
                self._unread(flow, "response", "compressed answer", jsonish=False)
                return
            state.response = "json"
            flow.buffer_response_body(check.limit, "truncate")
        elif ctype == "text/event-stream" and check.streams:
            if encoding not in ("", "identity"):
                self._unread(flow, "response", "compressed answer", jsonish=False)
                return
            state.response = "sse"
            state.stream = _StreamText(SSEParser(max_event_bytes=check.limit), check.limit)

    async def on_response_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        state = flow.state(self, _no_state)
        if state is None or state.response is None:
            return chunk
        if state.response == "json":
            return self._check_answer(flow, chunk)
        stream = state.stream
        if stream is not None and not stream.broken:
            _feed(stream, chunk)
            if end:
                with contextlib.suppress(SSEBufferOverflow):
                    for event in stream.parser.close():
                        _take(stream, event.data)
                self._check_stream(flow, stream)
        return chunk

    # ------------------------------------------------------------- checking

    def _transaction(self, flow: Flow, entries: list[Segment]) -> Transaction:
        tx = Transaction(self.ruleset, flow.request_id)
        request = flow.request
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else None
        sock = transport.get_extra_info("sockname") if transport else None
        tx.process_connection(flow.client_ip, peer[1] if peer else 0,
                              sock[0] if sock else "", sock[1] if sock else 0)
        tx.process_uri(request.raw_path, request.method,
                       f"HTTP/{request.version.major}.{request.version.minor}")
        # ARGS holds the prompt entries only (QUERY_STRING keeps the query).
        for key in {k for k, _ in tx.args_get.items()}:
            tx.args_get.remove(key)
        for name, value in request.raw_headers:
            tx.add_request_header(name, value)
        for entry in entries:
            tx.args_post.add(entry.key, _encode(entry.text))
        if tx.process_request_headers() is None:
            tx.process_request_body(b"")
        tx.process_logging()
        return tx

    def _check(self, flow: Flow, entries: list[Segment], direction: str,
               fixed: Action | None) -> list[Hit]:
        """Run the rules over ``entries``; the hits with their actions (and spans to mask)."""
        tx = self._transaction(flow, entries)
        matched: list[MatchedRule] = list(tx.logged_rules)
        if tx.interruption is not None and tx.interruption.rule_id and \
                all(m.id != tx.interruption.rule_id for m in matched):
            # A deny rule with nolog still counts.
            rule = self.ruleset.by_id.get(tx.interruption.rule_id)
            matched.append(MatchedRule(tx.interruption.rule_id, 2, "", "", None,
                                       rule.tags if rule else (), "", "", True, False))
        hits: list[Hit] = []
        seen: set[int] = set()
        detect = self.config.mode == "detect"
        for m in matched:
            info = self.rules.get(m.id)
            if info is None or m.id in seen:
                continue
            seen.add(m.id)
            action: Action = fixed or self.actions.get(info.category, self.config.default_action)
            hit = Hit(info, m.msg, m.matched_var_name, m.matched_var, action)
            if info.regex is not None and (info.validator is not None or action == "mask"):
                spans = _spans(info, entries)
                if info.validator is not None and not spans:
                    continue  # the shape matched, the checksum did not
                hit.spans = [s for s in spans if entries[s[0]].locatable]
            if action == "mask" and not hit.spans:
                # Nothing in the forwarded text to replace (the match was in a
                # decoded or joined entry, or the rule is not a plain @rx).
                hit.action, hit.escalated = "block", True
            if detect:
                hit.action = "log"
            hits.append(hit)
        self._count(direction, hits)
        if hits:
            verdict = _verdict(hits)
            flow.decide(PLUGIN_NAME, verdict, direction=direction,
                        categories=sorted({h.info.category for h in hits}),
                        rules=[h.info.id for h in hits])
            if self._audit_log.open:
                self._audit(flow, direction, verdict, hits)
        return hits

    def _check_answer(self, flow: Flow, chunk: bytes) -> bytes:
        try:
            body, rewrite = parse_body(chunk)
        except _Unreadable:
            self._unread(flow, "response", "invalid or truncated JSON answer", jsonish=False)
            return chunk
        segments = response_segments(body)
        if not segments:
            return chunk
        hits = self._check(flow, segments, "response", self.config.response.action)
        if any(h.action == "block" for h in hits):
            self._refuse(flow, hits, "response")
            return b""
        if any(h.action == "mask" for h in hits):
            _apply_masks(segments, hits, self.config.mask_template)
            rewrite = True
        return dump_body(body) if rewrite else chunk

    def _check_stream(self, flow: Flow, stream: _StreamText) -> None:
        if stream.broken or not stream.texts:
            return
        entries = [Segment("completion", "".join(parts))
                   for _, parts in sorted(stream.texts.items())]
        self._check(flow, entries, "response", "log")

    # ---------------------------------------------------------- answering

    def _refuse(self, flow: Flow, hits: list[Hit], direction: str) -> None:
        blocking = [h for h in hits if h.action == "block"]
        categories = sorted({h.info.category for h in blocking})
        noun = "request" if direction == "request" else "response"
        error: dict[str, Any] = {
            "message": f"The {noun} was blocked by the prompt guard "
                       f"({', '.join(categories)}).",
            "type": "prompt_blocked" if direction == "request" else "response_blocked",
            "param": None,
            "code": categories[0].replace("-", "_") if categories else "blocked",
        }
        if self.config.show_rule_ids:
            error["rule_ids"] = [h.info.id for h in blocking]
        flow.respond(self.config.block_status, {"error": error})

    def _unread(self, flow: Flow, direction: str, reason: str, jsonish: bool) -> None:
        """A body the plugin could not read: counted, and refused if configured."""
        self._decisions.labels(direction, "none", "unparsed").inc()
        flow.decide(PLUGIN_NAME, "unparsed", direction=direction, reason=reason)
        if jsonish and direction == "request" and self.config.malformed == "reject":
            flow.respond(400, {"error": {
                "message": f"The request body could not be read as JSON ({reason}).",
                "type": "invalid_request_error", "param": None, "code": "invalid_json"}})

    def _count(self, direction: str, hits: list[Hit]) -> None:
        if not hits:
            self._decisions.labels(direction, "none", "pass").inc()
            return
        strongest: dict[str, Action] = {}
        for h in hits:
            self._rule_hits.labels(str(h.info.id)).inc()
            current = strongest.get(h.info.category)
            if current is None or _STRENGTH[h.action] > _STRENGTH[current]:
                strongest[h.info.category] = h.action
        for category, action in strongest.items():
            self._decisions.labels(direction, category, action).inc()

    def _audit(self, flow: Flow, direction: str, verdict: str, hits: list[Hit]) -> None:
        request = flow.request
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "transaction_id": flow.request_id,
            "client_ip": flow.client_ip,
            "request_line": f"{request.method} {request.raw_path} "
                            f"HTTP/{request.version.major}.{request.version.minor}",
            "route": flow.route.name if flow.route is not None else None,
            "direction": direction,
            "action": verdict,
            "mode": self.config.mode,
            "matched": [{"id": h.info.id, "category": h.info.category, "label": h.info.label,
                         "action": h.action, "escalated": h.escalated,
                         "msg": self._redact(h.msg, h.matched_var),
                         "matched_var_name": h.matched_var_name,
                         "spans": len(h.spans)} for h in hits],
        }
        self._audit_log.write(record)

    def _redact(self, text: str, matched_var: str) -> str:
        """Log text with matched values and anything a secret/PII pattern finds replaced."""
        if len(matched_var) >= 4:
            text = text.replace(matched_var, "[REDACTED]")
        data = _encode(text)
        for info in self._redactors:
            data = info.regex.sub(f"[REDACTED:{info.label}]".encode(), data)
        return _decode(data)


# ---------------------------------------------------------------------------
# Spans and masks


def _spans(info: RuleInfo, entries: list[Segment]) -> list[tuple[int, int, int]]:
    """Where the rule's @rx matches in the entries it reads (validated when it says so)."""
    out: list[tuple[int, int, int]] = []
    for i, entry in enumerate(entries):
        if not info.targets(entry.key):
            continue
        data = _encode(entry.text)
        subject = data.lower() if info.case == "lower" else \
            data.upper() if info.case == "upper" else data
        for m in info.regex.finditer(subject):
            start, end = m.span()
            if end <= start:
                continue
            start, end = _char_bounds(data, start, end)
            if info.validator is not None and \
                    not info.validator(data[start:end].decode("utf-8", "replace")):
                continue
            out.append((i, start, end))
    return out


def _char_bounds(data: bytes, start: int, end: int) -> tuple[int, int]:
    """Widen a byte span so it never splits a UTF-8 sequence."""
    while start > 0 and 0x80 <= data[start] < 0xC0:
        start -= 1
    while end < len(data) and 0x80 <= data[end] < 0xC0:
        end += 1
    return start, end


def _decompress(data: bytes, encoding: str, limit: int) -> bytes | None:
    """``data`` decoded from gzip or deflate, at most ``limit`` bytes; None if it cannot be."""
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS  # zlib-wrapped, as RFC 9110 defines it...
        if data[:1] and data[0] & 0x0F != 8:
            wbits = -zlib.MAX_WBITS  # ...though some clients send raw deflate
    else:
        return None
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(data, limit + 1 if limit else 0)
    except zlib.error:
        return None
    if (limit and len(out) > limit) or not inflater.eof:
        return None
    return out


def _apply_masks(entries: list[Segment], hits: list[Hit], template: str) -> None:
    by_entry: dict[int, list[tuple[int, int, str, str]]] = {}
    for h in hits:
        if h.action != "mask":
            continue
        for i, start, end in h.spans:
            by_entry.setdefault(i, []).append((start, end, h.info.label, h.info.category))
    for i, spans in by_entry.items():
        entry = entries[i]
        data = _encode(entry.text)
        # Overlapping spans merge; the earliest (then longest) names the placeholder.
        spans.sort(key=lambda s: (s[0], -s[1]))
        merged: list[list[Any]] = []
        for start, end, label, category in spans:
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end, label, category])
        out = bytearray()
        pos = 0
        for start, end, label, category in merged:
            out += data[pos:start]
            out += _encode(template.replace("{label}", label).replace("{category}", category))
            pos = end
        out += data[pos:]
        text = _decode(bytes(out))
        entry.text = text
        entry.parent[entry.slot] = text


def _verdict(hits: list[Hit]) -> str:
    actions = {h.action for h in hits}
    if "block" in actions:
        return "blocked"
    if "mask" in actions:
        return "masked"
    return "detected"


# ---------------------------------------------------------------------------
# Streams


def _feed(stream: _StreamText, chunk: bytes) -> None:
    try:
        events = stream.parser.feed(chunk)
    except SSEBufferOverflow:
        stream.broken = True
        return
    for event in events:
        _take(stream, event.data)


def _take(stream: _StreamText, data: str) -> None:
    if stream.broken or not data or data == "[DONE]":
        return
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return
    for index, text in stream_delta(parsed):
        stream.size += len(text)
        if stream.size > stream.limit:
            stream.broken = True  # too long to keep: the answer goes unchecked
            stream.texts.clear()
            return
        stream.texts.setdefault(index, []).append(text)


__all__ = ["DEFAULT_ACTIONS", "PROMPT_RULES", "PromptGuardConfig", "PromptGuardPlugin",
           "decoded_variants", "iban_valid", "luhn_valid", "request_segments",
           "response_segments", "stream_delta"]
