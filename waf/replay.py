"""``bastion replay``: run go-ftw suites (such as CRS's) against the gateway, or measure
a rule set's detection and false-positive rates on an attack corpus.

    bastion replay --crs ~/coreruleset --url http://127.0.0.1:8080 --log /var/log/bastion/audit.log
    bastion replay tests/ --url http://127.0.0.1:8080 --log audit.log \\
        --overrides overrides.yaml --exclude '^920100-' --json report.json
    bastion replay --corpus attack-corpus/                          # Bastion's rules, PL1
    bastion replay --corpus --crs ~/coreruleset --paranoia 2 attack-corpus/ --format markdown

Regression mode (the default) checks each test's expectations. With ``--url`` the
tests go to a running gateway, whose WAF must log the ``X-CRS-Test`` marker requests
to ``--log`` (see :class:`waf.ftw.LiveTarget`). Without it, Bastion's own gateway is
started in-process (over loopback sockets) with the WAF plugin and the CRS from
``--crs``, set up as CRS's own test suite expects.

Corpus mode (``--corpus``) ignores the tests' expected outputs and reads their tags
instead (``attack`` + ``family:<name>``, or ``benign`` + ``kind:<name>``; see
attack-corpus/README.md): an attack is detected when the WAF refuses it, a benign
request is a false positive when the WAF refuses it. In-process, the gateway runs
the ``waf`` plugin in blocking mode at ``--paranoia`` (default 1) with Bastion's
rules, or ``--crs`` as shipped, or ``--rules``, in front of a backend that answers
200 to everything; with ``--url`` the running gateway is judged by its answers
alone (no log needed).

Exit status: 0 when every selected test passes (corpus mode: unless a
``--min-detection`` or ``--max-fp`` threshold is missed), 1 when any fails (or a
threshold is missed), 2 on usage or configuration errors (bad arguments,
unreadable tests, a target that cannot be reached or does not log markers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import yaml
from aiohttp import web

from waf.albedo import albedo_app
from waf.ftw import (
    ConsoleReporter,
    FtwError,
    FtwFormatError,
    FtwTest,
    LiveTarget,
    Overrides,
    StageResult,
    StatusTarget,
    Target,
    TargetError,
    is_selected,
    iter_tests,
    load_overrides,
    load_test_files,
    run_tests,
    write_json_report,
)

__all__ = [
    "CorpusCase",
    "CorpusReport",
    "CorpusResult",
    "ReplayError",
    "add_replay_command",
    "classify",
    "cmd_replay",
    "corpus_target",
    "in_process_target",
    "judge_response",
    "main",
    "render_markdown",
    "render_text",
    "run_corpus",
]

CRS_TESTS = Path("tests") / "regression" / "tests"
# How many missed attacks and false positives the report lists (--verbose: all).
LIST_LIMIT = 20
# Tests in flight in corpus mode unless -j says otherwise.
CORPUS_JOBS = 8


class ReplayError(Exception):
    """A usage or configuration error (exit status 2)."""


@dataclass(frozen=True)
class ReplayPlan:
    tests: list[FtwTest]
    files: int
    include: re.Pattern[str] | None
    exclude: re.Pattern[str] | None
    overrides: Overrides | None
    url: str | None
    host: str
    port: int
    tls: bool
    log: Path | None
    crs: Path | None
    paranoia: int | None
    jobs: int
    timeout: float
    json: Path | None
    failures_only: bool
    # corpus mode
    corpus: bool = False
    cases: list[CorpusCase] = field(default_factory=list)
    unclassified: list[FtwTest] = field(default_factory=list)
    rules: tuple[Path, ...] = ()
    builtin_rules: bool | None = None
    format: Literal["text", "markdown"] = "text"
    verbose: bool = False
    min_detection: float | None = None
    max_fp: float | None = None


def add_replay_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
                       ) -> argparse.ArgumentParser:
    """Add ``replay`` to a ``bastion`` sub-command parser."""
    p = subparsers.add_parser(
        "replay", help="run go-ftw regression tests (e.g. the CRS suite) against the gateway, "
                       "or measure detection and false positives on an attack corpus",
        description="Run go-ftw YAML regression tests against the gateway and compare what "
                    "the WAF logged with what each test expects; or, with --corpus, report "
                    "the detection rate per attack family and the false-positive rate. Exit "
                    "status: 0 all passed (--corpus: thresholds met), 1 some failed "
                    "(--corpus: a threshold missed), 2 usage or configuration error.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="test files or directories (*.yaml, *.yml, searched recursively); "
                        "default: CRS_DIR/tests/regression/tests")
    p.add_argument("--crs", metavar="CRS_DIR", type=Path,
                   help="a CRS checkout: its tests are the default PATH, and the in-process "
                        "gateway loads its rules (--corpus: CRS as shipped, blocking)")
    p.add_argument("--url", metavar="URL",
                   help="a running gateway to test, e.g. http://127.0.0.1:8080 "
                        "(default: start one in-process)")
    p.add_argument("--log", metavar="FILE", type=Path,
                   help="the log the gateway's WAF writes (required with --url, except "
                        "with --corpus)")
    p.add_argument("--include", metavar="REGEX",
                   help="run only tests whose '<rule_id>-<test_id>' matches (wins over "
                        "--exclude)")
    p.add_argument("--exclude", metavar="REGEX",
                   help="skip tests whose '<rule_id>-<test_id>' matches")
    p.add_argument("--overrides", metavar="FILE", type=Path,
                   help="go-ftw platform overrides: replace expected outputs per test")
    p.add_argument("--json", metavar="REPORT", type=Path, help="also write a JSON report here")
    p.add_argument("--paranoia", metavar="N", type=int, choices=range(1, 5),
                   help="paranoia level 1-4 for the in-process gateway (default 4, as the "
                        "CRS tests expect; --corpus: 1)")
    p.add_argument("-j", "--jobs", metavar="N", type=int,
                   help="tests in flight at once (default 1; --corpus: "
                        f"{CORPUS_JOBS}). Without --corpus each stage's marker window is "
                        "still exclusive; only waiting for the log and checking overlap")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=3.0,
                   help="how long to wait for a response (default 3)")
    p.add_argument("--failures-only", action="store_true",
                   help="print result lines for failed tests only")
    corpus = p.add_argument_group(
        "corpus mode", "Judge tests by their tags (attack + family:NAME, benign + kind:NAME): "
                       "an attack is detected, a benign request a false positive, when the WAF "
                       "refuses it (403, or its 400 for a body it cannot parse).")
    corpus.add_argument("--corpus", action="store_true",
                        help="report detection per family and false positives instead of "
                             "checking expectations")
    corpus.add_argument("--rules", metavar="FILE", type=Path, action="append", default=[],
                        help="a rule file for the in-process gateway, loaded instead of "
                             "Bastion's rules unless --builtin-rules (repeat for more)")
    corpus.add_argument("--builtin-rules", action=argparse.BooleanOptionalAction,
                        help="load Bastion's own rules (default: yes unless --crs or --rules)")
    corpus.add_argument("--format", choices=("text", "markdown"),
                        help="the report's format (default text)")
    corpus.add_argument("-v", "--verbose", action="store_true",
                        help="list every missed attack and false positive, and add "
                             "detection by placement and encoding")
    corpus.add_argument("--min-detection", metavar="PERCENT", type=float,
                        help="exit 1 if the overall detection rate is below this")
    corpus.add_argument("--max-fp", metavar="PERCENT", type=float,
                        help="exit 1 if the false-positive rate is above this")
    p.set_defaults(func=cmd_replay)
    return p


def _regex(pattern: str | None, option: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ReplayError(f"{option}: invalid regex {pattern!r}: {exc}") from exc


def _corpus_only(args: argparse.Namespace) -> None:
    given = [name for name, value in (
        ("--rules", args.rules), ("--builtin-rules/--no-builtin-rules",
                                  args.builtin_rules is not None),
        ("--format", args.format is not None), ("--verbose", args.verbose),
        ("--min-detection", args.min_detection is not None),
        ("--max-fp", args.max_fp is not None)) if value]
    if given:
        raise ReplayError(f"{given[0]} needs --corpus")


def _check_corpus_args(args: argparse.Namespace) -> None:
    for option, value in (("--overrides", args.overrides), ("--log", args.log),
                          ("--failures-only", args.failures_only)):
        if value:
            raise ReplayError(f"{option} does not apply with --corpus, which judges by "
                              "tags and status")
    if not args.paths:
        raise ReplayError("--corpus needs the corpus PATHs, e.g. attack-corpus/")
    if args.url is not None:
        for option, value in (("--crs", args.crs), ("--rules", args.rules),
                              ("--paranoia", args.paranoia),
                              ("--builtin-rules/--no-builtin-rules", args.builtin_rules)):
            if value is not None and value != []:
                raise ReplayError(f"{option} configures the in-process gateway; with --url, "
                                  "the running gateway's own WAF settings apply")
    for path in args.rules:
        if not path.is_file():
            raise ReplayError(f"--rules {path}: no such file")
    for option, value in (("--min-detection", args.min_detection), ("--max-fp", args.max_fp)):
        if value is not None and not 0 <= value <= 100:
            raise ReplayError(f"{option}: expected a percentage from 0 to 100")


def plan_replay(args: argparse.Namespace) -> ReplayPlan:
    """Check the arguments and load everything; raises ReplayError or FtwError."""
    corpus: bool = args.corpus
    jobs: int = args.jobs if args.jobs is not None else (CORPUS_JOBS if corpus else 1)
    if jobs < 1:
        raise ReplayError("-j must be at least 1")
    if args.timeout <= 0:
        raise ReplayError("--timeout must be positive")
    if corpus:
        _check_corpus_args(args)
    else:
        _corpus_only(args)
    crs: Path | None = args.crs
    if crs is not None and not crs.is_dir():
        raise ReplayError(f"--crs {crs}: not a directory")
    paths = [Path(p) for p in args.paths]
    if not paths:
        if crs is None:
            raise ReplayError("give test PATHs or --crs CRS_DIR")
        paths = [crs / CRS_TESTS]
        if not paths[0].is_dir():
            raise ReplayError(f"--crs {crs}: no {CRS_TESTS} directory")

    url: str | None = args.url
    host, port, tls = "", 0, False
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReplayError(f"--url {url}: expected http://HOST[:PORT] or https://...")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ReplayError(f"--url {url}: {exc}") from exc
        host, tls = parts.hostname, parts.scheme == "https"
        if not corpus:
            if args.log is None:
                raise ReplayError("--url needs --log FILE: the log the gateway's WAF writes")
            if args.paranoia is not None:
                raise ReplayError("--paranoia configures the in-process gateway; with --url, "
                                  "set the paranoia level in the gateway's own CRS setup")
            if not args.log.parent.is_dir():
                raise ReplayError(f"--log {args.log}: no directory {args.log.parent}")

    files = load_test_files(paths)
    tests = list(iter_tests(files))
    cases: list[CorpusCase] = []
    unclassified: list[FtwTest] = []
    if corpus:
        for f in files:
            for test in f.tests:
                case = classify(test, f.meta.tags)
                if case is None:
                    unclassified.append(test)
                else:
                    cases.append(case)
        if tests and not cases:
            raise ReplayError(f"--corpus: none of the {len(tests)} tests is tagged 'attack' or "
                              "'benign' (see attack-corpus/README.md)")
    paranoia: int | None = args.paranoia
    if corpus and url is None and paranoia is None:
        paranoia = 1
    return ReplayPlan(
        tests=tests, files=len(files),
        include=_regex(args.include, "--include"), exclude=_regex(args.exclude, "--exclude"),
        overrides=load_overrides(args.overrides) if args.overrides is not None else None,
        url=url, host=host, port=port, tls=tls, log=args.log, crs=crs,
        paranoia=paranoia, jobs=jobs, timeout=args.timeout, json=args.json,
        failures_only=args.failures_only, corpus=corpus, cases=cases,
        unclassified=unclassified, rules=tuple(args.rules), builtin_rules=args.builtin_rules,
        format=args.format or "text", verbose=args.verbose,
        min_detection=args.min_detection, max_fp=args.max_fp)


# ---------------------------------------------------------------------------
# In-process targets
# ---------------------------------------------------------------------------


def _gateway_config(backend_port: int, waf: dict[str, Any], read_timeout: float
                    ) -> dict[str, Any]:
    return {
        "listeners": [{"address": "127.0.0.1:0"}],
        "access_log": {"enabled": False},
        # CRS's tests send what real attackers send: long URLs, many and
        # large headers, odd bodies. The WAF, not the front end, must judge.
        "limits": {"max_header_bytes": 1024 * 1024, "max_url_bytes": 64 * 1024,
                   "max_headers": 1000, "max_body_bytes": 0,
                   "client_header_timeout": read_timeout,
                   "client_body_timeout": read_timeout},
        "services": {"albedo": {"endpoints": [{"url": f"http://127.0.0.1:{backend_port}"}],
                                "retries": {"attempts": 0}}},
        "routes": [{"name": "all", "service": "albedo"}],
        "plugins": {"waf": waf},
    }


@contextlib.asynccontextmanager
async def _serving(runner: web.BaseRunner, waf: dict[str, Any], read_timeout: float
                   ) -> AsyncIterator[tuple[str, int]]:
    """Serve ``runner`` (the backend) on loopback and a Gateway with this ``waf`` plugin
    config in front of it; yields the gateway's address."""
    from proxy.config import ConfigError, parse_config
    from proxy.gateway import Gateway
    from proxy.supervisor import site_port

    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        config = _gateway_config(site_port(site), waf, read_timeout)
        try:
            gateway = Gateway(parse_config(yaml.safe_dump(config), "<replay>"))
            await gateway.start()
        except ConfigError as exc:  # e.g. a rule file that does not compile
            raise ReplayError(f"the in-process gateway does not start: {exc}") from None
        try:
            yield gateway.addresses[0]
        finally:
            await gateway.stop()
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def in_process_target(crs: Path | None, paranoia: int | None,
                            read_timeout: float = 3.0) -> AsyncIterator[Target]:
    """Bastion's own gateway, started in this process, in front of an albedo backend.

    The WAF is set up the way CRS's regression suite expects its engine under
    test (DetectionOnly, blocking paranoia 4 unless ``paranoia`` says otherwise,
    the 900005 setup rule and the 999999 log marker). Requests go over real
    loopback sockets, and the runner reads the WAF's audit log, as it would from
    a remote gateway.
    """
    from waf.engine import CRS_TEST_SETUP

    if crs is None:
        raise ReplayError("the in-process mode needs --crs CRS_DIR (the regression tests "
                          "expect CRS's test setup); to measure Bastion's rules use --corpus, "
                          "or run a gateway and pass --url URL --log FILE")
    crs_dir = os.path.abspath(crs)  # noqa: ASYNC240 - once, before serving
    with tempfile.TemporaryDirectory(prefix="bastion-replay-") as tmp:
        audit = Path(tmp) / "audit.log"
        audit.touch()
        waf: dict[str, Any] = {
            "mode": "detect", "crs": str(crs_dir), "audit_log": str(audit),
            "request_body_overflow": "inspect_prefix",
            "response_body": {"enabled": True,
                              "mime_types": ["text/plain", "text/html", "text/xml",
                                             "application/json"]},
        }
        if paranoia is None:
            waf["directives"] = CRS_TEST_SETUP
        else:
            waf["paranoia"] = paranoia
            waf["directives"] = CRS_TEST_SETUP.replace("blocking_paranoia_level=4",
                                                       f"blocking_paranoia_level={paranoia}")
        runner = web.AppRunner(albedo_app(), access_log=None)
        async with (_serving(runner, waf, read_timeout) as (host, port),
                    LiveTarget(host, port, audit, timeout=read_timeout) as target):
            yield target


