"""Regression suites in the go-ftw YAML format: loading, request building, running.

    files = load_test_files(["tests/regression/tests"])
    tests = [t for f in files for t in f.tests]
    async with LiveTarget("127.0.0.1", 8080, "/var/log/bastion/audit.log") as target:
        run = await run_tests(tests, target, overrides=load_overrides("overrides.yaml"))
    print(run.summary_line())          # "5080 passed, 2 failed"

The YAML schema is go-ftw's (coreruleset/ftw-tests-schema 2.x) with the names CRS
uses (``test_id``, ``desc``) and the newer aliases (``id``, ``description``).
Requests are built byte for byte as go-ftw builds them (:func:`build_request`), so
broken HTTP stays broken. A :class:`Target` turns a stage into a
:class:`StageResult` (status, raw response, transport error, the WAF log lines the
stage produced); :func:`check_stage` compares that with the stage's expectations.
:class:`LiveTarget` drives a running gateway over TCP and finds the stage's log
lines with go-ftw's marker protocol: an ``X-CRS-Test`` request before and after
the stage, which the WAF's marker rule writes to its log. :class:`StatusTarget` drives
a running gateway without a log, for judging by status alone.

Nothing here knows about Bastion's WAF engine.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import binascii
import contextlib
import functools
import json
import os
import re
import ssl as ssl_module
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol, Self
from urllib.parse import quote_plus

import yaml

try:
    from yaml import CSafeLoader as _YamlBase
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _YamlBase  # type: ignore[assignment]

__all__ = [
    "CaseReport",
    "ConsoleReporter",
    "FtwError",
    "FtwFile",
    "FtwFormatError",
    "FtwMeta",
    "FtwTest",
    "HeaderTuple",
    "LiveTarget",
    "LogExpectation",
    "OverrideEntry",
    "Overrides",
    "ReflectedResponse",
    "RunReport",
    "Stage",
    "StageInput",
    "StageOutput",
    "StageReport",
    "StageResult",
    "StatusTarget",
    "Target",
    "TargetError",
    "build_request",
    "check_stage",
    "extract_rule_ids",
    "is_selected",
    "load_overrides",
    "load_test_files",
    "run_tests",
    "send_request",
]

DEFAULT_DEST_ADDR = "localhost"
DEFAULT_PORT = 80
DEFAULT_PROTOCOL = "http"
DEFAULT_METHOD = "GET"
DEFAULT_URI = "/"
DEFAULT_VERSION = "HTTP/1.1"
MARKER_HEADER = "X-CRS-Test"

_FORM_URLENCODED = "application/x-www-form-urlencoded"


class FtwError(Exception):
    """Base class for errors in this module."""


class FtwFormatError(FtwError):
    """A test or overrides file that cannot be used; the message names the file."""


class TargetError(FtwError):
    """The target cannot run stages at all (unreachable, markers never logged): abort the run."""


# ---------------------------------------------------------------------------
# The format
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderTuple:
    name: str
    value: str


@dataclass(frozen=True)
class ReflectedResponse:
    """``input.response``: what an albedo backend should answer (only through ``/reflect``)."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    encoded_body: str = ""
    log_message: str = ""


@dataclass(frozen=True)
class StageInput:
    """``stage.input``. ``None`` means "not given": go-ftw's default applies."""

    dest_addr: str | None = None
    port: int | None = None
    protocol: str | None = None
    method: str | None = None
    uri: str | None = None
    version: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ordered_headers: tuple[HeaderTuple, ...] = ()
    data: str | None = None
    encoded_data: str | None = None
    autocomplete_headers: bool = True
    encoded_request: str | None = None
    save_cookie: bool = False
    follow_redirect: bool = False
    virtual_host_mode: bool = False
    response: ReflectedResponse | None = None

    def header_fields(self) -> list[HeaderTuple]:
        """The headers in wire order: ``ordered_headers`` as given, then ``headers`` sorted
        by name (go-ftw sorts the map form so that requests are reproducible)."""
        fields = list(self.ordered_headers)
        fields.extend(HeaderTuple(k, self.headers[k]) for k in sorted(self.headers))
        return fields


@dataclass(frozen=True)
class LogExpectation:
    """``stage.output.log``."""

    expect_ids: tuple[int, ...] = ()
    no_expect_ids: tuple[int, ...] = ()
    match_regex: str | None = None
    no_match_regex: str | None = None

    @property
    def required(self) -> bool:
        return bool(self.expect_ids or self.no_expect_ids or self.match_regex
                    or self.no_match_regex)


@dataclass(frozen=True)
class StageOutput:
    """``stage.output``. An empty ``status`` is not checked; go-ftw takes one code, the
    legacy Python ftw a list, so both are accepted (any listed code passes)."""

    status: tuple[int, ...] = ()
    response_contains: str | None = None
    log: LogExpectation = LogExpectation()
    expect_error: bool = False
    retry_once: bool = False
    isolated: bool = False


@dataclass(frozen=True)
class Stage:
    rule_id: int
    test_id: int
    index: int  # 0-based, as overrides' stage_ids count
    input: StageInput
    output: StageOutput
    description: str = ""

    @property
    def test_key(self) -> str:
        return f"{self.rule_id}-{self.test_id}"


@dataclass(frozen=True)
class FtwTest:
    rule_id: int
    test_id: int
    stages: tuple[Stage, ...]
    desc: str = ""
    tags: tuple[str, ...] = ()
    file: Path | None = None

    @property
    def id(self) -> str:
        """``<rule_id>-<test_id>``, the name include/exclude regexes match against."""
        return f"{self.rule_id}-{self.test_id}"

    @property
    def description(self) -> str:
        return self.desc


@dataclass(frozen=True)
class FtwMeta:
    author: str = ""
    name: str = ""
    description: str = ""
    version: str = ""
    enabled: bool | None = None  # deprecated in the schema; kept, never acted on
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FtwFile:
    path: Path
    rule_id: int
    meta: FtwMeta
    tests: tuple[FtwTest, ...]


# --- YAML --------------------------------------------------------------------


