"""Compiling SecLang directives into a rule set.

Everything that can be decided when rules load is decided here: operators,
transformation chains (with prefix ids for the per-request cache), variable
selectors, macros, default actions, chains and markers. The transaction only
walks the per-phase lists and evaluates.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.regex import compile_regex
from waf.actions import ActionSpecError, RuleBuilder, get_action
from waf.macros import Macro
from waf.operators import Operator, OperatorContext, get_operator
from waf.seclang import (
    ActionSpec,
    Directive,
    SecLangError,
    VariableSpec,
    parse_actions,
    parse_operator,
    parse_variables,
)
from waf.transformations import Transformation, get_transformation

# Collections a selector may name. (Anything else is a load error: a typo in a
# variable must not silently select nothing.)
KNOWN_COLLECTIONS = frozenset({
    "ARGS", "ARGS_GET", "ARGS_POST", "ARGS_NAMES", "ARGS_GET_NAMES", "ARGS_POST_NAMES",
    "ARGS_COMBINED_SIZE", "AUTH_TYPE", "DURATION", "ENV", "FILES", "FILES_COMBINED_SIZE",
    "FILES_NAMES", "FILES_SIZES", "FILES_TMPNAMES", "FILES_TMP_CONTENT", "FULL_REQUEST",
    "FULL_REQUEST_LENGTH", "GEO", "HIGHEST_SEVERITY", "INBOUND_DATA_ERROR", "IP",
    "MATCHED_VAR", "MATCHED_VARS", "MATCHED_VAR_NAME", "MATCHED_VARS_NAMES",
    "MODSEC_BUILD", "MULTIPART_BOUNDARY_QUOTED", "MULTIPART_BOUNDARY_WHITESPACE",
    "MULTIPART_CRLF_LF_LINES", "MULTIPART_DATA_AFTER", "MULTIPART_DATA_BEFORE",
    "MULTIPART_FILENAME", "MULTIPART_FILE_LIMIT_EXCEEDED", "MULTIPART_HEADER_FOLDING",
    "MULTIPART_INVALID_HEADER_FOLDING", "MULTIPART_INVALID_PART", "MULTIPART_INVALID_QUOTING",
    "MULTIPART_LF_LINE", "MULTIPART_MISSING_SEMICOLON", "MULTIPART_NAME",
    "MULTIPART_PART_HEADERS", "MULTIPART_STRICT_ERROR", "MULTIPART_UNMATCHED_BOUNDARY",
    "OUTBOUND_DATA_ERROR", "PATH_INFO", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST",
    "REMOTE_PORT", "REMOTE_USER", "REQBODY_ERROR", "REQBODY_ERROR_MSG", "REQBODY_PROCESSOR",
    "REQBODY_PROCESSOR_ERROR", "REQUEST_BASENAME", "REQUEST_BODY", "REQUEST_BODY_LENGTH",
    "REQUEST_COOKIES", "REQUEST_COOKIES_NAMES", "REQUEST_FILENAME", "REQUEST_HEADERS",
    "REQUEST_HEADERS_NAMES", "REQUEST_LINE", "REQUEST_METHOD", "REQUEST_PROTOCOL",
    "REQUEST_URI", "REQUEST_URI_RAW", "RESOURCE", "RESPONSE_BODY", "RESPONSE_CONTENT_LENGTH",
    "RESPONSE_CONTENT_TYPE", "RESPONSE_HEADERS", "RESPONSE_HEADERS_NAMES", "RESPONSE_PROTOCOL",
    "RESPONSE_STATUS", "RULE", "SERVER_ADDR", "SERVER_NAME", "SERVER_PORT", "SESSION",
    "SESSIONID", "STATUS_LINE", "TIME", "TIME_DAY", "TIME_EPOCH", "TIME_HOUR", "TIME_MIN",
    "TIME_MON", "TIME_SEC", "TIME_WDAY", "TIME_YEAR", "TX", "UNIQUE_ID", "URLENCODED_ERROR",
    "USER", "USERID", "WEBSERVER_ERROR_LOG", "XML",
})


class RuleSetError(ValueError):
    """A rule set that cannot load: names the file and line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


