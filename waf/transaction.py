"""One request's pass through a rule set: collections, phases and the rule loop.

The caller feeds the request as it arrives (connection, URI, headers, body,
then the response) and gets an ``Interruption`` back from any step whose
rules decided to block. Phase 5 (logging) always runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from waf.actions.variables import SetVar
from waf.bodyprocessors import BodyResult, parse_json, parse_multipart, parse_urlencoded, parse_xml
from waf.collections import Concat, MapCollection, Names, Single, TxCollection
from waf.rules import MULTI_MATCH_SET, Rule, RuleSet, Selector, parse_id_ranges

_DISRUPTIVE_BLOCKING = frozenset({"deny", "drop", "redirect"})
_CAPTURE_KEYS = tuple(str(i) for i in range(10))  # TX:0 to TX:9
_NONE: frozenset[int] = frozenset()
# A selector's values this phase: (key, name, transformed value, set matches
# or None when the set did not judge it, which of the selected values).
# multiMatch links have one entry per distinct form of each value.
_SelectorEntry = list[tuple[str, str, bytes, "frozenset[int] | None", int]]
# A value's forms after a chain (one, or each distinct one for multiMatch),
# with their set matches or None.
_Decided = tuple[tuple[bytes, "frozenset[int] | None"], ...]
# A group's (or one selector's) union of set matches over its transformed
# values, and the transformed values the set did not judge (too long, tokens).
_Union = tuple[frozenset[int], tuple[bytes, ...]]
# Value lists shared across transactions by their union (ValueCache.unions):
# at most this many values, together no longer than one short value.
_UNION_MAX_VALUES = 16
# Values longer than this skip the prefilter sets: a set must find every
# pattern that matches and cannot stop early, which on long inputs costs far
# more than the rules' own searches (which stop at their first match).
_SET_MAX_VALUE = 4096
# Random tokens (base64 blobs, JWTs, API keys, random session ids) skip the
# big set: on such input its lazy DFA meets a new state at nearly every byte
# and builds it across hundreds of patterns (measured: a 40-byte base62
# token 2-3 ms, a JWT 4.6 ms, a 1 KB base64 blob 25 ms, where the rules' own
# regexes take 0.5-1.3 ms). A token is a run of at least _TOKEN_RUN_MIN word
# characters mixing digits with letters beyond hex (in either case: most
# transformation chains lower-case first); words, hex digests, UUIDs and
# order numbers stay with the set, which is far cheaper for them. Plain
# character-class searches, linear in the value.
_TOKEN_RUN_MIN = 20
# What one transaction may spend in the sets (CPU seconds; a benign request
# spends well under a millisecond), and the probe of long values: their first
# _PROBE bytes must cost under 0.5 µs a byte.
_SET_BUDGET_S = 0.004
_PROBE_OVER, _PROBE = 256, 128
_PROBE_MAX_S = _PROBE * 0.5e-6
_WORD_RUN = re.compile(rb"[A-Za-z0-9_\-]{%d,}" % _TOKEN_RUN_MIN)
_DIGIT, _NON_HEX_LETTER = re.compile(rb"[0-9]"), re.compile(rb"[g-zG-Z]")


def _for_set(set_id: int, value: bytes) -> bool:
    """Whether a prefilter set should judge ``value`` (else the rules' own operators do)."""
    if len(value) > _SET_MAX_VALUE:
        return False
    if set_id == MULTI_MATCH_SET or len(value) < _TOKEN_RUN_MIN:
        return True
    for run in _WORD_RUN.findall(value):
        if _DIGIT.search(run) and _NON_HEX_LETTER.search(run):
            return False
    return True


def _b(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8", "surrogateescape")


def _text(value: bytes) -> str:
    # surrogateescape round-trips any bytes: operators and macros encode back
    # the same way, so a value compares byte for byte with what was sent.
    return value.decode("utf-8", "surrogateescape")


_ATOI = re.compile(r"\s*([+-]?[0-9]+)")


def _int_prefix(value: str) -> int:
    """ModSecurity's atoi: leading sign and digits, anything else is 0."""
    match = _ATOI.match(value)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class Interruption:
    rule_id: int
    action: str  # deny | drop | redirect
    status: int
    url: str | None = None


@dataclass
class MatchedRule:
    id: int
    phase: int
    msg: str
    data: str
    severity: int | None
    tags: tuple[str, ...]
    matched_var_name: str
    matched_var: str
    disruptive: bool  # would have interrupted (in DetectionOnly: was not allowed to)
    log: bool

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "phase": self.phase, "msg": self.msg, "data": self.data,
                "severity": self.severity, "tags": list(self.tags),
                "matched_var_name": self.matched_var_name}


@dataclass
class _TargetRemoval:
    ids: list[tuple[int, int]] = field(default_factory=list)
    tag: str | None = None
    msg: str | None = None
    selector: Selector | None = None

    def applies(self, rule: Rule) -> bool:
        if self.ids:
            return any(lo <= rule.id <= hi for lo, hi in self.ids)
        if self.tag is not None:
            return self.tag in rule.tags
        if self.msg is not None:
            return rule.msg is not None and rule.msg.constant == self.msg
        return False


class Transaction:
    def __init__(self, ruleset: RuleSet, unique_id: str = "") -> None:
        s = ruleset.settings
        self.ruleset = ruleset
        self.engine = s.rule_engine
        self.request_body_access = s.request_body_access
        self.response_body_access = s.response_body_access
        self.request_body_limit = s.request_body_limit
        self.response_body_limit = s.response_body_limit
        self.body_processor: str | None = None
        self.force_request_body_variable = False
        self.audit_engine = s.audit_engine
        self.unique_id = unique_id
        self.started = time.time()

        self.interruption: Interruption | None = None
        self.matched: list[MatchedRule] = []
        self.capturing = False
        self._removed_ranges: list[tuple[int, int]] = []
        self._removed_tags: set[str] = set()
        self._removed_msgs: set[str] = set()
        self._target_removals: list[_TargetRemoval] = []
        self._removals_by_rule: dict[int, list[Selector | None]] = {}
        self._allow_all = False
        self._allow_request = False
        shared = ruleset.values
        shared.trim()
        # Short values' results are shared across transactions (rules.ValueCache);
        # long ones (bodies, big arguments) live with this transaction only.
        self._short = shared.max_value
        self._tcache = shared.transformed
        self._set_cache = shared.matches
        self._tcache_long: dict[tuple[int, bytes], bytes] = {}
        self._decided = shared.decided
        self._set_cache_long: dict[tuple[int, bytes], frozenset[int]] = {}
        self._items_cache: dict[str, list[tuple[str, str, bytes]]] = {}
        self._sel_cache: dict[int, _SelectorEntry] = {}
        # (selector, chain) pair -> its _Union this phase
        self._union_cache: dict[int, _Union] = {}
        self._unions = shared.unions
        # selector id -> its raw values this phase
        self._values_cache: dict[int, tuple[bytes, ...]] = {}
        # group id -> the _Union over its (selector, chain) pairs this phase
        self._group_cache: dict[int, _Union] = {}
        # set id -> (union of its stable links' set matches over all they read
        # this phase, some value the set did not judge)
        self._set_unions: dict[int, tuple[frozenset[int], bool]] = {}
        self._plan_results = shared.plans
        # Time spent in the sets, and whether a verdict depended on it.
        self._set_spent = 0.0
        self._timed_out = False
        self._current_rule: Rule | None = None
        self.xml: Any = None

        self.args_get = MapCollection()
        self.args_post = MapCollection()
        self.request_headers = MapCollection()
        self.request_cookies = MapCollection()
        self.response_headers = MapCollection()
        self.tx = TxCollection()
        self.env = TxCollection()
        self.files = MapCollection()
        self.files_sizes = MapCollection()
        self.files_names = MapCollection()
        self.multipart_part_headers = MapCollection()
        self.matched_vars = MapCollection()
        self.matched_var = Single(b"")
        self.matched_var_name = Single(b"")
        self.extra: dict[str, TxCollection] = {}
        self.singles: dict[str, Single] = {name: Single() for name in (
            "REQUEST_METHOD", "REQUEST_URI", "REQUEST_URI_RAW", "REQUEST_FILENAME",
            "REQUEST_BASENAME", "REQUEST_LINE", "REQUEST_PROTOCOL", "QUERY_STRING",
            "REQUEST_BODY", "REQUEST_BODY_LENGTH", "REMOTE_ADDR", "REMOTE_PORT",
            "SERVER_ADDR", "SERVER_PORT", "SERVER_NAME", "REQBODY_PROCESSOR", "REQBODY_ERROR",
            "REQBODY_ERROR_MSG", "REQBODY_PROCESSOR_ERROR", "RESPONSE_STATUS",
            "RESPONSE_PROTOCOL", "RESPONSE_BODY", "RESPONSE_CONTENT_TYPE",
            "RESPONSE_CONTENT_LENGTH", "STATUS_LINE", "UNIQUE_ID", "HIGHEST_SEVERITY",
            "FULL_REQUEST", "FULL_REQUEST_LENGTH", "URLENCODED_ERROR", "INBOUND_DATA_ERROR",
            "OUTBOUND_DATA_ERROR", "PATH_INFO", "AUTH_TYPE", "REMOTE_USER", "MULTIPART_FILENAME",
            "MULTIPART_NAME",
        )}
        for flag in ("MULTIPART_STRICT_ERROR", "MULTIPART_UNMATCHED_BOUNDARY",
                     "MULTIPART_BOUNDARY_QUOTED", "MULTIPART_BOUNDARY_WHITESPACE",
                     "MULTIPART_DATA_BEFORE", "MULTIPART_DATA_AFTER", "MULTIPART_HEADER_FOLDING",
                     "MULTIPART_LF_LINE", "MULTIPART_CRLF_LF_LINES",
                     "MULTIPART_MISSING_SEMICOLON", "MULTIPART_INVALID_QUOTING",
                     "MULTIPART_INVALID_PART", "MULTIPART_INVALID_HEADER_FOLDING",
                     "MULTIPART_FILE_LIMIT_EXCEEDED"):
            self.singles[flag] = Single(b"0")
        self.singles["UNIQUE_ID"].value = _b(unique_id)
        self.singles["REQBODY_ERROR"].value = b"0"
        # Present and empty until a processor is chosen (CRS's 901340 tests it
        # with a negated operator to force REQUEST_BODY for other types).
        self.singles["REQBODY_PROCESSOR"].value = b""
        self.singles["REQBODY_PROCESSOR_ERROR"].value = b"0"
        self.args = Concat(self.args_get, self.args_post)
        self.collections: dict[str, Any] = {
            "ARGS": self.args, "ARGS_GET": self.args_get, "ARGS_POST": self.args_post,
            "ARGS_NAMES": Names(self.args), "ARGS_GET_NAMES": Names(self.args_get),
            "ARGS_POST_NAMES": Names(self.args_post),
            "REQUEST_HEADERS": self.request_headers,
            "REQUEST_HEADERS_NAMES": Names(self.request_headers),
            "REQUEST_COOKIES": self.request_cookies,
            "REQUEST_COOKIES_NAMES": Names(self.request_cookies),
            "RESPONSE_HEADERS": self.response_headers,
            "RESPONSE_HEADERS_NAMES": Names(self.response_headers),
            "TX": self.tx, "ENV": self.env, "FILES": self.files, "FILES_NAMES": self.files_names,
            "FILES_SIZES": self.files_sizes, "MULTIPART_PART_HEADERS": self.multipart_part_headers,
            "MATCHED_VARS": self.matched_vars, "MATCHED_VARS_NAMES": Names(self.matched_vars),
            "MATCHED_VAR": self.matched_var, "MATCHED_VAR_NAME": self.matched_var_name,
            **self.singles,
        }

    # ------------------------------------------------------------ request

    def process_connection(self, client_ip: str, client_port: int, server_ip: str = "",
                           server_port: int = 0) -> None:
        self.singles["REMOTE_ADDR"].value = _b(client_ip)
        self.singles["REMOTE_PORT"].value = str(client_port).encode()
        self.singles["SERVER_ADDR"].value = _b(server_ip)
        self.singles["SERVER_PORT"].value = str(server_port).encode()

    def process_uri(self, uri: str | bytes, method: str | bytes,
                    protocol: str | bytes) -> None:
        raw = _b(uri)
        path, sep, query = raw.partition(b"?")
        # Absolute-form targets (http://host/path) name the path after the authority.
        if b"://" in path[:10]:
            after = path.split(b"://", 1)[1]
            slash = after.find(b"/")
            path = after[slash:] if slash >= 0 else b"/"
        s = self.singles
        s["REQUEST_METHOD"].value = _b(method)
        s["REQUEST_PROTOCOL"].value = _b(protocol)
        s["REQUEST_URI_RAW"].value = raw
        s["REQUEST_URI"].value = path + sep + query
        # As ModSecurity: the file name is percent-decoded, the URI is not.
        filename = unquote_to_bytes(path) if b"%" in path else path
        s["REQUEST_FILENAME"].value = filename
        s["PATH_INFO"].value = filename
        s["REQUEST_BASENAME"].value = filename.rsplit(b"/", 1)[-1]
        s["QUERY_STRING"].value = query
        s["REQUEST_LINE"].value = _b(method) + b" " + raw + b" " + _b(protocol)
        if query:
            # Every argument, however many: a cap here would let an attack hide
            # behind a thousand harmless ones (the URL's length is the bound).
            for name, value in parse_urlencoded(query, max_args=len(query) + 1).args:
                self.args_get.add(_text(name), value)

    def add_request_header(self, name: str | bytes, value: str | bytes) -> None:
        key = _text(_b(name))
        val = _b(value)
        self.request_headers.add(key, val)
        if key.lower() == "cookie":
            for part in val.split(b";"):
                part = part.lstrip()
                if not part:
                    continue
                cname, _, cvalue = part.partition(b"=")
                self.request_cookies.add(_text(cname), cvalue)

    def process_request_headers(self) -> Interruption | None:
        ctype = (self.request_headers.first("content-type") or b"").lower()
        if ctype.startswith(b"application/x-www-form-urlencoded"):
            self._set_body_processor("URLENCODED")
        elif ctype.startswith(b"multipart/form-data"):
            self._set_body_processor("MULTIPART")
        return self._run_phase(1)

    def _set_body_processor(self, name: str) -> None:
        self.body_processor = name.upper()
        self.singles["REQBODY_PROCESSOR"].value = self.body_processor.encode()

    def process_request_body(self, body: bytes = b"", truncated: bool = False,
                             ) -> Interruption | None:
        """Phase 2. ``truncated``: ``body`` is only the first bytes of the request's body."""
        if self.interruption is not None:
            return self.interruption
        limit = self._body_limit()
        if limit is not None and len(body) > limit:
            # Reject refuses when the engine blocks; otherwise (DetectionOnly,
            # or ProcessPartial) the first `limit` bytes are inspected.
            if (self.ruleset.settings.request_body_limit_action == "Reject"
                    and self.engine == "On"):
                self.interruption = Interruption(0, "deny", 413)
                return self.interruption
            body, truncated = body[:limit], True
        if self.request_body_access and body:
            self._parse_body(body, truncated)
        self.singles["REQUEST_BODY_LENGTH"].value = str(len(body)).encode()
        return self._run_phase(2)

    def _body_limit(self) -> int | None:
        """SecRequestBodyLimit, or SecRequestBodyNoFilesLimit for bodies without files."""
        limits = [self.request_body_limit]
        if self.body_processor != "MULTIPART":
            limits.append(self.ruleset.settings.request_body_no_files_limit)
        set_limits = [n for n in limits if n is not None]
        return min(set_limits) if set_limits else None

    def _parse_body(self, body: bytes, truncated: bool = False) -> None:
        self._items_cache.clear()
        processor = self.body_processor
        result: BodyResult | None = None
        ctype = _text(self.request_headers.first("content-type") or b"")
        if processor == "URLENCODED":
            result = parse_urlencoded(body, max_args=self.ruleset.settings.arguments_limit)
        elif processor == "MULTIPART":
            result = parse_multipart(body, ctype, partial=truncated)
        elif processor == "JSON":
            result = parse_json(body, partial=truncated)
        elif processor == "XML":
            result = parse_xml(body, partial=truncated)
        # ModSecurity 2 semantics, which CRS's tests follow: the raw body is a
        # variable for urlencoded and JSON bodies, or when a rule forces it
        # (CRS does for types no processor understands); not for multipart or XML.
        if processor in ("URLENCODED", "JSON") or self.force_request_body_variable:
            self.singles["REQUEST_BODY"].value = body
        if result is None:
            return
        for name, value in result.args:
            self.args_post.add(_text(name), value)
        for part in result.files:
            pname = _text(part.name)
            self.files.add(pname, part.filename)
            self.files_names.add(pname, part.name)
            self.files_sizes.add(pname, str(part.size).encode())
        for pname_b, header in result.part_headers:
            self.multipart_part_headers.add(_text(pname_b), header)
        for flag, on in result.flags.items():
            if flag in self.singles:
                self.singles[flag].value = str(on).encode()
        if getattr(result, "multipart_filename", None):
            self.singles["MULTIPART_FILENAME"].value = result.multipart_filename[-1]
        if getattr(result, "multipart_name", None):
            self.singles["MULTIPART_NAME"].value = result.multipart_name[-1]
        self.xml = result.xml
        if result.error:
            self.singles["REQBODY_ERROR"].value = b"1"
            self.singles["REQBODY_PROCESSOR_ERROR"].value = b"1"
            self.singles["REQBODY_ERROR_MSG"].value = _b(result.error)

    # ----------------------------------------------------------- response

    def process_response_headers(self, status: int, protocol: str = "HTTP/1.1",
                                 headers: Iterable[tuple[str | bytes, str | bytes]] = (),
                                 ) -> Interruption | None:
        self._items_cache.clear()
        s = self.singles
        s["RESPONSE_STATUS"].value = str(status).encode()
        s["RESPONSE_PROTOCOL"].value = _b(protocol)
        s["STATUS_LINE"].value = _b(protocol) + b" " + str(status).encode()
        for name, value in headers:
            key = _text(_b(name))
            self.response_headers.add(key, _b(value))
            if key.lower() == "content-type":
                s["RESPONSE_CONTENT_TYPE"].value = _b(value)
            elif key.lower() == "content-length":
                s["RESPONSE_CONTENT_LENGTH"].value = _b(value)
        return self._run_phase(3)

    def response_body_wanted(self) -> bool:
        if not self.response_body_access or self.engine == "Off":
            return False
        ctype = _text(self.singles["RESPONSE_CONTENT_TYPE"].value or b"")
        mime = ctype.split(";", 1)[0].strip().lower()
        return mime in self.ruleset.settings.response_body_mime_types

    def process_response_body(self, body: bytes = b"") -> Interruption | None:
        if self.response_body_wanted():
            self.singles["RESPONSE_BODY"].value = body[: self.response_body_limit]
        return self._run_phase(4)

    def process_logging(self) -> None:
        self._run_phase(5)

    # ------------------------------------------------------------- the loop

    def _run_phase(self, phase: int) -> Interruption | None:
        if self.engine == "Off":
            return None
        if phase != 5 and (self.interruption is not None or self._allow_all
                           or (self._allow_request and phase <= 2)):
            return self.interruption
        # Each phase may bring new data (body, response): values are re-read.
        self._items_cache.clear()
        self._sel_cache.clear()
        self._union_cache.clear()
        self._values_cache.clear()
        self._group_cache.clear()
        self._set_unions.clear()
        self._phase = phase
        skip = 0
        groups = self._group_cache
        set_unions = self._set_unions
        tx_data = self.tx.data
        rules = self.ruleset.phase_rules[phase]
        resume_after = self.ruleset.resume_after[phase]
        i, end = 0, len(rules)
        while i < end:
            rule = rules[i]
            i += 1
            if rule.marker is not None:
                continue
            if skip:
                skip -= 1
                continue
            if (self._removed_ranges or self._removed_tags or self._removed_msgs) \
                    and self._is_removed(rule):
                continue
            # Two ways to see a miss before evaluating, with nothing done that
            # a miss would not do: a prefiltered pattern that matched none of
            # the values its selectors hold this phase, and a TX guard whose
            # comparison fails.
            if rule.group_id and not rule.negated:
                # First the union over everything the rule's set reads this
                # phase, then the rule's own selectors' union.
                coarse = set_unions.get(rule.rx_set) or self._set_union(rule.rx_set)
                if rule.rx_index not in coarse[0] and not coarse[1]:
                    continue
                group = groups.get(rule.group_id) or self._group(rule)
                if rule.rx_index not in group[0] and (
                        not group[1] or not self._may_match(rule, group[1])):
                    continue
                matched = self._evaluate(rule)
            elif rule.tx_guard is not None:
                guard = rule.tx_guard
                raw = tx_data.get(guard.key)
                if guard.count:
                    raw = b"0" if raw is None else b"1"
                elif raw is None:
                    continue
                if guard.operator.evaluate(self, raw) == rule.negated:
                    continue
                if rule.chain is not None or (self._target_removals and self._removals(rule)):
                    # The chain decides the rest; or ctl may have taken the target away.
                    matched = self._evaluate(rule)
                else:
                    # What _evaluate does for a one-value, one-link match.
                    self._start_rule(rule)
                    self._record_match(guard.name, raw)
                    self._run_actions(rule)
                    self._act(rule)
                    matched = True
            else:
                matched = self._evaluate(rule)
            if matched:
                if rule.skip_after:
                    i = resume_after[i - 1]
                elif rule.skip:
                    skip = rule.skip
                if self.interruption is not None and phase != 5:
                    break
                if self._allow_phase:
                    self._allow_phase = False
                    break
                if self._allow_all or (self._allow_request and phase <= 2):
                    break
        return self.interruption

    _allow_phase = False
    _phase = 0

    def _is_removed(self, rule: Rule) -> bool:
        rid = rule.id
        for lo, hi in self._removed_ranges:
            if lo <= rid <= hi:
                return True
        if self._removed_tags and self._removed_tags.intersection(rule.tags):
            return True
        return bool(self._removed_msgs and rule.msg is not None
                    and rule.msg.constant in self._removed_msgs)

    def _start_rule(self, rule: Rule) -> None:
        self._current_rule = rule
        if len(self.matched_vars):
            self.matched_vars = MapCollection()
            self.collections["MATCHED_VARS"] = self.matched_vars
            self.collections["MATCHED_VARS_NAMES"] = Names(self.matched_vars)

    def _record_match(self, name: str, value: bytes) -> None:
        self.matched_var.value = value
        self.matched_var_name.value = name.encode("utf-8", "surrogateescape")
        self.matched_vars.add(name, value)

    def _evaluate(self, rule: Rule) -> bool:
        """Evaluate a rule and its chain; act on a full match."""
        self._start_rule(rule)
        if not self._evaluate_link(rule, rule):
            return False
        link = rule.chain
        while link is not None:
            if not self._evaluate_link(link, rule):
                return False
            link = link.chain
        self._act(rule)
        return True

    def _evaluate_link(self, link: Rule, starter: Rule) -> bool:
        if link.is_action:
            self._run_actions(link)
            return True
        operator = link.operator
        assert operator is not None
        self.capturing = link.capture
        negated = link.negated
        if link.rx_set:
            return self._evaluate_prefiltered(link, starter)
        matched = False
        for name, value in self._values(link, starter):
            for candidate in self._transformed(link, value):
                hit = operator.evaluate(self, candidate)
                if hit != negated:
                    matched = True
                    self._record_match(name, candidate)
                    self._run_actions(link)
                    break
        return matched

    def _evaluate_prefiltered(self, link: Rule, starter: Rule) -> bool:
        """An @rx link decided from its chain's re2.Set (see rules.build_prefilters)."""
        set_id, index, negated = link.rx_set, link.rx_index, link.negated
        # (name, transformed value, set matches or None, which selected value)
        values: list[tuple[str, bytes, frozenset[int] | None, int]]
        if link.stable:
            # Each selector's values were matched against the whole set once
            # this phase; a pattern in none of their unions matches nothing.
            group = self._group_cache.get(link.group_id)
            if group is None:
                group = self._group(link)
            if not negated and not group[1] and index not in group[0]:
                return False
            removals = self._removals(starter) if self._target_removals else []
            filtered = bool(link.exclusions or removals)
            values = []
            for si, (key, sel) in enumerate(zip(link.entry_keys, link.selectors, strict=True)):
                for item_key, name, tv, m, vi in self._selector_entry(key, sel, link):
                    # A value the set judged without this pattern cannot match
                    # (for a phrase list the set's verdict is a superset).
                    if m is not None and not negated and index not in m:
                        continue
                    if filtered and self._excluded(link, removals, sel, item_key):
                        continue
                    values.append((name, tv, m, si << 32 | vi))
        else:
            values = [(name, tv, self._judge(set_id, tv), i)
                      for i, (name, value) in enumerate(self._values(link, starter))
                      for tv in self._transformed(link, value)]
        matched = False
        operator: Any = link.operator
        last_hit = -1
        for name, transformed, matches, item in values:
            if link.multi_match and item == last_hit:
                continue  # this value already matched in an earlier form

            if matches is not None and not (link.rx_confirm and index in matches):
                hit = index in matches
                if hit and link.capture:
                    # The set says whether; the regex itself says what it captured.
                    operator.evaluate(self, transformed)
            else:
                # Too long for the set, or a set hit the operator must confirm.
                hit = operator.evaluate(self, transformed)
            if hit == negated:
                continue
            matched = True
            last_hit = item
            self._record_match(name, transformed)
            self._run_actions(link)
        return matched

    def _set_union(self, set_id: int) -> tuple[frozenset[int], bool]:
        """What every stable link of this phase on set ``set_id`` could match (a superset)."""
        union: set[int] = set()
        unjudged = False
        shared, short = self._plan_results, self._short
        for plan in self.ruleset.set_plans.get((set_id, self._phase), ()):
            for value in self._selected_values(plan.selector_id, plan.selector):
                key = (plan.plan_id, value)
                done = shared.get(key) if len(value) <= short else None
                if done is None:
                    matched: set[int] = set()
                    others = False
                    for link in plan.links:
                        for _, matches in self._decide(link, value):
                            if matches is None:
                                others = True
                            elif matches:
                                matched.update(matches)
                    done = (frozenset(matched) if matched else _NONE, others)
                    if len(value) <= short and not self._timed_out:
                        shared[key] = done
                if done[0]:
                    union.update(done[0])
                unjudged = unjudged or done[1]
        found = self._set_unions[set_id] = (frozenset(union) if union else _NONE, unjudged)
        return found

    def _group(self, link: Rule) -> _Union:
        """The union of set matches over a stable link's selectors (cached per phase)."""
        union: frozenset[int] = _NONE
        unjudged: tuple[bytes, ...] = ()
        known = self._union_cache
        for key, sel_id, sel in zip(link.entry_keys, link.selector_ids, link.selectors,
                                    strict=True):
            matches, others = known.get(key) or self._entry_union(key, sel_id, sel, link)
            if matches:
                union = union | matches if union else matches
            if others:
                unjudged += others
        group = self._group_cache[link.group_id] = (union, unjudged)
        return group

    def _may_match(self, link: Rule, unjudged: tuple[bytes, ...]) -> bool:
        """Whether ``link``'s operator matches one of the values its set did not judge.

        Nothing is captured: this only decides whether the rule is evaluated.
        """
        capturing, self.capturing = self.capturing, False
        try:
            operator: Any = link.operator
            return any(operator.evaluate(self, value) for value in unjudged)
        finally:
            self.capturing = capturing

    def _entry_union(self, key: int, sel_id: int, sel: Selector, link: Rule) -> _Union:
        """One (selector, chain) pair's union of set matches, and the values the set did not judge.

        Which values a selector holds repeats from request to request far
        more often than the values' bytes differ (argument, cookie and header
        names; most header values), so short value lists' unions are shared
        across transactions (rules.ValueCache.unions).
        """
        found = self._union_cache.get(key)
        if found is not None:
            return found
        values = self._selected_values(sel_id, sel)
        shared = self._unions
        cacheable = len(values) <= _UNION_MAX_VALUES and sum(map(len, values)) <= self._short
        if cacheable:
            found = shared.get((key, values))
        if found is None:
            union: set[int] = set()
            unjudged: list[bytes] = []
            decided, decide_key, short = self._decided, link.decide_key, self._short
            for value in values:
                done = decided.get((decide_key, value)) if len(value) <= short else None
                for transformed, matches in done or self._decide(link, value):
                    if matches is None:
                        unjudged.append(transformed)
                    elif matches:
                        union.update(matches)
            found = (frozenset(union) if union else _NONE, tuple(unjudged))
            if cacheable and not self._timed_out:
                shared[(key, values)] = found
        self._union_cache[key] = found
        return found

    def _selected_values(self, sel_id: int, sel: Selector) -> tuple[bytes, ...]:
        """The raw values one selector names this phase, before exclusions."""
        values = self._values_cache.get(sel_id)
        if values is None:
            values = self._values_cache[sel_id] = tuple(v for _, _, v in self._selected(sel))
        return values

    def _decide(self, link: Rule, value: bytes) -> _Decided:
        """``value`` after a stable link's chain (every form, for multiMatch), and
        each form's set matches (None: for the link's own operator to judge)."""
        key = (link.decide_key, value)
        short = len(value) <= self._short
        if short:
            done = self._decided.get(key)
            if done is not None:
                return done
        set_id = link.rx_set
        done = tuple((form, self._judge(set_id, form)) for form in self._transformed(link, value))
        if short and not self._timed_out:
            self._decided[key] = done
        return done

    def _selector_entry(self, key: int, sel: Selector, link: Rule) -> _SelectorEntry:
        """A selector's values after ``link``'s transformations, with their set matches.

        Built once per phase for every (selector, transformation chain) pair
        (``key``, from rules.build_prefilters) whose rules may match;
        exclusions are applied afterwards, per rule. Set matches are cached
        by (set, value): a set holds the patterns of many chains.
        """
        entry = self._sel_cache.get(key)
        if entry is not None:
            return entry
        vals: _SelectorEntry = []
        for vi, (item_key, name, value) in enumerate(self._selected(sel)):
            for transformed, matches in self._decide(link, value):
                vals.append((item_key, name, transformed, matches, vi))
        entry = self._sel_cache[key] = vals
        return entry

    def _selected(self, sel: Selector) -> list[tuple[str, str, bytes]]:
        """(key, "COLL:key", value) for what one selector names, before exclusions."""
        coll_name = sel.collection
        if coll_name == "XML":
            return [(sel.key or "", name, v) for name, v in self._xml_values(sel)]
        if sel.count:
            raise AssertionError("count selectors are not prefiltered")
        if sel.key is not None and sel.key_regex is None:
            coll = self._collection(coll_name)
            if coll is None:
                return []
            name = f"{coll_name}:{sel.key}"
            return [(sel.key, name, v) for v in coll.get(sel.key)]
        items = self._named_items(coll_name) or []
        if sel.key is None:
            return items
        return [item for item in items if sel.matches_key(item[0])]

    def _judge(self, set_id: int, value: bytes) -> frozenset[int] | None:
        """Set ``set_id``'s matches on ``value``, or None: the rules' own operators judge it.

        The set's lazy DFA costs ~20 µs a byte on input unlike anything it
        has seen (random tokens, binary, punctuation noise) against well
        under 1 µs on ordinary text, so the set only takes what it is good
        at: not tokens or over-long values (_for_set), not a long value
        whose first bytes already cost too much (a probe), and nothing
        more once this transaction has spent its set budget. Those verdicts
        depend on timing, so the transaction then stops sharing its results.
        """
        key = (set_id, value)
        cache = self._set_cache if len(value) <= self._short else self._set_cache_long
        found = cache.get(key)
        if found is not None:
            return found
        if not _for_set(set_id, value):
            return None
        if self._set_spent >= _SET_BUDGET_S:
            self._timed_out = True
            return None
        rx_set = self.ruleset.prefilters[set_id]
        # CPU time of this thread: time spent waiting for a CPU is not the set's.
        start = time.thread_time()
        if len(value) > _PROBE_OVER:
            rx_set.Match(value[:_PROBE])
            spent = time.thread_time() - start
            if spent > _PROBE_MAX_S:
                self._set_spent += spent
                self._timed_out = True
                return None
        hits = rx_set.Match(value)
        self._set_spent += time.thread_time() - start
        found = cache[key] = frozenset(hits) if hits else _NONE
        return found

    def _run_actions(self, link: Rule) -> None:
        for action, argument in link.actions:
            action.evaluate(self, argument)

    def _transformed(self, rule: Rule, value: bytes) -> list[bytes]:
        chain = rule.transformations
        if not chain:
            return [value]
        cache = self._tcache if len(value) <= self._short else self._tcache_long
        if not rule.multi_match:
            # The whole chain's result is usually cached already.
            done = cache.get((chain[-1][0], value))
            if done is not None:
                return [done]
        current = value
        out = [value] if rule.multi_match else None
        for pid, fn in chain:
            key = (pid, value)
            result = cache.get(key)
            if result is None:
                result = cache[key] = fn(current)
            if out is not None and result != current:
                out.append(result)
            current = result
        return out if out is not None else [current]

    def _values(self, rule: Rule, starter: Rule) -> list[tuple[str, bytes]]:
        simple = rule.simple_targets
        if simple is not None and (not self._target_removals or not self._removals(starter)):
            found: list[tuple[str, bytes]] = []
            for coll_name, key, name in simple:
                coll = self._collection(coll_name)
                if coll is not None:
                    for v in coll.get(key):
                        found.append((name, v))
            return found
        removals = self._removals(starter) if self._target_removals else []
        filtered = bool(rule.exclusions or removals)
        out: list[tuple[str, bytes]] = []
        for sel in rule.selectors:
            coll_name = sel.collection
            if coll_name == "XML":
                out.extend(self._xml_values(sel))
                continue
            if sel.key is not None and sel.key_regex is None and not filtered:
                # One key: the collection's index answers without a scan.
                coll = self._collection(coll_name)
                if coll is None:
                    continue
                values = coll.get(sel.key)
                if sel.count:
                    out.append((f"&{coll_name}:{sel.key}", str(len(values)).encode()))
                else:
                    name = f"{coll_name}:{sel.key}"
                    out.extend((name, v) for v in values)
                continue
            items = self._named_items(coll_name)
            if items is None:
                continue
            if sel.count:
                n = sum(1 for key, _, _ in items if sel.matches_key(key)
                        and not (filtered and self._excluded(rule, removals, sel, key)))
                label = f"&{coll_name}:{sel.key}" if sel.key else f"&{coll_name}"
                out.append((label, str(n).encode()))
                continue
            if sel.key is None and not filtered:
                out.extend((name, value) for _, name, value in items)
                continue
            for key, name, value in items:
                if sel.matches_key(key) and not (
                        filtered and self._excluded(rule, removals, sel, key)):
                    out.append((name, value))
        return out

    # Collections that do not change once the request (or response) is read:
    # their (key, "COLL:key", value) lists are built once per stage.
    _STABLE = frozenset({
        "ARGS", "ARGS_GET", "ARGS_POST", "ARGS_NAMES", "ARGS_GET_NAMES", "ARGS_POST_NAMES",
        "REQUEST_HEADERS", "REQUEST_HEADERS_NAMES", "REQUEST_COOKIES", "REQUEST_COOKIES_NAMES",
        "FILES", "FILES_NAMES", "FILES_SIZES", "MULTIPART_PART_HEADERS", "RESPONSE_HEADERS",
        "RESPONSE_HEADERS_NAMES",
    })

    def _named_items(self, coll_name: str) -> list[tuple[str, str, bytes]] | None:
        cached = self._items_cache.get(coll_name)
        if cached is not None:
            return cached
        coll = self._collection(coll_name)
        if coll is None:
            return None
        items = [(key, f"{coll_name}:{key}" if key else coll_name, value)
                 for key, value in coll.items()]
        if coll_name in self._STABLE:
            self._items_cache[coll_name] = items
        return items

    @staticmethod
    def _excluded(rule: Rule, removals: Sequence[Selector | None], sel: Selector,
                  key: str) -> bool:
        for ex in rule.exclusions:
            if ex.collection == sel.collection and ex.matches_key(key):
                return True
        return any(r is not None and r.collection == sel.collection and r.matches_key(key)
                   for r in removals)

    def _xml_values(self, sel: Selector) -> list[tuple[str, bytes]]:
        if self.xml is None or not sel.key:
            return []
        try:
            values = self.xml.xpath(sel.key)
        except NotImplementedError:
            return []
        return [(f"XML:{sel.key}", v) for v in values]

    def _collection(self, name: str) -> Any:
        coll = self.collections.get(name)
        if coll is not None:
            return coll
        if name == "ARGS_COMBINED_SIZE":
            size = sum(len(k) + len(v) for k, v in self.args.items())
            return Single(str(size).encode())
        if name == "FILES_COMBINED_SIZE":
            size = sum(_int_prefix(_text(v)) for _, v in self.files_sizes.items())
            return Single(str(size).encode())
        if name == "DURATION":
            return Single(str(int((time.time() - self.started) * 1_000_000)).encode())
        if name.startswith("TIME"):
            return Single(self._time(name))
        if name == "RULE":
            return self._rule_collection()
        return self.extra.get(name)

    def _time(self, name: str) -> bytes:
        t = time.localtime()
        values = {"TIME": time.strftime("%H:%M:%S", t), "TIME_DAY": str(t.tm_mday),
                  "TIME_EPOCH": str(int(time.time())), "TIME_HOUR": str(t.tm_hour),
                  "TIME_MIN": str(t.tm_min), "TIME_MON": str(t.tm_mon),
                  "TIME_SEC": str(t.tm_sec), "TIME_WDAY": str((t.tm_wday + 1) % 7),
                  "TIME_YEAR": str(t.tm_year)}
        return values.get(name, "").encode()

    def _rule_collection(self) -> MapCollection:
        rule = self._current_rule
        coll = MapCollection()
        if rule is not None:
            coll.add("id", str(rule.id).encode())
            coll.add("phase", str(rule.phase).encode())
            if rule.msg is not None:
                coll.add("msg", _b(rule.msg.expand(self)))
            if rule.severity is not None:
                coll.add("severity", str(rule.severity).encode())
        return coll

    # --------------------------------------------------------- on a match

    def _act(self, rule: Rule) -> None:
        disruptive = rule.disruptive
        if disruptive == "block" or disruptive is None:
            disruptive = self.ruleset.default_disruptive.get(rule.phase, "pass")
        would_block = disruptive in _DISRUPTIVE_BLOCKING
        if rule.log or rule.auditlog:
            self.matched.append(MatchedRule(
                id=rule.id, phase=rule.phase,
                msg=rule.msg.expand(self) if rule.msg is not None else "",
                data=rule.logdata.expand(self) if rule.logdata is not None else "",
                severity=rule.severity, tags=rule.tags,
                matched_var_name=_text(self.matched_var_name.value or b""),
                matched_var=_text((self.matched_var.value or b"")[:200]),
                disruptive=would_block, log=rule.log,
            ))
        if rule.severity is not None:
            current = self.singles["HIGHEST_SEVERITY"].value
            if current is None or rule.severity < int(current):
                self.singles["HIGHEST_SEVERITY"].value = str(rule.severity).encode()
        if self.engine != "On":
            return
        if would_block:
            status = rule.status or 403
            url = rule.redirect_url.expand(self) if rule.redirect_url is not None else None
            if disruptive == "redirect" and rule.status is None:
                status = 302
            self.interruption = Interruption(rule.id, disruptive, status, url)
        elif disruptive == "allow":
            if rule.allow_scope == "phase":
                self._allow_phase = True
            elif rule.allow_scope == "request":
                self._allow_request = True
            else:
                self._allow_all = True

    # -------------------------------------------- what actions and macros use

    def set_captures(self, groups: Sequence[bytes]) -> None:
        data = self.tx.data
        for i, key in enumerate(_CAPTURE_KEYS):
            if i < len(groups):
                data[key] = groups[i]
            else:
                data.pop(key, None)

    def macro_value(self, collection: str, key: str | None) -> str:
        if collection == "TX":
            value = self.tx.data.get(key or "")  # macro keys are lower-cased when compiled
            return _text(value) if value is not None else ""
        if collection == "MATCHED_VAR":
            return _text(self.matched_var.value or b"")
        if collection == "MATCHED_VAR_NAME":
            return _text(self.matched_var_name.value or b"")
        coll = self._collection(collection)
        if coll is None:
            return ""
        values = coll.get(key) if key else [v for _, v in coll.items()]
        return _text(values[0]) if values else ""

    def setvar(self, op: SetVar) -> None:
        coll = self.tx if op.collection == "TX" else self.extra.setdefault(op.collection,
                                                                            TxCollection())
        key = op.key.expand(self).lower()
        if op.op == "delete":
            coll.remove(key)
            return
        value = op.value.expand(self)
        if op.op == "=":
            coll.set(key, _b(value))
            return
        current = coll.first(key)
        base = _int_prefix(_text(current)) if current is not None else 0
        delta = _int_prefix(value)
        coll.set(key, str(base + delta if op.op == "+" else base - delta).encode())

    def init_collection(self, name: str) -> None:
        self.extra.setdefault(name, TxCollection())

    def ctl(self, option: str, argument: str) -> None:
        arg = argument.strip()
        if option == "ruleengine":
            value = {"on": "On", "off": "Off", "detectiononly": "DetectionOnly"}.get(arg.lower())
            if value:
                self.engine = value
        elif option == "requestbodyaccess":
            self.request_body_access = arg.lower() in ("on", "true")
        elif option == "responsebodyaccess":
            self.response_body_access = arg.lower() in ("on", "true")
        elif option == "requestbodyprocessor":
            self._set_body_processor(arg)
        elif option == "forcerequestbodyvariable":
            self.force_request_body_variable = arg.lower() in ("on", "true")
        elif option == "requestbodylimit" and arg.isdigit():
            self.request_body_limit = int(arg)
        elif option == "responsebodylimit" and arg.isdigit():
            self.response_body_limit = int(arg)
        elif option == "ruleremovebyid":
            self._removed_ranges.extend(parse_id_ranges(arg))
        elif option == "ruleremovebytag":
            self._removed_tags.add(arg)
        elif option == "ruleremovebymsg":
            self._removed_msgs.add(arg)
        elif option.startswith("ruleremovetargetby"):
            self._remove_target(option, arg)
        elif option == "auditengine":
            self.audit_engine = arg

    def _remove_target(self, option: str, arg: str) -> None:
        from waf.seclang import parse_variables

        which, _, targets = arg.partition(";")
        for spec in parse_variables(targets):
            removal = _TargetRemoval(selector=Selector.from_spec(spec))
            if option == "ruleremovetargetbyid":
                removal.ids = parse_id_ranges(which)
            elif option == "ruleremovetargetbytag":
                removal.tag = which
            else:
                removal.msg = which
            self._target_removals.append(removal)
        self._removals_by_rule.clear()

    def _removals(self, starter: Rule) -> list[Selector | None]:
        """The targets ctl removed from ``starter`` (a rule and its chain) so far."""
        found = self._removals_by_rule.get(id(starter))
        if found is None:
            found = self._removals_by_rule[id(starter)] = [
                r.selector for r in self._target_removals if r.applies(starter)]
        return found

    # -------------------------------------------------------------- results

    @property
    def logged_rules(self) -> list[MatchedRule]:
        return [m for m in self.matched if m.log]

    def anomaly_scores(self) -> dict[str, int]:
        return {k: _int_prefix(_text(v)) for k, v in self.tx.items()
                if "anomaly_score" in k and ("inbound" in k or "outbound" in k)
                and not k.endswith("threshold")}