async def _answer_200(request: web.BaseRequest) -> web.StreamResponse:
    while await request.content.readany():  # drain: any size, no limit
        pass
    return web.Response(status=200)


@contextlib.asynccontextmanager
async def corpus_target(*, crs: Path | None = None, rules: Sequence[Path] = (),
                        builtin_rules: bool | None = None, paranoia: int = 1,
                        read_timeout: float = 3.0) -> AsyncIterator[Target]:
    """Bastion's gateway in-process, with the ``waf`` plugin as a deployment would run
    it: blocking mode at ``paranoia``, with Bastion's rules (``builtin_rules``: default
    on unless ``crs`` or ``rules`` is given), CRS as shipped from ``crs`` and/or the
    ``rules`` files. The backend answers 200 to any method and path, so whatever the
    gateway refuses was refused by the gateway. Judged by status: no log is read.
    """
    waf: dict[str, Any] = {"mode": "block", "paranoia": paranoia}
    if crs is not None:
        waf["crs"] = os.path.abspath(crs)  # noqa: ASYNC240 - once, before serving
    if rules:
        waf["rules"] = [os.path.abspath(r) for r in rules]  # noqa: ASYNC240
    if builtin_rules is not None:
        waf["builtin_rules"] = builtin_rules
    runner = web.ServerRunner(web.Server(_answer_200), access_log=None)
    async with (_serving(runner, waf, read_timeout) as (host, port),
                StatusTarget(host, port, timeout=read_timeout) as target):
        yield target