_KEY_MATCHES_MAX = 4096


@dataclass(frozen=True, slots=True)
class Selector:
    """One compiled variable: ``ARGS``, ``ARGS:id``, ``ARGS:/^x/``, ``&ARGS``, ``XML:/*``."""

    collection: str
    key: str | None = None
    key_regex: Any = None
    count: bool = False
    # Argument, cookie, header and TX names repeat from request to request:
    # a key regex's verdict on each is remembered (bounded; not part of the
    # selector's identity).
    verdicts: dict[str, bool] = field(default_factory=dict, compare=False, hash=False,
                                      repr=False)

    def matches_key(self, key: str) -> bool:
        regex = self.key_regex
        if regex is None:
            return self.key is None or self.key.lower() == key.lower()
        verdicts = self.verdicts
        found = verdicts.get(key)
        if found is None:
            if len(verdicts) >= _KEY_MATCHES_MAX:
                verdicts.clear()
            found = verdicts[key] = regex.search(key) is not None
        return found

    @classmethod
    def from_spec(cls, spec: VariableSpec) -> Selector:
        collection = spec.collection.upper()
        if collection not in KNOWN_COLLECTIONS:
            raise ValueError(f"unknown variable {spec.collection!r}")
        regex = None
        if spec.key_is_regex and spec.key is not None:
            # RE2, like every pattern run on request data.
            regex = compile_regex("(?i)" + spec.key)
        return cls(collection, spec.key, regex, spec.count)


_PREFIXES: dict[tuple[str, ...], int] = {}


def transformation_chain(names: list[str]) -> tuple[tuple[int, Transformation], ...]:
    """Each step with the id of the chain prefix ending there (shared across rules)."""
    out = []
    for i, name in enumerate(names):
        prefix = tuple(n.lower() for n in names[: i + 1])
        pid = _PREFIXES.setdefault(prefix, len(_PREFIXES) + 1)
        out.append((pid, get_transformation(name)))
    return tuple(out)


@dataclass(eq=False)
class Rule:
    id: int = 0
    phase: int = 2
    file: str = ""
    line: int = 0
    selectors: list[Selector] = field(default_factory=list)
    exclusions: list[Selector] = field(default_factory=list)
    operator: Operator | None = None
    operator_name: str = "unconditionalmatch"
    operator_argument: str = ""
    negated: bool = False
    transformation_names: list[str] = field(default_factory=list)
    transformations: tuple[tuple[int, Transformation], ...] = ()
    multi_match: bool = False
    capture: bool = False
    chain: Rule | None = None
    chained: bool = False  # this rule is a chain link, not a starter
    msg: Macro | None = None
    logdata: Macro | None = None
    severity: int | None = None
    tags: tuple[str, ...] = ()
    ver: str = ""
    rev: str = ""
    maturity: int | None = None
    accuracy: int | None = None
    log: bool = True
    auditlog: bool = True
    # "deny", "drop", "block", "pass", "allow", "redirect"; None: the phase default
    disruptive: str | None = None
    status: int | None = None
    redirect_url: Macro | None = None
    allow_scope: str = ""
    skip: int = 0
    skip_after: str | None = None
    # Run-time actions in order: (action object, its compiled argument).
    actions: list[tuple[Any, Any]] = field(default_factory=list)
    marker: str | None = None
    is_action: bool = False  # SecAction: no variables, always matches
    # Prefilter (see build_prefilters): the re2.Set holding this link's @rx
    # pattern (0: none) and its index in it; whether its values are fixed for
    # a phase (so per-selector results can be shared between rules).
    rx_set: int = 0
    rx_index: int = -1
    # The set's verdict is a superset (a @pm list): confirm a hit with the operator.
    rx_confirm: bool = False
    stable: bool = False
    # For a stable link: an id per (selector, transformation chain) pair, and
    # one for the whole tuple of them, so a transaction caches each pair's
    # values and each group's match union under a small int.
    entry_keys: tuple[int, ...] = ()
    selector_ids: tuple[int, ...] = ()
    decide_key: int = 0  # (chain, set, multiMatch) as a small int
    group_id: int = 0
    # Every selector names one key of a collection and nothing excludes any:
    # (collection, key, "COLLECTION:key") per selector, read without a scan.
    simple_targets: tuple[tuple[str, str, str], ...] | None = None
    # A rule (or chain starter) comparing one TX variable (or its count) with
    # a constant number, as CRS's paranoia-level and setup guards do: the
    # rule loop sees a miss without evaluating, and settles a match of a
    # lone rule itself.
    tx_guard: TxGuard | None = None

    @property
    def last_link(self) -> Rule:
        rule = self
        while rule.chain is not None:
            rule = rule.chain
        return rule