class _Loader(_YamlBase):
    """Plain scalars stay strings, as go-ftw's ``map[string]string`` and ``*string``
    fields see them (``Content-Length: 010`` is "010", not 8); only null is resolved.
    Duplicate keys are an error, as in yaml.v3."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise FtwFormatError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise FtwFormatError(f"{path}{where}: malformed YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise FtwFormatError(f"{path}: malformed YAML: {exc}") from exc


class _Fields:
    """Typed access to one YAML mapping, with errors that say where."""

    def __init__(self, raw: Any, where: str, known: Iterable[str]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise FtwFormatError(f"{where}: expected a mapping, got {_yaml_kind(raw)}")
        allowed = set(known)
        unknown = sorted(str(k) for k in raw if k not in allowed)
        if unknown:
            raise FtwFormatError(f"{where}: unknown field(s): {', '.join(unknown)}")
        self.raw: dict[Any, Any] = raw
        self.where = where

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or isinstance(value, str):
            return value
        raise FtwFormatError(f"{self.where}: {key}: expected a string, got {_yaml_kind(value)}")

    def integer(self, key: str) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        return _to_int(value, f"{self.where}: {key}")

    def flag(self, key: str) -> bool | None:
        value = self.raw.get(key)
        if value is None:
            return None
        return _to_bool(value, f"{self.where}: {key}")

    def integers(self, key: str) -> tuple[int, ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            value = [value]
        return tuple(_to_int(v, f"{self.where}: {key}") for v in value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FtwFormatError(f"{self.where}: {key}: expected a list of strings")
        return tuple(value)

    def text_map(self, key: str) -> dict[str, str]:
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise FtwFormatError(f"{self.where}: {key}: expected a mapping, "
                                 f"got {_yaml_kind(value)}")
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise FtwFormatError(f"{self.where}: {key}: names must be strings")
            if v is not None and not isinstance(v, str):
                raise FtwFormatError(f"{self.where}: {key}: {k}: expected a string, "
                                     f"got {_yaml_kind(v)}")
            out[k] = v or ""
        return out


def _yaml_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__


def _to_int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value.replace("_", ""), 10)
    raise FtwFormatError(f"{where}: expected an integer, got {value!r}")


_TRUE = {"true", "yes", "on", "y"}
_FALSE = {"false", "no", "off", "n"}


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise FtwFormatError(f"{where}: expected true or false, got {value!r}")


def _check_regex(pattern: str | None, where: str) -> None:
    if pattern is None:
        return
    try:
        _compiled(pattern)
    except re.error as exc:
        raise FtwFormatError(f"{where}: invalid regex {pattern!r}: {exc}") from exc


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_INPUT_FIELDS = (
    "dest_addr", "port", "protocol", "uri", "uris", "version", "method", "headers",
    "ordered_headers", "data", "encoded_data", "save_cookie", "stop_magic",
    "autocomplete_headers", "encoded_request", "raw_request", "response", "follow_redirect",
    "virtual_host_mode",
)
_OUTPUT_FIELDS = (
    "status", "response_contains", "log_contains", "no_log_contains", "log", "expect_error",
    "retry_once", "isolated",
)
_LOG_FIELDS = ("expect_ids", "no_expect_ids", "match_regex", "no_match_regex")


def _parse_input(raw: Any, where: str) -> StageInput:
    f = _Fields(raw, f"{where}: input", _INPUT_FIELDS)
    for unsupported in ("uris", "raw_request"):
        if f.has(unsupported):
            raise FtwFormatError(f"{f.where}: {unsupported} is not supported")
    autocomplete = f.flag("autocomplete_headers")
    if autocomplete is None:
        stop_magic = f.flag("stop_magic")  # the deprecated inverse spelling
        autocomplete = True if stop_magic is None else not stop_magic
    ordered: list[HeaderTuple] = []
    raw_ordered = f.raw.get("ordered_headers")
    if raw_ordered is not None:
        if not isinstance(raw_ordered, list):
            raise FtwFormatError(f"{f.where}: ordered_headers: expected a list")
        for i, item in enumerate(raw_ordered):
            hf = _Fields(item, f"{f.where}: ordered_headers[{i}]", ("name", "value"))
            name, value = hf.text("name"), hf.text("value")
            if name is None:
                raise FtwFormatError(f"{hf.where}: name is required")
            ordered.append(HeaderTuple(name, value or ""))
    response = None
    if f.has("response"):
        rf = _Fields(f.raw["response"], f"{f.where}: response",
                     ("status", "headers", "body", "encoded_body", "log_message"))
        response = ReflectedResponse(
            status=rf.integer("status") or 0, headers=rf.text_map("headers"),
            body=rf.text("body") or "", encoded_body=rf.text("encoded_body") or "",
            log_message=rf.text("log_message") or "")
    inp = StageInput(
        dest_addr=f.text("dest_addr"), port=f.integer("port"), protocol=f.text("protocol"),
        method=f.text("method"), uri=f.text("uri"), version=f.text("version"),
        headers=f.text_map("headers"), ordered_headers=tuple(ordered), data=f.text("data"),
        encoded_data=f.text("encoded_data"), autocomplete_headers=autocomplete,
        encoded_request=f.text("encoded_request") or None,
        save_cookie=bool(f.flag("save_cookie")), follow_redirect=bool(f.flag("follow_redirect")),
        virtual_host_mode=bool(f.flag("virtual_host_mode")), response=response,
    )
    if inp.encoded_request is not None and inp.data:
        raise FtwFormatError(f"{f.where}: 'data' and 'encoded_request' must not both be set")
    try:
        build_request(inp)  # templates and base64 fail here, where the file can be named
    except FtwError as exc:
        raise FtwFormatError(f"{f.where}: {exc}") from exc
    return inp


def _parse_output(raw: Any, where: str) -> StageOutput:
    f = _Fields(raw, f"{where}: output", _OUTPUT_FIELDS)
    lf = _Fields(f.raw.get("log"), f"{f.where}: log", _LOG_FIELDS)
    match_regex, no_match_regex = lf.text("match_regex"), lf.text("no_match_regex")
    expect_ids, no_expect_ids = lf.integers("expect_ids"), lf.integers("no_expect_ids")
    # v1 spellings stand in for the log block's regexes when those are unset.
    log_contains, no_log_contains = f.text("log_contains"), f.text("no_log_contains")
    if log_contains and not expect_ids and not match_regex:
        match_regex = log_contains
    if no_log_contains and not no_expect_ids and not no_match_regex:
        no_match_regex = no_log_contains
    _check_regex(match_regex, f"{lf.where}: match_regex")
    _check_regex(no_match_regex, f"{lf.where}: no_match_regex")
    response_contains = f.text("response_contains") or None
    _check_regex(response_contains, f"{f.where}: response_contains")
    isolated = bool(f.flag("isolated"))
    if isolated and len(expect_ids) != 1:
        raise FtwFormatError(f"{f.where}: 'isolated' needs exactly one expect_ids entry")
    return StageOutput(
        status=tuple(s for s in f.integers("status") if s != 0),
        response_contains=response_contains,
        log=LogExpectation(expect_ids, no_expect_ids, match_regex or None,
                           no_match_regex or None),
        expect_error=bool(f.flag("expect_error")),
        retry_once=bool(f.flag("retry_once")),
        isolated=isolated,
    )


_TEST_FIELDS = ("test_id", "id", "test_title", "desc", "description", "stages", "tags",
                "payload", "template", "output")


def _parse_test(raw: Any, rule_id: int, position: int, path: Path) -> FtwTest:
    f = _Fields(raw, f"{path}: tests[{position - 1}]", _TEST_FIELDS)
    if f.has("payload") or f.has("template") or f.has("output"):
        raise FtwFormatError(f"{f.where}: the v3 payload/template form is not supported")
    test_id, alias = f.integer("test_id"), f.integer("id")
    if test_id is not None and alias is not None and test_id != alias:
        raise FtwFormatError(f"{f.where}: test_id {test_id} and id {alias} disagree")
    test_id = test_id if test_id is not None else alias
    if not test_id:  # go-ftw numbers tests by position when no id is given
        test_id = position
    where = f"{path}: test {rule_id}-{test_id}"
    desc, description = f.text("desc"), f.text("description")
    raw_stages = f.raw.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise FtwFormatError(f"{where}: stages: expected a non-empty list")
    stages: list[Stage] = []
    for index, raw_stage in enumerate(raw_stages):
        sw = f"{where}: stages[{index}]"
        if isinstance(raw_stage, dict) and set(raw_stage) == {"stage"}:
            raw_stage = raw_stage["stage"]  # the deprecated wrapper
        sf = _Fields(raw_stage, sw, ("input", "output", "description"))
        stages.append(Stage(rule_id, test_id, index, _parse_input(sf.raw.get("input"), sw),
                            _parse_output(sf.raw.get("output"), sw), sf.text("description") or ""))
    return FtwTest(rule_id, test_id, tuple(stages), desc or description or "",
                   f.texts("tags"), path)


def load_test_file(path: str | Path) -> FtwFile:
    """Load one go-ftw YAML file. An empty file (e.g. all commented out) has no tests."""
    path = Path(path)
    raw = _load_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FtwFormatError(f"{path}: expected a mapping at the top, got {_yaml_kind(raw)}")
    f = _Fields(raw, str(path), raw.keys())  # top level: unknown keys are tolerated
    mf = _Fields(f.raw.get("meta"), f"{path}: meta", ("author", "enabled", "name",
                                                        "description", "version", "tags"))
    meta = FtwMeta(author=mf.text("author") or "", name=mf.text("name") or "",
                   description=mf.text("description") or "", version=mf.text("version") or "",
                   enabled=mf.flag("enabled"), tags=mf.texts("tags"))
    rule_id = f.integer("rule_id")
    if not rule_id:  # go-ftw falls back on the first number in the file name
        digits = re.search(r"\d+", path.name)
        if digits is None:
            if f.raw.get("tests"):
                raise FtwFormatError(f"{path}: rule_id is required")
            rule_id = 0
        else:
            rule_id = int(digits.group())
    raw_tests = f.raw.get("tests") or []
    if not isinstance(raw_tests, list):
        raise FtwFormatError(f"{path}: tests: expected a list")
    tests = tuple(_parse_test(t, rule_id, i, path) for i, t in enumerate(raw_tests, start=1))
    return FtwFile(path, rule_id, meta, tests)


def find_test_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named as given, and every ``*.yaml``/``*.yml`` below directories, sorted."""
    found: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            candidates = sorted(c for c in p.rglob("*") if c.suffix in (".yaml", ".yml")
                                and c.is_file())
        elif p.is_file():
            candidates = [p]
        else:
            raise FtwFormatError(f"{p}: no such file or directory")
        for c in candidates:
            key = c.resolve()
            if key not in seen:
                seen.add(key)
                found.append(c)
    return found