def open_target(plan: ReplayPlan) -> AbstractAsyncContextManager[Target]:
    ssl_context = ssl.create_default_context() if plan.tls else None
    if plan.corpus:
        if plan.url is None:
            return corpus_target(crs=plan.crs, rules=plan.rules,
                                 builtin_rules=plan.builtin_rules, paranoia=plan.paranoia or 1,
                                 read_timeout=plan.timeout)
        return StatusTarget(plan.host, plan.port, timeout=plan.timeout, ssl=ssl_context)
    if plan.url is None:
        return in_process_target(plan.crs, plan.paranoia, plan.timeout)
    assert plan.log is not None
    return LiveTarget(plan.host, plan.port, plan.log, timeout=plan.timeout, ssl=ssl_context,
                      concurrency=plan.jobs)


# ---------------------------------------------------------------------------
# Corpus mode: classifying, judging, running
# ---------------------------------------------------------------------------

CaseType = Literal["attack", "benign"]
UNTAGGED = "untagged"


def _tag(tags: Iterable[str], prefix: str) -> str | None:
    return next((t[len(prefix):] for t in tags if t.startswith(prefix)), None)


@dataclass(frozen=True)
class CorpusCase:
    """A corpus test and what its tags say it is."""

    test: FtwTest
    type: CaseType
    group: str  # the family (attacks) or the kind (benign requests)
    placement: str = UNTAGGED
    encoding: str = UNTAGGED

    @property
    def id(self) -> str:
        return self.test.id