@dataclass(frozen=True, slots=True)
class TxGuard:
    """``TX:key`` or ``&TX:key``, untransformed, compared with a number (or a macro)."""

    key: str  # lower-cased, as TX stores it
    count: bool
    operator: Any  # a NumericCompare
    name: str  # as MATCHED_VAR_NAME reports it: "TX:key" or "&TX:key"


@dataclass
class EngineSettings:
    rule_engine: str = "On"  # On | Off | DetectionOnly
    request_body_access: bool = False
    response_body_access: bool = False
    response_body_mime_types: tuple[str, ...] = ("text/plain", "text/html")
    # None: not set by the rules; the waf plugin's own request_body_limit
    # (what the gateway buffers) is then the only bound.
    request_body_limit: int | None = None
    request_body_no_files_limit: int | None = None
    request_body_limit_action: str = "Reject"  # Reject | ProcessPartial
    response_body_limit: int = 524_288
    response_body_limit_action: str = "ProcessPartial"
    arguments_limit: int = 1000
    audit_engine: str = "RelevantOnly"
    component_signatures: list[str] = field(default_factory=list)


class ValueCache:
    """Transformation results and set matches of short values, shared by transactions.

    Both are pure functions of the bytes, and the short values of real
    traffic (header values, cookie names, common arguments) repeat from
    request to request, so a rule set remembers them across transactions.
    Only values up to ``max_value`` bytes are kept, at most ``max_entries``
    of each kind; a full cache is emptied when the next transaction starts
    (values an attacker makes unique only cost what they would without it).
    """

    __slots__ = ("decided", "matches", "max_entries", "max_value", "plans", "transformed",
                 "unions")

    def __init__(self, max_entries: int = 32_768, max_value: int = 512) -> None:
        self.max_entries = max_entries
        self.max_value = max_value
        self.transformed: dict[tuple[int, bytes], bytes] = {}
        self.matches: dict[tuple[int, bytes], frozenset[int]] = {}
        # (a stable link's decide_key, raw value) -> each form after the
        # chain with its set matches or None
        self.decided: dict[tuple[int, bytes], tuple[tuple[bytes, frozenset[int] | None], ...]] = {}
        # ((selector, chain) pair id, the selector's raw values) -> (union of
        # their set matches, the transformed values the set did not judge)
        self.unions: dict[tuple[int, tuple[bytes, ...]],
                          tuple[frozenset[int], tuple[bytes, ...]]] = {}
        # (SelectorPlan id, raw value) -> (union of its set matches through
        # every chain of the plan, some form the set did not judge)
        self.plans: dict[tuple[int, bytes], tuple[frozenset[int], bool]] = {}

    def trim(self) -> None:
        if len(self.decided) > self.max_entries:
            self.decided.clear()
        if len(self.unions) > self.max_entries:
            self.unions.clear()
        if len(self.plans) > self.max_entries:
            self.plans.clear()

        if len(self.transformed) > self.max_entries:
            self.transformed.clear()
        if len(self.matches) > self.max_entries:
            self.matches.clear()