def load_test_files(paths: Iterable[str | Path]) -> list[FtwFile]:
    return [load_test_file(p) for p in find_test_files(paths)]


# --- overrides ---------------------------------------------------------------


@dataclass(frozen=True)
class OverrideEntry:
    """One ``test_overrides`` entry. Empty ``test_ids`` means every test of the rule,
    empty ``stage_ids`` every stage (0-based). ``output`` replaces the stage's output;
    without one the stage is not run and passes."""

    rule_id: int
    test_ids: tuple[int, ...]
    stage_ids: tuple[int, ...]
    reason: str
    output: StageOutput | None
    retry_once: bool | None = None

    def matches(self, stage: Stage) -> bool:
        return (stage.rule_id == self.rule_id
                and (not self.test_ids or stage.test_id in self.test_ids)
                and (not self.stage_ids or stage.index in self.stage_ids))


@dataclass(frozen=True)
class Overrides:
    entries: tuple[OverrideEntry, ...] = ()
    engine: str = ""
    platform: str = ""
    version: str = ""

    def apply(self, stage: Stage) -> tuple[Stage, str | None]:
        """The stage as it should run, and the reason when it is forced to pass.
        When several entries match, the last one wins."""
        forced: str | None = None
        for entry in self.entries:
            if not entry.matches(stage):
                continue
            if entry.output is None:
                forced = entry.reason or "overridden"
                continue
            forced = None
            output = entry.output
            if entry.retry_once is not None:
                output = replace(output, retry_once=entry.retry_once)
            stage = replace(stage, output=output)
        return stage, forced


def load_overrides(path: str | Path) -> Overrides:
    """Load a go-ftw platform overrides file (``--overrides``)."""
    path = Path(path)
    raw = _load_yaml(path)
    f = _Fields(raw, str(path), ("version", "meta", "test_overrides"))
    meta = f.raw.get("meta") or {}
    if not isinstance(meta, dict):
        raise FtwFormatError(f"{path}: meta: expected a mapping")
    raw_entries = f.raw.get("test_overrides") or []
    if not isinstance(raw_entries, list):
        raise FtwFormatError(f"{path}: test_overrides: expected a list")
    entries = []
    for i, item in enumerate(raw_entries):
        ef = _Fields(item, f"{path}: test_overrides[{i}]",
                     ("rule_id", "test_ids", "stage_ids", "reason", "retry_once", "output"))
        rule_id = ef.integer("rule_id")
        if rule_id is None:
            raise FtwFormatError(f"{ef.where}: rule_id is required")
        output = _parse_output(ef.raw["output"], ef.where) if ef.has("output") else None
        entries.append(OverrideEntry(rule_id, ef.integers("test_ids"), ef.integers("stage_ids"),
                                     ef.text("reason") or "", output, ef.flag("retry_once")))
    return Overrides(tuple(entries), engine=str(meta.get("engine") or ""),
                     platform=str(meta.get("platform") or ""), version=f.text("version") or "")