def classify(test: FtwTest, file_tags: Sequence[str] = ()) -> CorpusCase | None:
    """Read a test's corpus tags: ``attack`` or ``benign``, ``family:<name>`` (attacks)
    or ``kind:<name>`` (benign), ``placement:<where>``, ``encoding:<how>``. A tag the
    test lacks is taken from the file's ``meta.tags``. ``None``: neither attack nor
    benign."""
    types: set[str] = set()
    for tags in (test.tags, file_tags):
        types = {"attack", "benign"} & set(tags)
        if types:
            break
    if len(types) == 2:
        raise FtwFormatError(f"{test.file}: test {test.id}: tagged both attack and benign")
    if not types:
        return None
    kind: CaseType = "attack" if "attack" in types else "benign"
    prefix = "family:" if kind == "attack" else "kind:"

    def tag(name: str) -> str:
        return _tag(test.tags, name) or _tag(file_tags, name) or UNTAGGED

    return CorpusCase(test, kind, tag(prefix), tag("placement:"), tag("encoding:"))


# What the waf plugin's refusal bodies say (waf/plugin.py, WafPlugin._refuse).
WAF_REFUSAL_ERRORS = frozenset({"request blocked by the web application firewall",
                                "request body exceeds the WAF's SecRequestBodyLimit"})