@dataclass
class RuleSet:
    rules: list[Rule]
    settings: EngineSettings
    phase_rules: dict[int, list[Rule]]
    default_disruptive: dict[int, str]
    by_id: dict[int, Rule]
    # set id -> an re2.Set of @rx patterns and @pm phrase lists (build_prefilters)
    prefilters: dict[int, Any] = field(default_factory=dict)
    # (set id, phase) -> the selectors (and chains) the phase's stable links on the set read
    set_plans: dict[tuple[int, int], tuple[SelectorPlan, ...]] = field(default_factory=dict)
    values: ValueCache = field(default_factory=ValueCache)
    # Per phase, per position in phase_rules: where the loop resumes when the
    # rule there matches with skipAfter (just past the first marker of that
    # name further on, or the end); 0 for rules without skipAfter.
    resume_after: dict[int, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.resume_after = {phase: _resume_points(rules)
                             for phase, rules in self.phase_rules.items()}


def _resume_points(rules: list[Rule]) -> list[int]:
    points = [0] * len(rules)
    for i, rule in enumerate(rules):
        if rule.skip_after:
            points[i] = next((j + 1 for j in range(i + 1, len(rules))
                              if rules[j].marker == rule.skip_after), len(rules))
    return points


_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def parse_id_ranges(text: str) -> list[tuple[int, int]]:
    """``"1-999999"``, ``"920100 920200"``, ``"1,2,3"`` -> inclusive ranges."""
    ranges = []
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        m = _RANGE_RE.match(part)
        if m:
            ranges.append((int(m.group(1)), int(m.group(2))))
        elif part.isdigit():
            ranges.append((int(part), int(part)))
        else:
            raise ValueError(f"not a rule id or range: {part!r}")
    return ranges


def _bool_directive(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in ("on", "true"):
        return True
    if v in ("off", "false"):
        return False
    raise ValueError(f"{name} takes On or Off, not {value!r}")


class Compiler:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.settings = EngineSettings()
        self.defaults: dict[int, list[ActionSpec]] = {}
        self.default_disruptive: dict[int, str] = {}
        self._chain_tail: Rule | None = None
        self._ids: dict[int, Rule] = {}

    def compile(self, directives: list[Directive]) -> RuleSet:
        for d in directives:
            try:
                self._directive(d)
            except RuleSetError:
                raise
            except (ValueError, KeyError, ActionSpecError, SecLangError) as exc:
                message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
                if isinstance(exc, KeyError):
                    message = f"unknown name {message!r}"
                raise RuleSetError(d.file, d.line, f"{d.name}: {message}") from None
        if self._chain_tail is not None:
            raise RuleSetError(self._chain_tail.file, self._chain_tail.line,
                               "the last rule says `chain` but no rule follows")
        phase_rules: dict[int, list[Rule]] = {p: [] for p in range(1, 6)}
        for rule in self.rules:
            if rule.marker is not None:
                for p in phase_rules:
                    phase_rules[p].append(rule)
            else:
                phase_rules[rule.phase].append(rule)
        return RuleSet(self.rules, self.settings, phase_rules, dict(self.default_disruptive),
                       dict(self._ids), *build_prefilters(self.rules))

    # ------------------------------------------------------------ directives

    def _directive(self, d: Directive) -> None:
        name = d.name.lower()
        args = d.args
        handler = getattr(self, "_d_" + name, None)
        if handler is None:
            raise ValueError("unsupported directive")
        handler(d, args)

    def _need(self, args: tuple[str, ...], n: int) -> None:
        if len(args) != n:
            raise ValueError(f"expects {n} argument(s), got {len(args)}")

    def _d_secrule(self, d: Directive, args: tuple[str, ...]) -> None:
        if len(args) not in (2, 3):
            raise ValueError("expects VARIABLES OPERATOR [ACTIONS]")
        rule = Rule(file=d.file, line=d.line)
        for spec in parse_variables(args[0]):
            selector = Selector.from_spec(spec)
            (rule.exclusions if spec.negated else rule.selectors).append(selector)
        op = parse_operator(args[1])
        rule.operator_name, rule.operator_argument, rule.negated = op.name, op.argument, op.negated
        try:
            rule.operator = get_operator(op.name, op.argument,
                                         OperatorContext(base_dir=Path(d.file).parent
                                                         if d.file and not d.file.startswith("<")
                                                         else Path.cwd()))
        except KeyError:
            raise ValueError(f"unknown operator @{op.name}") from None
        self._add(rule, parse_actions(args[2]) if len(args) == 3 else [])

    def _d_secaction(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        rule = Rule(file=d.file, line=d.line, is_action=True)
        self._add(rule, parse_actions(args[0]))

    def _d_secmarker(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        if self._chain_tail is not None:
            raise ValueError("a marker cannot follow a rule that says `chain`")
        self.rules.append(Rule(file=d.file, line=d.line, marker=args[0].strip("'\""), phase=0))

    def _add(self, rule: Rule, actions: list[ActionSpec]) -> None:
        starter = self._chain_tail is None
        if starter:
            phase = _phase_of(actions)
            rule.phase = phase
            specs = [a for a in self.defaults.get(phase, []) if a.name != "phase"] + actions
        else:
            rule.chained = True
            specs = actions
        builder = RuleBuilder(rule, starter=starter)
        for spec in specs:
            get_action(spec.name).init(builder, spec.value)
        rule.transformations = transformation_chain(rule.transformation_names)
        if starter:
            if not rule.id and rule.marker is None:
                raise ValueError("every rule needs an id")
            if rule.id in self._ids:
                raise ValueError(f"duplicate rule id {rule.id}")
            self._ids[rule.id] = rule
            self.rules.append(rule)
        else:
            assert self._chain_tail is not None
            self._chain_tail.chain = rule
        self._chain_tail = rule if builder.chain else None

    def _d_secdefaultaction(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        actions = parse_actions(args[0])
        phase = _phase_of(actions)
        self.defaults[phase] = actions
        probe = Rule()
        builder = RuleBuilder(probe, starter=True)
        for spec in actions:
            get_action(spec.name).init(builder, spec.value)
        if probe.disruptive is not None:
            self.default_disruptive[phase] = probe.disruptive

    def _rules_for(self, args_text: str) -> list[Rule]:
        found: list[Rule] = []
        for lo, hi in parse_id_ranges(args_text):
            found.extend(r for i, r in self._ids.items() if lo <= i <= hi)
        return found

    def _d_secruleremovebyid(self, d: Directive, args: tuple[str, ...]) -> None:
        doomed: set[int] = set()
        for arg in args:
            doomed.update(id(r) for r in self._rules_for(arg))
        self._remove(lambda r: id(r) in doomed)

    def _d_secruleremovebytag(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        pattern = re.compile(args[0])
        self._remove(lambda r: any(pattern.search(t) for t in r.tags))

    def _d_secruleremovebymsg(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        pattern = re.compile(args[0])
        self._remove(lambda r: r.msg is not None and bool(pattern.search(r.msg.constant)))

    def _remove(self, doomed: Any) -> None:
        keep = []
        for r in self.rules:
            if r.marker is None and doomed(r):
                self._ids.pop(r.id, None)
            else:
                keep.append(r)
        self.rules = keep

    def _d_secruleupdatetargetbyid(self, d: Directive, args: tuple[str, ...]) -> None:
        if len(args) not in (2, 3):
            raise ValueError("expects ID TARGETS [REPLACED]")
        self._update_targets(self._rules_for(args[0]), args[1])

    def _d_secruleupdatetargetbytag(self, d: Directive, args: tuple[str, ...]) -> None:
        if len(args) not in (2, 3):
            raise ValueError("expects TAG TARGETS [REPLACED]")
        pattern = re.compile(args[0])
        self._update_targets([r for r in self.rules if r.marker is None
                              and any(pattern.search(t) for t in r.tags)], args[1])

    def _update_targets(self, rules: list[Rule], targets: str) -> None:
        specs = parse_variables(targets)
        for rule in rules:
            for spec in specs:
                selector = Selector.from_spec(spec)
                (rule.exclusions if spec.negated else rule.selectors).append(selector)

    def _d_secruleupdateactionbyid(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 2)
        actions = parse_actions(args[1])
        for rule in self._rules_for(args[0].split(":")[0]):
            builder = RuleBuilder(rule, starter=True, update=True)
            for spec in actions:
                get_action(spec.name).init(builder, spec.value)
            rule.transformations = transformation_chain(rule.transformation_names)

    def _d_secruleengine(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        value = {"on": "On", "off": "Off", "detectiononly": "DetectionOnly"}.get(args[0].lower())
        if value is None:
            raise ValueError(f"takes On, Off or DetectionOnly, not {args[0]!r}")
        self.settings.rule_engine = value

    def _d_secrequestbodyaccess(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        self.settings.request_body_access = _bool_directive(args[0], d.name)

    def _d_secresponsebodyaccess(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        self.settings.response_body_access = _bool_directive(args[0], d.name)

    def _d_secresponsebodymimetype(self, d: Directive, args: tuple[str, ...]) -> None:
        self.settings.response_body_mime_types = tuple(
            t.lower() for a in args for t in a.split())

    def _d_secresponsebodymimetypesclear(self, d: Directive, args: tuple[str, ...]) -> None:
        self.settings.response_body_mime_types = ()

    def _int_setting(self, args: tuple[str, ...], attr: str) -> None:
        self._need(args, 1)
        if not args[0].strip().isdigit():
            raise ValueError(f"expects a number of bytes, not {args[0]!r}")
        setattr(self.settings, attr, int(args[0]))

    def _d_secrequestbodylimit(self, d: Directive, args: tuple[str, ...]) -> None:
        self._int_setting(args, "request_body_limit")

    def _d_secrequestbodynofileslimit(self, d: Directive, args: tuple[str, ...]) -> None:
        self._int_setting(args, "request_body_no_files_limit")

    def _d_secresponsebodylimit(self, d: Directive, args: tuple[str, ...]) -> None:
        self._int_setting(args, "response_body_limit")

    def _d_secargumentslimit(self, d: Directive, args: tuple[str, ...]) -> None:
        self._int_setting(args, "arguments_limit")

    def _limit_action(self, args: tuple[str, ...], attr: str) -> None:
        self._need(args, 1)
        value = {"reject": "Reject", "processpartial": "ProcessPartial"}.get(args[0].lower())
        if value is None:
            raise ValueError(f"takes Reject or ProcessPartial, not {args[0]!r}")
        setattr(self.settings, attr, value)

    def _d_secrequestbodylimitaction(self, d: Directive, args: tuple[str, ...]) -> None:
        self._limit_action(args, "request_body_limit_action")

    def _d_secresponsebodylimitaction(self, d: Directive, args: tuple[str, ...]) -> None:
        self._limit_action(args, "response_body_limit_action")

    def _d_seccomponentsignature(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        self.settings.component_signatures.append(args[0])

    def _d_secauditengine(self, d: Directive, args: tuple[str, ...]) -> None:
        self._need(args, 1)
        self.settings.audit_engine = args[0]

    # Accepted for compatibility with host configs; they configure things this
    # engine does differently (its own audit log, no debug log, no temp files).
    def _ignored(self, d: Directive, args: tuple[str, ...]) -> None:
        return None

    _d_secauditlog = _d_secauditlogparts = _d_secauditlogtype = _ignored
    _d_secauditlogrelevantstatus = _d_secauditlogformat = _d_secauditlogstoragedir = _ignored
    _d_secdebuglog = _d_secdebugloglevel = _d_sectmpdir = _d_secdatadir = _ignored
    _d_secuploaddir = _d_secuploadkeepfiles = _d_secuploadfilemode = _ignored
    _d_secpcrematchlimit = _d_secpcrematchlimitrecursion = _d_seccollectiontimeout = _ignored
    _d_secstatusengine = _d_secunicodemapfile = _d_secargumentseparator = _ignored
    _d_seccookieformat = _d_sectmpsaveuploadedfiles = _d_secrequestbodyinmemorylimit = _ignored
    _d_secrequestbodyjsondepthlimit = _d_secuploadfilelimit = _ignored


# Collections whose values cannot change while one phase's rules run (rules
# change TX, MATCHED_* and the like; nothing changes these until the next
# phase brings more of the request or the response).
STABLE_COLLECTIONS = frozenset({
    "ARGS", "ARGS_GET", "ARGS_POST", "ARGS_NAMES", "ARGS_GET_NAMES", "ARGS_POST_NAMES",
    "REQUEST_HEADERS", "REQUEST_HEADERS_NAMES", "REQUEST_COOKIES", "REQUEST_COOKIES_NAMES",
    "FILES", "FILES_NAMES", "FILES_SIZES", "MULTIPART_PART_HEADERS", "MULTIPART_FILENAME",
    "MULTIPART_NAME", "RESPONSE_HEADERS", "RESPONSE_HEADERS_NAMES", "REQUEST_FILENAME",
    "REQUEST_BASENAME", "REQUEST_URI", "REQUEST_URI_RAW", "QUERY_STRING", "REQUEST_LINE",
    "REQUEST_METHOD", "REQUEST_PROTOCOL", "REQUEST_BODY", "XML", "REMOTE_ADDR",
    "RESPONSE_BODY", "RESPONSE_STATUS", "RESPONSE_PROTOCOL", "RESPONSE_CONTENT_TYPE",
    "PATH_INFO",
})

# The prefilter sets besides set 1 (see build_prefilters): multiMatch links'
# patterns, and those of rules tagged paranoia level 2 or more.
MULTI_MATCH_SET = 2
HIGH_PARANOIA_SET = 3


def _paranoia_level(rule: Rule) -> int:
    """The level in a ``paranoia-level/N`` tag (CRS's convention), else 1."""
    for tag in rule.tags:
        if tag.startswith("paranoia-level/") and tag[15:].isdigit():
            return int(tag[15:])
    return 1


@dataclass(frozen=True, slots=True)
class SelectorPlan:
    """What one prefilter set needs from one selector stable links read.

    A phase first matches every value these plans name, through each chain
    (``links``: one link per decide key), into one union per set: a rule
    whose pattern is not in it cannot match anywhere, and is skipped before
    its own selectors' union is worked out.
    """

    plan_id: int  # key of the shared per-value results (ValueCache.plans)
    selector_id: int
    selector: Selector
    links: tuple[Rule, ...]


# RE2's memory budget for one prefilter set (its DFA grows with the set).
_SET_MAX_MEM = 256 << 20


def _links(rule: Rule) -> list[Rule]:
    out = []
    link: Rule | None = rule
    while link is not None:
        out.append(link)
        link = link.chain
    return out


def _escape_literal(phrase: bytes) -> bytes:
    """``phrase`` as an RE2 pattern matching exactly those bytes."""
    return b"".join(bytes([c]) if chr(c).isalnum() and c < 0x80 else b"\\x%02x" % c
                    for c in phrase)


def build_prefilters(rules: list[Rule]) -> tuple[dict[int, Any],
                                                 dict[tuple[int, int], tuple[SelectorPlan, ...]]]:
    """The re2.Sets over the rule set's @rx patterns and @pm lists, and each set's plans.

    Set 1 holds level-1 (and untagged) rules' patterns, HIGH_PARANOIA_SET
    those of rules tagged paranoia level 2 and up, MULTI_MATCH_SET those of
    multiMatch links. Per request, each distinct transformed value is matched
    once per set, and a rule learns whether its pattern matched from set
    lookups: first against the union of everything its set's rules read this
    phase (the plans), then against its own selectors' union; only a rule
    whose pattern is in both is evaluated. Also marks TX guards.
    """
    import re2

    from waf.operators._arguments import text_to_bytes
    from waf.operators.numeric_compare import NumericCompare
    from waf.operators.pm import PhraseMatch
    from waf.operators.rx import Rx, regex_options

    patterns: dict[int, list[bytes]] = {}
    pair_ids: dict[tuple[Selector, int], int] = {}
    decide_keys: dict[tuple[int, int, bool], int] = {}
    # (set id, phase) -> selector id -> (the selector, decide key -> a link with that key)
    plans: dict[tuple[int, int], dict[int, tuple[Selector, dict[int, Rule]]]] = {}
    selector_ids: dict[Selector, int] = {}
    group_ids: dict[tuple[int, ...], int] = {}
    for rule in rules:
        for link in _links(rule):
            if not link.exclusions and link.selectors and all(
                    s.key is not None and s.key_regex is None and not s.count
                    and s.collection != "XML" for s in link.selectors):
                link.simple_targets = tuple((s.collection, s.key, f"{s.collection}:{s.key}")
                                            for s in link.selectors if s.key is not None)
            op = link.operator
            sel = link.selectors[0] if len(link.selectors) == 1 else None
            if (link is rule and not link.transformations
                    and not link.exclusions and sel is not None and sel.collection == "TX"
                    and sel.key is not None and sel.key_regex is None
                    and isinstance(op, NumericCompare)):
                link.tx_guard = TxGuard(sel.key.lower(), sel.count, op,
                                        f"{'&' if sel.count else ''}TX:{sel.key}")
            if link.is_action:
                continue
            if isinstance(op, Rx):
                pattern = text_to_bytes(op.pattern)
            elif isinstance(op, PhraseMatch) and op.phrases:
                # A phrase list as a case-insensitive alternation of literals.
                # RE2 folds more than ASCII case, so the set may say yes where
                # the phrase matcher says no: the link confirms (rx_confirm).
                pattern = b"(?i)(?:" + b"|".join(_escape_literal(p) for p in op.phrases) + b")"
                link.rx_confirm = True
            else:
                continue
            # Few sets, each shared by many rules: a value that several
            # transformation chains leave unchanged (most benign values) is
            # matched once per set. Rules CRS tags for paranoia level 2 and up
            # get a set of their own: at level 1 (the default) nothing reaches
            # them, and the level-1 set alone costs a third of the whole on a
            # new value (its lazy DFA has fewer patterns to build states for).
            # multiMatch links test every intermediate form, and decoders
            # (base64Decode above all) turn benign text into binary noise on
            # which the big set builds states byte by byte (~300 µs a value,
            # measured); a set of just the multiMatch patterns takes such a
            # form in about a microsecond.
            if link.multi_match:
                set_id = MULTI_MATCH_SET
            else:
                set_id = HIGH_PARANOIA_SET if _paranoia_level(rule) >= 2 else 1
            bucket = patterns.setdefault(set_id, [])
            link.rx_set = set_id
            link.rx_index = len(bucket)
            bucket.append(pattern)
            link.stable = all(
                s.collection in STABLE_COLLECTIONS and not s.count
                for s in (*link.selectors, *link.exclusions))
            if link.stable:
                chain_id = link.transformations[-1][0] if link.transformations else 0
                # What a value decides to depends on the chain, the set, and
                # whether every form counts (multiMatch).
                link.decide_key = decide_keys.setdefault((chain_id, set_id, link.multi_match),
                                                         len(decide_keys) + 1)
                link.entry_keys = tuple(
                    pair_ids.setdefault((sel, link.decide_key), len(pair_ids) + 1)
                    for sel in link.selectors)
                link.selector_ids = tuple(selector_ids.setdefault(sel, len(selector_ids) + 1)
                                          for sel in link.selectors)
                link.group_id = group_ids.setdefault(link.entry_keys, len(group_ids) + 1)
                for sel, sel_id in zip(link.selectors, link.selector_ids, strict=True):
                    by_sel = plans.setdefault((set_id, rule.phase), {})
                    by_key = by_sel.setdefault(sel_id, (sel, {}))[1]
                    by_key.setdefault(link.decide_key, link)
    sets: dict[int, Any] = {}
    for set_id, bucket in patterns.items():
        options = regex_options()
        options.max_mem = _SET_MAX_MEM
        rx_set = re2.Set.SearchSet(options)
        for pattern in bucket:
            rx_set.Add(pattern)
        rx_set.Compile()
        sets[set_id] = rx_set
    plan_ids = itertools.count(1)
    set_plans = {key: tuple(SelectorPlan(next(plan_ids), sel_id, sel, tuple(by_key.values()))
                            for sel_id, (sel, by_key) in by_sel.items())
                 for key, by_sel in plans.items()}
    return sets, set_plans


def _phase_of(actions: list[ActionSpec]) -> int:
    for a in actions:
        if a.name == "phase":
            value = (a.value or "").strip().lower()
            named = {"request": 2, "response": 4, "logging": 5}
            if value in named:
                return named[value]
            if value.isdigit() and 1 <= int(value) <= 5:
                return int(value)
            raise ValueError(f"bad phase {a.value!r}")
    return 2


def compile_rules(directives: list[Directive]) -> RuleSet:
    return Compiler().compile(directives)