def is_selected(test_id: str, include: re.Pattern[str] | None,
                exclude: re.Pattern[str] | None) -> bool:
    """go-ftw's rule: a matching ``include`` always wins; otherwise ``exclude`` drops, and
    a non-matching ``include`` drops. Both search ``<rule_id>-<test_id>`` unanchored."""
    if include is not None:
        return include.search(test_id) is not None
    return exclude is None or exclude.search(test_id) is None


# ---------------------------------------------------------------------------
# Request building (byte-exact with go-ftw's ftwhttp.BuildRequest)
# ---------------------------------------------------------------------------

# go-ftw's `^POST|PUT|PATCH|DELETE$` binds as (^POST)|PUT|PATCH|(DELETE$); kept as is.
_METHOD_WITH_BODY = re.compile(r"^POST|PUT|PATCH|DELETE$")
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _canonical(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: names with a non-token byte stay as they are."""
    if not name or any(c not in _TOKEN_CHARS for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class _Headers:
    def __init__(self, fields: Iterable[HeaderTuple]) -> None:
        self.fields = list(fields)

    def values(self, name: str) -> list[str]:
        key = _canonical(name)
        return [f.value for f in self.fields if _canonical(f.name) == key]

    def has(self, name: str) -> bool:
        return bool(self.values(name))

    def add(self, name: str, value: str) -> None:
        self.fields.append(HeaderTuple(name, value))


def _query_escape(data: bytes) -> bytes:
    """Go's url.QueryEscape: all but ``A-Za-z0-9-_.~`` percent-encoded, space as ``+``."""
    return quote_plus(data, safe="").encode("ascii")


def _encode_form(data: bytes) -> bytes:
    """go-ftw's encodeDataParameters for a urlencoded body. Data that Go's QueryUnescape
    would change (it has a ``%`` or a ``+``) is taken as already encoded; otherwise each
    ``key=value`` is encoded separately, keeping the ``=`` and ``&`` (a trailing ``&``
    is dropped, as go-ftw drops it)."""
    if b"%" in data or b"+" in data:
        return data
    tokens = data.split(b"&")
    if tokens[-1] == b"":
        tokens.pop()  # go-ftw's loop ends when nothing remains after the last '&'
    parts = []
    for token in tokens:
        key, sep, value = token.partition(b"=")
        parts.append(_query_escape(key) + (b"=" + _query_escape(value) if sep else b""))
    return b"&".join(parts)


def stage_body(inp: StageInput) -> bytes:
    """The body before go-ftw's completions: ``data`` (a Go template, see
    :func:`render_data_template`) or else base64 ``encoded_data``."""
    if inp.data is not None:
        return render_data_template(inp.data).encode("utf-8")
    if inp.encoded_data is not None:
        return _b64decode(inp.encoded_data, "encoded_data")
    return b""


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FtwError(f"{what}: invalid base64: {exc}") from exc


def build_request(inp: StageInput) -> bytes:
    """The exact bytes go-ftw sends for this input.

    ``encoded_request`` is sent as decoded. Otherwise the request line is
    ``method SP uri SP version CRLF`` with the defaults filled in and nothing checked,
    then the headers. With ``autocomplete_headers`` (the default) a body without a
    Content-Type gets ``application/x-www-form-urlencoded``, a urlencoded body is
    encoded pair by pair, and ``Connection: close`` and ``Content-Length`` (for a body,
    or a method that usually has one) are added unless present. Multipart bodies get
    ``\\n`` -> ``\\r\\n`` (every one, as go-ftw does).
    """
    if inp.encoded_request is not None:
        return _b64decode(inp.encoded_request, "encoded_request")
    method = DEFAULT_METHOD if inp.method is None else inp.method
    uri = DEFAULT_URI if inp.uri is None else inp.uri
    version = DEFAULT_VERSION if inp.version is None else inp.version
    headers = _Headers(inp.header_fields())
    data = stage_body(inp)

    if data and inp.autocomplete_headers:
        if not headers.has("Content-Type"):
            headers.add("Content-Type", _FORM_URLENCODED)
        if any(v.lower() == _FORM_URLENCODED for v in headers.values("Content-Type")):
            data = _encode_form(data)
    if any("multipart/form-data;" in v.lower() for v in headers.values("Content-Type")):
        data = data.replace(b"\n", b"\r\n")
    if inp.autocomplete_headers:
        if not headers.has("Connection"):
            headers.add("Connection", "close")
        if not headers.has("Content-Length") and (data or _METHOD_WITH_BODY.search(method)):
            headers.add("Content-Length", str(len(data)))

    out = bytearray(f"{method} {uri} {version}\r\n".encode())
    for h in headers.fields:
        out += f"{h.name}: {h.value}\r\n".encode()
    out += b"\r\n"
    out += data
    return bytes(out)


def marker_request(token: str, host: str = "localhost") -> bytes:
    """go-ftw's marker: ``GET /status/200`` carrying ``X-CRS-Test: <token>``."""
    return build_request(StageInput(
        method="GET", uri="/status/200", version="HTTP/1.1",
        ordered_headers=(HeaderTuple("Accept", "*/*"),
                         HeaderTuple("User-Agent", "bastion-replay"),
                         HeaderTuple("Host", host),
                         HeaderTuple(MARKER_HEADER, token))))


# --- Go templates in `data` ----------------------------------------------------

_ACTION = re.compile(r"\{\{(-[ \t\r\n])?(.*?)([ \t\r\n]-)?\}\}", re.S)
_TEMPLATE_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<int>-?\d+)'
    r"|(?P<ident>[A-Za-z_]\w*)|(?P<pipe>\|))")


def _sprig_repeat(count: Any, text: Any) -> str:
    if not isinstance(count, int) or not isinstance(text, str):
        raise FtwError("repeat takes a count and a string")
    return text * count


_TEMPLATE_FUNCS: dict[str, Callable[..., str]] = {"repeat": _sprig_repeat}


def render_data_template(text: str) -> str:
    """go-ftw runs ``data`` through Go's text/template with the sprig functions. CRS uses
    ``{{ "1" | repeat 64200 }}``; this supports string and integer literals, pipelines
    and ``repeat``, with ``{{-``/``-}}`` trimming and ``{{/* */}}`` comments."""
    if "{{" not in text:
        return text
    out: list[str] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if trim_next:
            chunk = chunk.lstrip(" \t\r\n")
        if m.group(1):
            chunk = chunk.rstrip(" \t\r\n")
        out.append(chunk)
        body = m.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            out.append(_eval_pipeline(body))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = text[pos:]
    if "{{" in tail:
        raise FtwError(f"data: unterminated template action in {tail[:40]!r}")
    out.append(tail.lstrip(" \t\r\n") if trim_next else tail)
    return "".join(out)