def judge_response(result: StageResult) -> tuple[bool, tuple[int, ...]]:
    """Whether the WAF refused the request, and the rule ids its answer names.

    Refused: the waf plugin's refusal document (``{"error": "request blocked by the
    web application firewall", "rule_ids": [...]}``) with any status, which includes
    the 400 for a body the WAF cannot parse (rule 200002); or, from any gateway,
    status 403. Other statuses, including the front end's own 400 for malformed
    HTTP, are not the WAF's refusals.
    """
    if result.status is None:
        return False, ()
    _, sep, body = result.response.partition(b"\r\n\r\n")
    doc: Any = None
    if sep and body.lstrip().startswith(b"{"):
        with contextlib.suppress(ValueError):
            doc = json.loads(body)
    if isinstance(doc, dict) and doc.get("error") in WAF_REFUSAL_ERRORS:
        raw_ids = doc.get("rule_ids")
        ids = tuple(i for i in raw_ids if isinstance(i, int)) if isinstance(raw_ids, list) else ()
        return True, ids
    return result.status == 403, ()


Outcome = Literal["detected", "missed", "passed", "false-positive", "unexpected"]


@dataclass(frozen=True)
class CorpusResult:
    """How the gateway treated one corpus test: the stage that was refused, or else the
    last stage's status (``None``: no response, see ``error``)."""

    case: CorpusCase
    refused: bool
    status: int | None
    rule_ids: tuple[int, ...] = ()
    error: str | None = None
    duration: float = 0.0

    @property
    def outcome(self) -> Outcome:
        if self.case.type == "attack":
            return "detected" if self.refused else "missed"
        if self.refused:
            return "false-positive"
        return "unexpected" if self.status is None or self.status >= 400 else "passed"

    def note(self) -> str:
        """The answer in a few words: ``403 (1030100, 1900110)``, ``200``, ``no response: ...``."""
        if self.status is None:
            return f"no response: {self.error or 'unknown error'}"
        text = str(self.status)
        if self.rule_ids:
            text += f" ({', '.join(map(str, self.rule_ids))})"
        elif not self.refused and self.status >= 400:
            text += " (not from the WAF)"
        return text


async def judge_case(case: CorpusCase, target: Target) -> CorpusResult:
    """Send the test's stages in order until the WAF refuses one."""
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    for stage in case.test.stages:
        try:
            result = await target.run_stage(stage)
        except TargetError:
            raise
        except Exception as exc:  # a broken test must not end the run
            return CorpusResult(case, False, None, error=f"{type(exc).__name__}: {exc}",
                                duration=time.monotonic() - started)
        refused, ids = judge_response(result)
        if refused:
            return CorpusResult(case, True, result.status, ids,
                                duration=time.monotonic() - started)
        status, error = result.status, result.error
    return CorpusResult(case, False, status, error=error, duration=time.monotonic() - started)