def _eval_pipeline(body: str) -> str:
    commands: list[list[tuple[str, Any]]] = [[]]
    pos = 0
    while pos < len(body):
        m = _TEMPLATE_TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            if body[pos:].strip() == "":
                break
            raise FtwError(f"data: unsupported template action {{{{{body}}}}}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "pipe":
            commands.append([])
        elif kind == "str":
            commands[-1].append(("value", ast.literal_eval(m.group("str"))))
        elif kind == "raw":
            commands[-1].append(("value", m.group("raw")[1:-1]))
        elif kind == "int":
            commands[-1].append(("value", int(m.group("int"))))
        else:
            commands[-1].append(("ident", m.group("ident")))
    value: Any = None
    for i, command in enumerate(commands):
        if not command:
            raise FtwError(f"data: empty command in template action {{{{{body}}}}}")
        kind, head = command[0]
        args = [v for _, v in command[1:]]
        if any(k == "ident" for k, _ in command[1:]):
            raise FtwError(f"data: unsupported template action {{{{{body}}}}}")
        if kind == "value":
            if args or i > 0:
                raise FtwError(f"data: unsupported template action {{{{{body}}}}}")
            value = head
            continue
        func = _TEMPLATE_FUNCS.get(head)
        if func is None:
            raise FtwError(f"data: template function {head!r} is not supported "
                           f"(supported: {', '.join(sorted(_TEMPLATE_FUNCS))})")
        if i > 0:
            args.append(value)
        value = func(*args)
    return str(value)


# ---------------------------------------------------------------------------
# Results and checks
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StageResult:
    """What a target observed for one stage.

    ``error`` is a transport failure (no connection, no or unparseable response);
    ``log_error`` says why ``log_lines`` cannot be trusted (markers not found).
    A target that knows the matched rules directly sets ``rule_ids``; otherwise they
    are read from ``log_lines``."""

    status: int | None = None
    response: bytes = b""
    error: str | None = None
    log_lines: tuple[str, ...] = ()
    log_error: str | None = None
    rule_ids: frozenset[int] | None = None
    duration: float = 0.0

    def triggered_ids(self) -> frozenset[int]:
        return self.rule_ids if self.rule_ids is not None else extract_rule_ids(self.log_lines)


class Target(Protocol):
    """Runs one stage: sends its request and gathers what the WAF logged for it."""

    async def run_stage(self, stage: Stage) -> StageResult: ...


_TEXT_ID = re.compile(r'\[id \\?"(\d+)\\?"\]')
_JSON_ID = re.compile(r'\\?"(?:id|ruleId|rule_id)\\?"\s*:\s*(?:\\?"(\d+)\\?"|(\d+)(?![\w.]))')


def extract_rule_ids(lines: Iterable[str]) -> frozenset[int]:
    """Rule ids in WAF log lines: ModSecurity/Coraza text (``[id "942100"]``), JSON
    (``"id":942100``, ``"ruleId":"942100"``) and Bastion's audit lines, JSON objects
    whose ``"matched": [{"id": 942100, ...}]`` lists the rules (only those ids count)."""
    ids: set[int] = set()
    for line in lines:
        matched = _matched_ids(line)
        if matched is not None:
            ids.update(matched)
            continue
        ids.update(int(m.group(1)) for m in _TEXT_ID.finditer(line))
        for m in _JSON_ID.finditer(line):
            ids.add(int(m.group(1) or m.group(2)))
    return frozenset(ids)


def _matched_ids(line: str) -> set[int] | None:
    stripped = line.strip()
    if not (stripped.startswith("{") and '"matched"' in stripped):
        return None
    try:
        doc = json.loads(stripped)
    except ValueError:
        return None
    found: set[int] = set()
    stack: list[Any] = [doc]
    seen_matched = False
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "matched" and isinstance(value, list):
                    seen_matched = True
                    for item in value:
                        rid = item.get("id") if isinstance(item, dict) else None
                        if isinstance(rid, int) and not isinstance(rid, bool):
                            found.add(rid)
                        elif isinstance(rid, str) and rid.isdigit():
                            found.add(int(rid))
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found if seen_matched else None


def _ids(ids: Iterable[int], limit: int = 12) -> str:
    ordered = sorted(ids)
    text = ", ".join(map(str, ordered[:limit]))
    return text + (f", ... ({len(ordered)} in all)" if len(ordered) > limit else "")


def check_stage(output: StageOutput, result: StageResult) -> str | None:
    """Why the stage failed, or ``None`` when it passed (go-ftw's order of checks)."""
    if output.expect_error:
        if result.error is not None:
            return None
        return f"expected a transport error, got status {result.status}"
    if result.error is not None:
        return f"request failed: {result.error}"
    if output.status and result.status not in output.status:
        want = " or ".join(map(str, output.status))
        return f"status {result.status}, expected {want}"
    if output.response_contains is not None:
        text = result.response.decode("utf-8", "replace")
        if _compiled(output.response_contains).search(text) is None:
            return f"response does not match {output.response_contains!r}"
    log = output.log
    if not (log.required or output.isolated):
        return None
    if result.log_error is not None:
        return result.log_error
    ids = result.triggered_ids()
    if log.match_regex is not None:
        rx = _compiled(log.match_regex)
        if not any(rx.search(line) for line in result.log_lines):
            return f"no log line matches {log.match_regex!r}"
    missing = [i for i in log.expect_ids if i not in ids]
    if missing:
        return f"expected id(s) {_ids(missing)} not logged (logged: {_ids(ids) or 'none'})"
    if output.isolated and ids != set(log.expect_ids):
        return f"isolated test logged other ids too: {_ids(ids)}"
    if log.no_match_regex is not None:
        rx = _compiled(log.no_match_regex)
        hit = next((line for line in result.log_lines if rx.search(line)), None)
        if hit is not None:
            return f"a log line matches {log.no_match_regex!r}: {_one_line(hit, 120)}"
    present = [i for i in log.no_expect_ids if i in ids]
    if present:
        return f"unexpected id(s) {_ids(present)} logged"
    return None


def _one_line(text: str, limit: int = 300) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit - 3] + "..."


Outcome = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class StageReport:
    index: int
    passed: bool
    reason: str = ""
    status: int | None = None
    rule_ids: tuple[int, ...] = ()
    error: str | None = None
    duration: float = 0.0
    override: str | None = None  # the reason when an override forced a pass
    retried: bool = False


@dataclass(frozen=True)
class CaseReport:
    test: FtwTest
    outcome: Outcome
    reason: str = ""
    stages: tuple[StageReport, ...] = ()

    @property
    def id(self) -> str:
        return self.test.id

    def line(self) -> str:
        """``PASS 911100-1``, ``FAIL 911100-2: <why>``: the per-test result line."""
        tag = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[self.outcome]
        return f"{tag} {self.id}" + (f": {self.reason}" if self.reason else "")


@dataclass
class RunReport:
    cases: list[CaseReport]
    duration: float = 0.0

    def _count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.cases if c.outcome == outcome)

    @property
    def passed(self) -> int:
        return self._count("passed")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    def summary_line(self) -> str:
        line = f"{self.passed} passed, {self.failed} failed"
        return line + (f", {self.skipped} skipped" if self.skipped else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": {"passed": self.passed, "failed": self.failed, "skipped": self.skipped,
                        "total": len(self.cases), "duration_s": round(self.duration, 3)},
            "tests": [
                {
                    "id": c.id, "rule_id": c.test.rule_id, "test_id": c.test.test_id,
                    "file": str(c.test.file) if c.test.file else None,
                    "outcome": c.outcome, "reason": c.reason,
                    "stages": [
                        {"index": s.index, "passed": s.passed, "reason": s.reason,
                         "status": s.status, "rule_ids": list(s.rule_ids), "error": s.error,
                         "duration_ms": round(s.duration * 1000, 1), "override": s.override,
                         "retried": s.retried}
                        for s in c.stages
                    ],
                }
                for c in self.cases
            ],
        }


class Reporter(Protocol):
    def begin(self, total: int) -> None: ...

    def report(self, case: CaseReport) -> None: ...


# ---------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------


async def _run_stage(stage: Stage, target: Target, overrides: Overrides | None) -> StageReport:
    forced = None
    if overrides is not None:
        stage, forced = overrides.apply(stage)
    if forced is not None:
        return StageReport(stage.index, True, override=forced)
    retried = False
    while True:
        try:
            result = await target.run_stage(stage)
        except TargetError:
            raise
        except Exception as exc:  # a broken stage must not end the run
            return StageReport(stage.index, False, _one_line(f"{type(exc).__name__}: {exc}"),
                               retried=retried)
        reason = check_stage(stage.output, result)
        if reason is not None and stage.output.retry_once and not retried:
            retried = True
            continue
        return StageReport(stage.index, reason is None, _one_line(reason or ""), result.status,
                           tuple(sorted(result.triggered_ids())), result.error,
                           result.duration, retried=retried)


async def run_test(test: FtwTest, target: Target, overrides: Overrides | None = None
                   ) -> CaseReport:
    """Run every stage in order; the test fails if any stage fails."""
    stages = [await _run_stage(stage, target, overrides) for stage in test.stages]
    failed = [s for s in stages if not s.passed]
    if failed:
        first = failed[0]
        prefix = f"stage {first.index + 1}/{len(stages)}: " if len(stages) > 1 else ""
        return CaseReport(test, "failed", prefix + first.reason, tuple(stages))
    forced = sorted({s.override for s in stages if s.override is not None})
    reason = "override: " + "; ".join(forced) if forced else ""
    return CaseReport(test, "passed", _one_line(reason), tuple(stages))