async def run_corpus(cases: Sequence[CorpusCase], target: Target, *, concurrency: int = 1,
                     progress: Callable[[CorpusResult], None] | None = None
                     ) -> list[CorpusResult]:
    """Judge every case against ``target``, ``concurrency`` at a time; results keep the
    input order. A :class:`TargetError` aborts the run."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    results: list[CorpusResult | None] = [None] * len(cases)
    pending = iter(range(len(cases)))

    async def worker() -> None:
        for i in pending:  # shared: each case runs once
            result = results[i] = await judge_case(cases[i], target)
            if progress is not None:
                progress(result)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(cases)) or 1):
            group.create_task(worker())
    return [r for r in results if r is not None]


# ---------------------------------------------------------------------------
# Corpus mode: the report
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """``total`` tests of a group, ``refused`` of them refused by the WAF."""

    name: str
    total: int
    refused: int

    @property
    def rate(self) -> float | None:
        return self.refused / self.total if self.total else None


def _tally(results: Iterable[CorpusResult], key: Callable[[CorpusResult], str]
           ) -> list[Tally]:
    counts: dict[str, list[int]] = {}
    for r in results:
        entry = counts.setdefault(key(r), [0, 0])
        entry[0] += 1
        entry[1] += r.refused
    return [Tally(name, total, refused) for name, (total, refused) in sorted(counts.items())]


@dataclass
class CorpusReport:
    results: list[CorpusResult]
    setup: str  # what was measured, e.g. "Bastion rules, paranoia 1"
    duration: float = 0.0
    files: int = 0
    skipped: int = 0  # not selected by --include/--exclude
    unclassified: list[FtwTest] = field(default_factory=list)

    @property
    def attacks(self) -> list[CorpusResult]:
        return [r for r in self.results if r.case.type == "attack"]

    @property
    def benign(self) -> list[CorpusResult]:
        return [r for r in self.results if r.case.type == "benign"]

    def by(self, type_: CaseType, key: Literal["group", "placement", "encoding"]
           ) -> list[Tally]:
        return _tally((r for r in self.results if r.case.type == type_),
                      lambda r: str(getattr(r.case, key)))

    @property
    def detection(self) -> Tally:
        attacks = self.attacks
        return Tally("all", len(attacks), sum(r.refused for r in attacks))

    @property
    def false_positives(self) -> Tally:
        benign = self.benign
        return Tally("all", len(benign), sum(r.refused for r in benign))

    def outcomes(self, outcome: Outcome) -> list[CorpusResult]:
        return [r for r in self.results if r.outcome == outcome]

    def summary_line(self) -> str:
        d, f = self.detection, self.false_positives
        return (f"detection {_pct(d.rate)} ({d.refused}/{d.total}), "
                f"false positives {_pct(f.rate)} ({f.refused}/{f.total})")

    def threshold_failures(self, min_detection: float | None, max_fp: float | None
                           ) -> list[str]:
        """Why the run misses a ``--min-detection``/``--max-fp`` threshold (percent)."""
        out = []
        d, f = self.detection, self.false_positives
        if min_detection is not None:
            if d.rate is None:
                out.append("--min-detection: no attack tests were run")
            elif d.rate * 100 < min_detection:
                out.append(f"detection {_pct(d.rate)} is below --min-detection "
                           f"{min_detection:g}%")
        if max_fp is not None:
            if f.rate is None:
                out.append("--max-fp: no benign tests were run")
            elif f.rate * 100 > max_fp:
                out.append(f"false positives {_pct(f.rate)} are above --max-fp {max_fp:g}%")
        return out

    def to_json(self) -> dict[str, Any]:
        d, f = self.detection, self.false_positives

        def groups(tallies: list[Tally], total: str, refused: str) -> dict[str, Any]:
            return {t.name: {total: t.total, refused: t.refused, "pct": _pct_value(t.rate)}
                    for t in tallies}

        return {
            "mode": "corpus",
            "setup": self.setup,
            "summary": {
                "attacks": d.total, "detected": d.refused, "detection_pct": _pct_value(d.rate),
                "benign": f.total, "false_positives": f.refused,
                "false_positive_pct": _pct_value(f.rate),
                "unexpected": len(self.outcomes("unexpected")),
                "unclassified": len(self.unclassified), "skipped": self.skipped,
                "files": self.files, "duration_s": round(self.duration, 3),
            },
            "families": groups(self.by("attack", "group"), "attacks", "detected"),
            "kinds": groups(self.by("benign", "group"), "requests", "refused"),
            "placements": groups(self.by("attack", "placement"), "attacks", "detected"),
            "encodings": groups(self.by("attack", "encoding"), "attacks", "detected"),
            "tests": [
                {"id": r.case.id, "file": str(r.case.test.file) if r.case.test.file else None,
                 "desc": r.case.test.desc, "type": r.case.type,
                 ("family" if r.case.type == "attack" else "kind"): r.case.group,
                 "placement": r.case.placement, "encoding": r.case.encoding,
                 "outcome": r.outcome, "status": r.status, "rule_ids": list(r.rule_ids),
                 "error": r.error, "duration_ms": round(r.duration * 1000, 1)}
                for r in self.results
            ],
            "unclassified": [t.id for t in self.unclassified],
        }


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def _pct_value(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 2)


def _one_line(text: str, limit: int = 100) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _tables(report: CorpusReport, verbose: bool
            ) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table; the last row of each is the total."""

    def rows(tallies: list[Tally], total: Tally) -> list[list[str]]:
        return [[t.name, str(t.total), str(t.refused), _pct(t.rate)]
                for t in [*tallies, total]]

    d, f = report.detection, report.false_positives
    tables = [("Detection by family", ["family", "attacks", "detected", "detection"],
               rows(report.by("attack", "group"), d)),
              ("False positives by kind", ["kind", "requests", "refused", "false positives"],
               rows(report.by("benign", "group"), f))]
    if verbose:
        tables += [(f"Detection by {key}", [key, "attacks", "detected", "detection"],
                    rows(report.by("attack", key), d))
                   for key in ("placement", "encoding")]
    return tables


def _lists(report: CorpusReport, verbose: bool
           ) -> list[tuple[str, list[CorpusResult], int]]:
    """(title, results to list, how many there are in all)."""
    out = []
    kinds: tuple[tuple[str, Outcome], ...] = (
        ("Missed attacks", "missed"), ("False positives", "false-positive"),
        ("Unexpected answers to benign requests (neither let through nor refused by the WAF)",
         "unexpected"))
    for title, outcome in kinds:
        found = report.outcomes(outcome)
        if found:
            out.append((title, found if verbose else found[:LIST_LIMIT], len(found)))
    return out


def _headline(report: CorpusReport) -> str:
    d, f = report.detection, report.false_positives
    text = (f"{report.setup}: {d.total} attacks and {f.total} benign requests "
            f"from {report.files} files in {report.duration:.1f}s")
    extra = []
    if report.skipped:
        extra.append(f"{report.skipped} not selected")
    if report.unclassified:
        extra.append(f"{len(report.unclassified)} tagged neither attack nor benign, not run")
    return text + (f" ({'; '.join(extra)})" if extra else "")


def render_text(report: CorpusReport, verbose: bool = False) -> str:
    lines = [_headline(report)]
    for title, header, rows in _tables(report, verbose):
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines += ["", title]
        for row in [header, *rows]:
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                                 zip(row[1:], widths[1:], strict=True)]
            lines.append("  " + "  ".join(cells).rstrip())
    for title, listed, total in _lists(report, verbose):
        more = f"; the first {len(listed)}, --verbose for all" if len(listed) < total else ""
        lines += ["", f"{title}: {total}{more}"]
        rows = [[r.case.id, r.case.group, f"{r.case.placement}/{r.case.encoding}", r.note(),
                 _one_line(r.case.test.desc)] for r in listed]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + row[4:]
            lines.append(("  " + "  ".join(cells)).rstrip())
    lines += ["", report.summary_line()]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _md_code(text: str) -> str:
    """``text`` as a Markdown code span, whatever backticks it holds."""
    text = _one_line(text)
    if not text:
        return ""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_markdown(report: CorpusReport, verbose: bool = False) -> str:
    lines = [f"{_headline(report)}."]
    for title, header, rows in _tables(report, verbose):
        lines += ["", f"**{title}**", "",
                  "| " + " | ".join(header) + " |",
                  "| --- |" + " ---: |" * (len(header) - 1)]
        for i, row in enumerate(rows):
            cells = [_md_cell(c) for c in row]
            if i == len(rows) - 1:
                cells = [f"**{c}**" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
    for title, listed, total in _lists(report, verbose):
        more = f", the first {len(listed)}" if len(listed) < total else ""
        lines += ["", f"**{title}** ({total}{more}):", ""]
        for r in listed:
            desc = _md_code(r.case.test.desc)
            lines.append(f"- `{r.case.id}` {_md_cell(r.case.group)}, {r.case.placement}, "
                         f"{r.case.encoding}: {r.note()}" + (f" — {desc}" if desc else ""))
    lines += ["", report.summary_line() + "."]
    return "\n".join(lines) + "\n"


def describe_setup(plan: ReplayPlan) -> str:
    """What corpus mode measures, in a few words."""
    if plan.url is not None:
        return f"the gateway at {plan.url}"
    builtin = plan.builtin_rules
    if builtin is None:
        builtin = plan.crs is None and not plan.rules
    parts = []
    if builtin:
        parts.append("Bastion rules")
    if plan.crs is not None:
        parts.append(_crs_name(plan.crs))
    parts += [r.name for r in plan.rules]
    return f"{' + '.join(parts) or 'no rules'}, paranoia {plan.paranoia or 1}"


def _crs_name(crs: Path) -> str:
    for path in sorted((crs / "rules").glob("*.conf")):
        with contextlib.suppress(OSError):
            found = re.search(r"ver:'OWASP_CRS/([^']+)'", path.read_text(errors="replace"))
            if found:
                return f"OWASP CRS {found.group(1)}"
    return "OWASP CRS"


class _Progress:
    """A count on ``err`` every tenth of the run (a redrawn line on a terminal)."""

    def __init__(self, total: int, err: IO[str]) -> None:
        self.total, self.err, self.done, self.refused = total, err, 0, 0
        self.tty = err.isatty()
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, result: CorpusResult) -> None:
        self.done += 1
        self.refused += result.refused
        status = (f"{self.done}/{self.total} tests, {self.refused} refused, "
                  f"{time.monotonic() - self.started:.1f}s")
        if self.tty:
            now = time.monotonic()
            if now - self._last >= 0.1 or self.done == self.total:
                self._last = now
                end = "\n" if self.done == self.total else ""
                self.err.write(f"\r\x1b[Kprogress: {status}{end}")
                self.err.flush()
        elif self.done % max(1, self.total // 10) == 0 or self.done == self.total:
            print(f"progress: {status}", file=self.err, flush=True)


async def replay_corpus(plan: ReplayPlan) -> int:
    cases = [c for c in plan.cases if is_selected(c.id, plan.include, plan.exclude)]
    unclassified = [t for t in plan.unclassified
                    if is_selected(t.id, plan.include, plan.exclude)]
    skipped = len(plan.cases) + len(plan.unclassified) - len(cases) - len(unclassified)
    where = plan.url or "the in-process gateway"
    print(f"replaying {len(cases)} corpus tests from {plan.files} files against {where}",
          file=sys.stderr, flush=True)
    if unclassified:
        shown = ", ".join(t.id for t in unclassified[:10])
        print(f"warning: {len(unclassified)} tests are tagged neither 'attack' nor "
              f"'benign' and are not run: {shown}"
              + (", ..." if len(unclassified) > 10 else ""), file=sys.stderr)
    started = time.monotonic()
    async with open_target(plan) as target:
        if plan.url is None:
            print(f"gateway ready in {time.monotonic() - started:.1f}s", file=sys.stderr,
                  flush=True)
        started = time.monotonic()
        results = await run_corpus(cases, target, concurrency=plan.jobs,
                                   progress=_Progress(len(cases), sys.stderr))
        duration = time.monotonic() - started
    report = CorpusReport(results, describe_setup(plan), duration,
                          files=plan.files, skipped=skipped, unclassified=unclassified)
    render = render_markdown if plan.format == "markdown" else render_text
    sys.stdout.write(render(report, plan.verbose))
    sys.stdout.flush()
    if plan.json is not None:
        plan.json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    failures = report.threshold_failures(plan.min_detection, plan.max_fp)
    for failure in failures:
        print(f"bastion replay: {failure}", file=sys.stderr)
    return 1 if failures else 0


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


async def replay(plan: ReplayPlan) -> int:
    if plan.corpus:
        return await replay_corpus(plan)
    target_context = open_target(plan)
    where = plan.url or "the in-process gateway"
    print(f"replaying {len(plan.tests)} tests from {plan.files} files against {where}",
          file=sys.stderr, flush=True)
    reporter = ConsoleReporter(failures_only=plan.failures_only)
    async with target_context as target:
        run = await run_tests(plan.tests, target, include=plan.include, exclude=plan.exclude,
                              overrides=plan.overrides, concurrency=plan.jobs,
                              reporter=reporter)
    reporter.end(run)
    if plan.json is not None:
        write_json_report(run, plan.json)
    return 0 if run.failed == 0 else 1


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        plan = plan_replay(args)
        return asyncio.run(replay(plan))
    except (ReplayError, FtwError) as exc:  # TargetError included
        prefix = "aborted: " if isinstance(exc, TargetError) else ""
        print(f"bastion replay: {prefix}{exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the JSON report cannot be written
        print(f"bastion replay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bastion replay: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m waf.replay ARGS`` is ``bastion replay ARGS``."""
    parser = argparse.ArgumentParser(prog="bastion")
    add_replay_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["replay", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