async def run_tests(tests: Sequence[FtwTest], target: Target, *,
                    include: re.Pattern[str] | None = None,
                    exclude: re.Pattern[str] | None = None,
                    overrides: Overrides | None = None, concurrency: int = 1,
                    reporter: Reporter | None = None) -> RunReport:
    """Run the selected tests against ``target``; results keep the input order.

    With ``concurrency`` > 1 that many tests run at once (each test's stages stay in
    order); the target must keep concurrent stages' logs apart, as :class:`LiveTarget`
    does. A :class:`TargetError` aborts the run.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    started = time.monotonic()
    cases: list[CaseReport | None] = [None] * len(tests)
    todo: list[int] = []
    for i, test in enumerate(tests):
        if is_selected(test.id, include, exclude):
            todo.append(i)
        else:
            cases[i] = CaseReport(test, "skipped", "not selected by --include/--exclude")
    if reporter is not None:
        reporter.begin(len(todo))
    pending = iter(todo)

    async def worker() -> None:
        for i in pending:  # workers share the iterator, so each test runs once
            case = await run_test(tests[i], target, overrides)
            cases[i] = case
            if reporter is not None:
                reporter.report(case)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(todo)) or 1):
            group.create_task(worker())
    done = [c for c in cases if c is not None]
    return RunReport(done, time.monotonic() - started)


class ConsoleReporter:
    """Per-test lines on ``out`` (all tests, or failures only) and progress on ``err``:
    a redrawn bar when ``err`` is a terminal, a count every tenth of the run otherwise."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None, *,
                 failures_only: bool = False, progress: bool | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.failures_only = failures_only
        self.tty = self.err.isatty() if progress is None else progress
        self.total = 0
        self.done = self.passed = self.failed = 0
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._bar_shown = False

    def begin(self, total: int) -> None:
        self.total = total
        self._started = time.monotonic()

    def report(self, case: CaseReport) -> None:
        self.done += 1
        if case.outcome == "passed":
            self.passed += 1
        elif case.outcome == "failed":
            self.failed += 1
        force = False
        if case.outcome == "failed" or not self.failures_only:
            force = self._clear()
            print(case.line(), file=self.out, flush=True)
        self._progress(force)

    def _status(self) -> str:
        elapsed = time.monotonic() - self._started
        return (f"{self.done}/{self.total} tests, {self.passed} passed, "
                f"{self.failed} failed, {elapsed:.1f}s")

    def _progress(self, force: bool = False) -> None:
        if self.tty:
            now = time.monotonic()
            if not force and now - self._last_draw < 0.1 and self.done < self.total:
                return
            self._last_draw, self._bar_shown = now, True
            width = 30
            filled = width * self.done // max(self.total, 1)
            self.err.write(f"\r\x1b[K[{'#' * filled}{'.' * (width - filled)}] {self._status()}")
            self.err.flush()
        else:
            step = max(1, self.total // 10)
            if self.done % step == 0 or self.done == self.total:
                print(f"progress: {self._status()}", file=self.err, flush=True)

    def _clear(self) -> bool:
        """Erase the bar (so a result line does not land on it); True if it was shown."""
        if not (self.tty and self._bar_shown):
            return False
        self.err.write("\r\x1b[K")
        self.err.flush()
        self._bar_shown = False
        return True

    def end(self, run: RunReport) -> None:
        """The summary; its last line is exactly ``N passed, M failed[, K skipped]``."""
        self._clear()
        failed = [c for c in run.cases if c.outcome == "failed"]
        if failed and not self.failures_only and len(failed) <= 50:
            print(f"\nfailed: {' '.join(c.id for c in failed)}", file=self.out)
        stages = sum(len(c.stages) for c in run.cases if c.outcome != "skipped")
        print(f"\nran {run.passed + run.failed} tests ({stages} stages) in "
              f"{run.duration:.1f}s", file=self.out)
        print(run.summary_line(), file=self.out, flush=True)


def write_json_report(run: RunReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(run.to_json(), indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------
# The live target
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    status: int | None
    raw: bytes
    error: str | None


_STATUS_LINE_VERSION = re.compile(r"HTTP/\d\.\d")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def parse_status_line(head: bytes) -> tuple[int | None, str | None]:
    """Status code of a response head, or an error as Go's http.ReadResponse gives one."""
    line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    proto, sep, rest = line.partition(" ")
    if not sep:
        return None, f"malformed HTTP response {_one_line(line, 80)!r}"
    code = rest.lstrip(" ").partition(" ")[0]
    if len(code) != 3 or not code.isdigit():
        return None, f"malformed HTTP status code {_one_line(code, 20)!r}"
    if not _STATUS_LINE_VERSION.fullmatch(proto):
        return None, f"malformed HTTP version {_one_line(proto, 20)!r}"
    return int(code), None


def _head_value(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


async def _read_response(reader: asyncio.StreamReader, wait: float,
                         head_request: bool = False) -> Exchange:
    """Read one response for at most ``wait`` seconds (go-ftw's read timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    buf = bytearray()

    async def more() -> bytes | None:  # None: the deadline passed
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(reader.read(65536), remaining)
        except TimeoutError:
            return None

    while (end := _HEADER_END.search(buf)) is None:
        try:
            chunk = await more()
        except OSError as exc:
            return Exchange(None, bytes(buf), f"connection error before a response: {exc}")
        if chunk is None:
            return Exchange(None, bytes(buf), f"no response within {wait:g}s")
        if not chunk:
            what = "an incomplete response" if buf else "no response"
            return Exchange(None, bytes(buf), f"connection closed with {what}")
        buf += chunk
    head = bytes(buf[:end.end()])
    status, error = parse_status_line(head)
    if error is not None:
        return Exchange(None, bytes(buf), error)
    assert status is not None
    if head_request or status < 200 or status in (204, 304):
        return Exchange(status, bytes(buf), None)
    length_raw = _head_value(head, b"content-length")
    chunked = b"chunked" in (_head_value(head, b"transfer-encoding") or b"").lower()
    length = int(length_raw) if length_raw is not None and length_raw.isdigit() else None
    # The body is read best-effort: a short or slow body is not a transport error.
    while True:
        body = len(buf) - end.end()
        if length is not None and not chunked and body >= length:
            break
        if chunked and buf.endswith(b"0\r\n\r\n"):
            break
        try:
            chunk = await more()
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    return Exchange(status, bytes(buf), None)


_MARKER_TOKEN = re.compile(
    r"(?:\d+-\d+|probe)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(?:start|end)",
    re.I)


def _has(line: str, token: str) -> bool:
    return token in line or token in line.lower()


class _LogTail:
    """The lines appended to a log file since :meth:`start`, read incrementally.
    Line numbers are absolute, so :meth:`trim` can drop lines nobody needs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""
        self._lines: list[str] = []
        self._base = 0

    @property
    def end(self) -> int:
        return self._base + len(self._lines)

    def start(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._offset, self._inode = 0, None
        else:
            self._offset, self._inode = st.st_size, st.st_ino

    def refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if st.st_ino != self._inode or st.st_size < self._offset:  # rotated or truncated
            self._inode, self._offset, self._partial = st.st_ino, 0, b""
        if st.st_size == self._offset:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        self._offset += len(data)
        data = self._partial + data
        complete, newline, self._partial = data.rpartition(b"\n")
        if newline:
            self._lines.extend(line.rstrip("\r") for line in
                               complete.decode("utf-8", "replace").split("\n"))

    def find(self, token: str, start: int, stop: int | None = None, last: bool = False
             ) -> int | None:
        lo = max(start, self._base) - self._base
        hi = len(self._lines) if stop is None else max(stop - self._base, lo)
        indices = range(hi - 1, lo - 1, -1) if last else range(lo, hi)
        for i in indices:
            if _has(self._lines[i], token):
                return i + self._base
        return None

    def between(self, start: int, stop: int) -> list[str]:
        return self._lines[max(start, self._base) - self._base:max(stop - self._base, 0)]

    def trim(self, keep_from: int) -> None:
        drop = min(max(keep_from - self._base, 0), len(self._lines))
        if drop:
            del self._lines[:drop]
            self._base += drop


async def send_request(host: str, port: int, data: bytes, *, wait: float = 3.0,
                       ssl: ssl_module.SSLContext | None = None,
                       head_request: bool = False) -> Exchange:
    """Send ``data`` as one request over a fresh connection and read one response for at
    most ``wait`` seconds; failures come back in ``error``."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl,
                                    server_hostname=host if ssl else None),
            wait)
    except TimeoutError:
        return Exchange(None, b"", f"connect to {host}:{port} timed out")
    except OSError as exc:
        return Exchange(None, b"", f"cannot connect to {host}:{port}: "
                                   f"{exc.strerror or exc}")
    try:
        send_error = None
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), wait)
        except (OSError, TimeoutError) as exc:
            send_error = f"send failed: {str(exc) or type(exc).__name__}"
        # Even when sending failed the server may have answered (e.g. 413 + close).
        exchange = await _read_response(reader, wait, head_request)
        if send_error is not None and exchange.error is not None:
            return Exchange(None, exchange.raw, send_error)
        return exchange
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl_module.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


class LiveTarget:
    """A running gateway at ``host:port`` whose WAF writes to the log file ``log_path``.

    Each stage is sent over its own TCP connection, byte for byte (``dest_addr`` and
    ``port`` in the tests are ignored, as Coraza's harness ignores them). Before and
    after it, a marker request carries ``X-CRS-Test: <rule>-<test>-<uuid>-start|-end``;
    the WAF's marker rule logs that value, and the stage's log lines are the ones
    between the two marker lines. Use as an async context manager: entering checks
    that a marker reaches the log.

    ``concurrency`` > 1 lets that many stages share the target. Stage windows still
    may not interleave (a uuid names a window, not the lines of other requests that
    land in it), so a lock covers start marker -> request -> end marker; only the wait
    for the end marker to reach the log, and the checks, overlap. A window that still
    holds another stage's marker line is re-run with the lock held until its end
    marker is logged.
    """

    def __init__(self, host: str, port: int, log_path: str | Path, *, timeout: float = 3.0,
                 ssl: ssl_module.SSLContext | None = None, concurrency: int = 1,
                 marker_polls: Sequence[float] = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15,
                                                  0.2, 0.2, 0.25),
                 marker_sends: int = 3) -> None:
        self.host, self.port, self.timeout, self.ssl = host, port, timeout, ssl
        self.log_path = Path(log_path)
        self.pipelined = concurrency > 1
        self._log = _LogTail(self.log_path)
        self._window = asyncio.Lock()
        self._floors: dict[str, int] = {}
        self._polls = tuple(marker_polls)
        self._sends = max(1, marker_sends)

    async def __aenter__(self) -> Self:
        await self.probe()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        return None

    async def probe(self) -> None:
        """Start reading the log at its current end and check that a marker reaches it."""
        self._log.start()
        token = f"probe-{uuid.uuid4()}-start"
        if await self._place_marker(token, self._log.end, "localhost") is None:
            raise TargetError(
                f"sent a marker request ({MARKER_HEADER}: {token}) to {self.host}:{self.port}"
                f" but it never appeared in {self.log_path}; is the WAF's marker rule loaded"
                f" and is that file the log it writes?")
        self._log.trim(self._log.end)

    async def send(self, data: bytes, *, head_request: bool = False) -> Exchange:
        """One request over a fresh connection; failures come back in ``error``."""
        return await send_request(self.host, self.port, data, wait=self.timeout,
                                  ssl=self.ssl, head_request=head_request)

    async def _send_marker(self, token: str, host: str) -> None:
        exchange = await self.send(marker_request(token, host))
        if exchange.status is None:
            raise TargetError(f"marker request to {self.host}:{self.port} failed: "
                              f"{exchange.error}")

    async def _place_marker(self, token: str, search_from: int, host: str,
                            already_sent: bool = False) -> int | None:
        """Send the marker (again, up to ``marker_sends`` times) until the log shows it."""
        for attempt in range(self._sends):
            if attempt or not already_sent:
                await self._send_marker(token, host)
            for delay in self._polls:
                if delay:
                    await asyncio.sleep(delay)
                self._log.refresh()
                found = self._log.find(token, search_from)
                if found is not None:
                    return found
        return None

    async def run_stage(self, stage: Stage) -> StageResult:
        result, contaminated = await self._attempt(stage, exclusive=not self.pipelined)
        if contaminated:
            result, contaminated = await self._attempt(stage, exclusive=True)
            if contaminated:
                result = replace(result, log_error="another stage's marker was logged inside "
                                                   "this stage's window; re-run with -j 1")
        return result

    async def _attempt(self, stage: Stage, exclusive: bool) -> tuple[StageResult, bool]:
        request = build_request(stage.input)
        head = (stage.input.method or DEFAULT_METHOD) == "HEAD"
        host = "localhost"
        if stage.input.virtual_host_mode:
            hosts = _Headers(stage.input.header_fields()).values("Host")
            host = hosts[0] if len(hosts) == 1 else host
        token = f"{stage.test_key}-{uuid.uuid4()}"
        start_token, end_token = f"{token}-start", f"{token}-end"
        started = time.monotonic()
        self._log.refresh()
        floor = self._log.end
        self._floors[token] = floor
        end: int | None = None
        try:
            async with self._window:
                start = await self._place_marker(start_token, floor, host)
                after = floor if start is None else start
                exchange = await self.send(request, head_request=head)
                if exclusive:
                    end = await self._place_marker(end_token, after, host)
                else:
                    await self._send_marker(end_token, host)
            if not exclusive:
                end = await self._place_marker(end_token, after, host, already_sent=True)
            duration = time.monotonic() - started
            base = StageResult(exchange.status, exchange.raw, exchange.error,
                               duration=duration)
            if start is None:
                return replace(base, log_error=f"start marker {start_token} not found in "
                                               f"{self.log_path}"), False
            if end is None:
                return replace(base, log_error=f"end marker {end_token} not found in "
                                               f"{self.log_path}"), False
            latest = self._log.find(start_token, start, end, last=True)  # a re-sent marker
            start = start if latest is None else latest
            window = self._log.between(start + 1, end)
        finally:
            del self._floors[token]
            self._log.trim(min(self._floors.values(), default=self._log.end))
        own = token.lower()
        foreign = any(not _has(line, own) and _MARKER_TOKEN.search(line) for line in window)
        lines = tuple(line for line in window if not _MARKER_TOKEN.search(line))
        return replace(base, log_lines=lines), foreign and not exclusive


class StatusTarget:
    """A running gateway at ``host:port`` judged by its responses alone: each stage is
    sent over its own TCP connection, byte for byte, and nothing is read from a log, so
    no marker rule is needed and any number of stages may be in flight at once. Use as
    an async context manager: entering checks that the gateway answers at all.

    ``StageResult.log_lines`` stays empty, so only ``status``, ``response_contains``
    and ``expect_error`` expectations can be judged against it.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 3.0,
                 ssl: ssl_module.SSLContext | None = None) -> None:
        self.host, self.port, self.timeout, self.ssl = host, port, timeout, ssl

    async def __aenter__(self) -> Self:
        await self.probe()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        return None

    async def probe(self) -> None:
        """Raise :class:`TargetError` unless ``GET /`` gets a response (any status)."""
        request = build_request(StageInput(
            method="GET", uri="/", ordered_headers=(HeaderTuple("Host", "localhost"),
                                                    HeaderTuple("User-Agent", "bastion-replay"),
                                                    HeaderTuple("Accept", "*/*"))))
        exchange = await self.send(request)
        if exchange.status is None:
            raise TargetError(f"no HTTP response from {self.host}:{self.port}: "
                              f"{exchange.error}")

    async def send(self, data: bytes, *, head_request: bool = False) -> Exchange:
        return await send_request(self.host, self.port, data, wait=self.timeout,
                                  ssl=self.ssl, head_request=head_request)

    async def run_stage(self, stage: Stage) -> StageResult:
        request = build_request(stage.input)
        started = time.monotonic()
        exchange = await self.send(request,
                                   head_request=(stage.input.method or DEFAULT_METHOD) == "HEAD")
        return StageResult(exchange.status, exchange.raw, exchange.error,
                           log_error="this target reads no log",
                           duration=time.monotonic() - started)


def iter_tests(files: Iterable[FtwFile]) -> Iterator[FtwTest]:
    for f in files:
        yield from f.tests


def stage_count(tests: Iterable[FtwTest]) -> int:
    return sum(len(t.stages) for t in tests)
