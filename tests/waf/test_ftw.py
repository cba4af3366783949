"""go-ftw format, request building, checks, overrides, the live runner and albedo."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from waf import ftw
from waf.albedo import albedo_app
from waf.ftw import (
    ConsoleReporter,
    FtwFormatError,
    FtwTest,
    LiveTarget,
    LogExpectation,
    Overrides,
    Stage,
    StageInput,
    StageOutput,
    StageResult,
    build_request,
    check_stage,
    extract_rule_ids,
    load_overrides,
    load_test_file,
    load_test_files,
    run_tests,
)
from waf.replay import main as replay_main

CRS = Path(__file__).resolve().parents[3] / "shared" / "crs"
CRS_TESTS = CRS / "tests" / "regression" / "tests"
needs_crs = pytest.mark.skipif(not CRS_TESTS.is_dir(),
                               reason=f"the CRS checkout is not at {CRS}")

ACCEPT = ("text/xml,application/xml,application/xhtml+xml,text/html;q=0.9,text/plain;q=0.8,"
          "image/png,*/*;q=0.5")


def crs_stage(relative: str, test_id: int, stage: int = 0) -> Stage:
    loaded = load_test_file(CRS_TESTS / relative)
    test = next(t for t in loaded.tests if t.test_id == test_id)
    return test.stages[stage]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------
# Request building: real CRS stages, byte for byte
# ---------------------------------------------------------------------------


@needs_crs
@pytest.mark.parametrize(("relative", "test_id", "expected"), [
    pytest.param(  # map headers sorted by name, then Connection: close
        "REQUEST-911-METHOD-ENFORCEMENT/911100.yaml", 1,
        b"GET /get HTTP/1.1\r\n"
        b"Accept: " + ACCEPT.encode() + b"\r\n"
        b"Host: localhost\r\n"
        b"User-Agent: OWASP CRS test agent\r\n"
        b"Connection: close\r\n\r\n",
        id="911100-1 GET"),
    pytest.param(  # data without a Content-Type: urlencoded added, pairs encoded
        "REQUEST-942-APPLICATION-ATTACK-SQLI/942100.yaml", 1,
        b"POST /post HTTP/1.1\r\n"
        b"Accept: " + ACCEPT.encode() + b"\r\n"
        b"Host: localhost\r\n"
        b"User-Agent: OWASP CRS test agent\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Connection: close\r\n"
        b"Content-Length: 17\r\n\r\n"
        b"var=1234+OR+1%3D1",
        id="942100-1 form data"),
    pytest.param(  # multipart: every \n becomes \r\n before Content-Length is counted
        "REQUEST-922-MULTIPART-ATTACK/922110.yaml", 1,
        b"POST / HTTP/1.1\r\n"
        b"Content-Type: multipart/form-data; boundary=----WebKitFormBoundary\r\n"
        b"Host: localhost\r\n"
        b"User-Agent: OWASP CRS Tests\r\n"
        b"Connection: close\r\n"
        b"Content-Length: 175\r\n\r\n"
        b"------WebKitFormBoundary\r\n"
        b'Content-Disposition: form-data; name="username"\r\n'
        b"Content-Type: text/plain; charset=utf-7\r\n\r\n"
        b"+ADw-img+ACA-src+AD0-x+AD4-\r\n"
        b"------WebKitFormBoundary--\r\n",
        id="922110-1 multipart"),
    pytest.param(  # autocomplete_headers: false: nothing added, data left alone
        "REQUEST-920-PROTOCOL-ENFORCEMENT/920460.yaml", 1,
        b"POST / HTTP/1.1\r\n"
        b"Accept: " + ACCEPT.encode() + b"\r\n"
        b"Content-Length: 22\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Host: localhost\r\n"
        b"User-Agent: OWASP CRS test agent\r\n\r\n"
        b"file=cat+/etc/\\passw\\d",
        id="920460-1 no autocomplete"),
    pytest.param(  # junk methods are sent as written
        "REQUEST-920-PROTOCOL-ENFORCEMENT/920100.yaml", 12,
        b"\tGET /get HTTP/1.1\r\n"
        b"Accept: " + ACCEPT.encode() + b"\r\n"
        b"Host: localhost\r\n"
        b"Keep-Alive: 300\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"User-Agent: OWASP CRS test agent\r\n"
        b"Connection: close\r\n\r\n",
        id="920100-12 tab method"),
    pytest.param(  # an empty version leaves "GET / " + CRLF
        "REQUEST-920-PROTOCOL-ENFORCEMENT/920430.yaml", 5,
        b"GET / \r\n"
        b"Accept: " + ACCEPT.encode() + b"\r\n"
        b"Host: localhost\r\n"
        b"User-Agent: OWASP CRS test agent\r\n"
        b"Connection: close\r\n\r\n",
        id="920430-5 empty version"),
])
def test_crs_requests_are_built_byte_exact(relative: str, test_id: int, expected: bytes) -> None:
    assert build_request(crs_stage(relative, test_id).input) == expected


@needs_crs
def test_encoded_request_is_sent_as_decoded() -> None:
    stage = crs_stage("REQUEST-920-PROTOCOL-ENFORCEMENT/920620.yaml", 1)
    assert stage.input.encoded_request is not None
    raw = build_request(stage.input)
    assert raw == base64.b64decode(stage.input.encoded_request)
    assert raw.startswith(b"GET /get HTTP/1.1\r\nHost: localhost\r\n")
    assert raw.count(b"Content-Type:") == 2 and raw.endswith(b"\r\n\r\n")


@needs_crs
def test_data_templates_are_rendered() -> None:
    stage = crs_stage("REQUEST-920-PROTOCOL-ENFORCEMENT/920400.yaml", 1)
    raw = build_request(stage.input)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 64200\r\n" in head  # the test's own header is kept
    assert b"\r\n" + b"1" * 64200 + b"\r\n----------111111111--\r\n" in body


@pytest.mark.parametrize(("inp", "expected"), [
    (StageInput(), b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
    # methods that usually carry a body get Content-Length: 0; go-ftw's regex
    # `^POST|PUT|PATCH|DELETE$` also matches PUT or PATCH anywhere
    (StageInput(method="DELETE"), b"DELETE / HTTP/1.1\r\nConnection: close\r\n"
                                  b"Content-Length: 0\r\n\r\n"),
    (StageInput(method="XPUTX"), b"XPUTX / HTTP/1.1\r\nConnection: close\r\n"
                                 b"Content-Length: 0\r\n\r\n"),
    (StageInput(method="DELETEX"), b"DELETEX / HTTP/1.1\r\nConnection: close\r\n\r\n"),
    # already-encoded data (a % or a +) is left alone; a trailing & is dropped
    (StageInput(method="POST", data="a=%41 b"),
     b"POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
     b"Connection: close\r\nContent-Length: 7\r\n\r\na=%41 b"),
    (StageInput(method="POST", data="k=a b&flag&x=<y>&"),
     b"POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
     b"Connection: close\r\nContent-Length: 20\r\n\r\nk=a+b&flag&x=%3Cy%3E"),
    # a Content-Type in any case counts; a JSON body is not encoded
    (StageInput(method="POST", headers={"content-type": "application/json"},
                data='{"a": "b c"}'),
     b'POST / HTTP/1.1\r\ncontent-type: application/json\r\nConnection: close\r\n'
     b'Content-Length: 12\r\n\r\n{"a": "b c"}'),
    # Connection and Content-Length given by the test are not added again
    (StageInput(method="POST", headers={"Connection": "keep-alive", "Content-Length": "99"},
                data="x"),
     b"POST / HTTP/1.1\r\nConnection: keep-alive\r\nContent-Length: 99\r\n"
     b"Content-Type: application/x-www-form-urlencoded\r\n\r\nx"),
    (StageInput(method="POST", encoded_data=base64.b64encode(b"\x00\xffa=b").decode()),
     b"POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
     b"Connection: close\r\nContent-Length: 9\r\n\r\n%00%FFa=b"),
    (StageInput(method="JUNK", uri="/a b", version="HTTP\\1.0",
                ordered_headers=(ftw.HeaderTuple("B", "1"), ftw.HeaderTuple("A", "2"),
                                 ftw.HeaderTuple("B", "3")), autocomplete_headers=False),
     b"JUNK /a b HTTP\\1.0\r\nB: 1\r\nA: 2\r\nB: 3\r\n\r\n"),
])
def test_request_building_rules(inp: StageInput, expected: bytes) -> None:
    assert build_request(inp) == expected


def test_marker_request_matches_go_ftw() -> None:
    assert ftw.marker_request("1-2-x-start") == (
        b"GET /status/200 HTTP/1.1\r\nAccept: */*\r\nUser-Agent: bastion-replay\r\n"
        b"Host: localhost\r\nX-CRS-Test: 1-2-x-start\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("plain {not a template}", "plain {not a template}"),
    ('a{{ "x" | repeat 3 }}b', "axxxb"),
    ('{{ repeat 2 "ab" }}', "abab"),
    ("a  {{- `raw` -}}  b", "arawb"),
    ("a{{/* comment */}}b", "ab"),
])
def test_data_template_subset(text: str, expected: str) -> None:
    assert ftw.render_data_template(text) == expected


def test_unsupported_template_is_a_load_error(tmp_path: Path) -> None:
    path = write(tmp_path, "1.yaml", "rule_id: 1\ntests:\n- test_id: 1\n  stages:\n"
                 "  - input: {data: '{{ now }}'}\n    output: {}\n")
    with pytest.raises(FtwFormatError, match=r"1\.yaml: test 1-1: stages\[0\]: input.*now"):
        load_test_file(path)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


@needs_crs
def test_whole_crs_suite_loads() -> None:
    files = load_test_files([CRS_TESTS])
    tests = list(ftw.iter_tests(files))
    assert len(files) == 323  # 322 .yaml and REQUEST-999.../999999.yml
    assert any(f.path.suffix == ".yml" for f in files)
    assert len(tests) == 5082
    assert ftw.stage_count(tests) == 5088
    assert len({t.id for t in tests}) == 5082
    assert [f.path for f in files] == sorted(f.path for f in files)
    # header values YAML would read as numbers stay the strings go-ftw sends
    assert any(s.input.headers.get("Content-Length") == "0"
               for t in tests for s in t.stages)


def test_loader_fields_aliases_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "sub/942999.yml", """
meta: {author: me, name: demo}
tests:
  - id: 7
    description: v3 names
    stages:
      - input:
          headers: {Content-Length: 010, X-Flag: yes}
          port: "8080"
        output:
          status: [200, 403]
          log: {expect_ids: [1, "2"]}
  - desc: position gives the id
    stages:
      - stage:
          input: {stop_magic: true}
          output: {log_contains: 'id "1"', expect_error: true}
""")
    loaded = load_test_file(path)
    assert loaded.rule_id == 942999  # from the file name when rule_id is absent
    first, second = loaded.tests
    assert (first.id, first.description) == ("942999-7", "v3 names")
    assert first.stages[0].input.headers == {"Content-Length": "010", "X-Flag": "yes"}
    assert first.stages[0].input.port == 8080
    assert first.stages[0].output.status == (200, 403)
    assert first.stages[0].output.log.expect_ids == (1, 2)
    assert second.id == "942999-2"
    assert not second.stages[0].input.autocomplete_headers
    assert second.stages[0].output.log.match_regex == 'id "1"'
    assert second.stages[0].output.expect_error
    assert load_test_files([tmp_path])[0].path == path


@pytest.mark.parametrize(("text", "message"), [
    ("rule_id: 1\ntests: [\n", r"bad\.yaml:\d+:\d+: malformed YAML"),
    ("rule_id: 1\ntests:\n- test_id: 1\n  stages:\n  - input: {}\n    outptu: {}\n",
     r"bad\.yaml: test 1-1: stages\[0\]: unknown field\(s\): outptu"),
    ("rule_id: 1\ntests:\n- test_id: 1\n  stages:\n  - input: {headers: {A: 1, A: 2}}\n"
     "    output: {}\n", r"bad\.yaml:\d+:\d+: malformed YAML: found duplicate key 'A'"),
    ("rule_id: 1\ntests:\n- test_id: 1\n  stages:\n  - input: {}\n"
     "    output: {log: {match_regex: '('}}\n", r"bad\.yaml: .*match_regex: invalid regex"),
    ("rule_id: x\ntests: []\n", r"bad\.yaml: rule_id: expected an integer"),
    ("- just a list\n", r"bad\.yaml: expected a mapping"),
])
def test_malformed_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(FtwFormatError, match=message):
        load_test_files([tmp_path])
    with pytest.raises(FtwFormatError) as exc:
        load_test_file(path)
    assert str(exc.value).startswith(str(path))


def test_empty_file_has_no_tests(tmp_path: Path) -> None:
    assert load_test_file(write(tmp_path, "920539.yaml", "# all commented out\n")).tests == ()


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FtwFormatError, match="no such file"):
        load_test_files([tmp_path / "nope"])


# ---------------------------------------------------------------------------
# Checks and log parsing
# ---------------------------------------------------------------------------


def test_rule_ids_from_text_json_and_audit_logs() -> None:
    lines = [
        '[client 1.2.3.4] ModSecurity: Warning. [file "x.conf"] [line "1"] [id "942100"] '
        '[msg "SQLi"]',
        '{"transaction":{"messages":[{"details":{"ruleId":"920350"}}]}}',
        '{"rule":{"id":941100,"file":"x"}}',
        '{"audit_data":"[id \\"932100\\"] [msg \\"x\\"]"}',
        '{"transaction_id":"5f2a","request_line":"GET /?id=77 HTTP/1.1",'
        '"matched":[{"id":913100,"msg":"scanner"},{"id":"949110"}]}',
        '{"id":"3f2a9c"}',  # not a rule id
    ]
    assert extract_rule_ids(lines) == {942100, 920350, 941100, 932100, 913100, 949110}


def result(status: int | None = 200, ids: tuple[int, ...] = (), lines: tuple[str, ...] = (),
           **kw: Any) -> StageResult:
    lines = lines or tuple(json.dumps({"matched": [{"id": i}]}) for i in ids)
    return StageResult(status=status, log_lines=lines, **kw)


@pytest.mark.parametrize(("output", "observed", "failure"), [
    (StageOutput(log=LogExpectation(expect_ids=(1, 2))), result(ids=(1, 2, 3)), None),
    (StageOutput(log=LogExpectation(expect_ids=(1, 2))), result(ids=(1,)),
     "expected id(s) 2 not logged (logged: 1)"),
    (StageOutput(log=LogExpectation(no_expect_ids=(5,))), result(ids=(1,)), None),
    (StageOutput(log=LogExpectation(no_expect_ids=(5, 1))), result(ids=(1,)),
     "unexpected id(s) 1 logged"),
    (StageOutput(log=LogExpectation(match_regex=r"found within ARGS:x")),
     result(lines=('[id "1"] Matched Data: a found within ARGS:x: a',)), None),
    (StageOutput(log=LogExpectation(match_regex=r"ARGS:y")), result(lines=("x",)),
     "no log line matches 'ARGS:y'"),
    (StageOutput(log=LogExpectation(no_match_regex=r'\[id "\d+"\]')),
     result(lines=('[id "7"]',)), "a log line matches"),
    (StageOutput(status=(403,)), result(status=200), "status 200, expected 403"),
    (StageOutput(status=(400, 403)), result(status=403), None),
    (StageOutput(response_contains="blocked"), result(response=b"HTTP/1.1 403\r\n\r\nblocked"),
     None),
    (StageOutput(response_contains="blocked"), result(response=b"HTTP/1.1 200\r\n\r\nok"),
     "response does not match 'blocked'"),
    (StageOutput(expect_error=True), result(status=None, error="connection closed"), None),
    (StageOutput(expect_error=True), result(status=200),
     "expected a transport error, got status 200"),
    (StageOutput(), result(status=None, error="no response within 3s"),
     "request failed: no response within 3s"),
    (StageOutput(log=LogExpectation(expect_ids=(1,))), result(log_error="end marker x"),
     "end marker x"),
    (StageOutput(status=(200,)), result(log_error="end marker x"), None),
    (StageOutput(log=LogExpectation(expect_ids=(1,)), isolated=True), result(ids=(1, 2)),
     "isolated test logged other ids too: 1, 2"),
])
def test_check_stage(output: StageOutput, observed: StageResult, failure: str | None) -> None:
    reason = check_stage(output, observed)
    if failure is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(failure)


# ---------------------------------------------------------------------------
# Overrides, include/exclude, the runner (with an in-memory target)
# ---------------------------------------------------------------------------


def make_test(rule_id: int, test_id: int, *outputs: StageOutput) -> FtwTest:
    stages = tuple(Stage(rule_id, test_id, i, StageInput(uri=f"/{rule_id}/{test_id}/{i}"), o)
                   for i, o in enumerate(outputs or (StageOutput(),)))
    return FtwTest(rule_id, test_id, stages)


class ScriptedTarget:
    """Answers each stage with the ids listed for its URI; records what ran."""

    def __init__(self, ids: dict[str, tuple[int, ...]] | None = None) -> None:
        self.ids = ids or {}
        self.ran: list[str] = []

    async def run_stage(self, stage: Stage) -> StageResult:
        uri = stage.input.uri or "/"
        self.ran.append(uri)
        return result(ids=self.ids.get(uri, ()))


expect_1 = StageOutput(log=LogExpectation(expect_ids=(1,)))


async def test_overrides_replace_outputs_or_force_passes(tmp_path: Path) -> None:
    path = write(tmp_path, "overrides.yaml", """
version: v0.0.0
meta: {engine: bastion, platform: aiohttp, annotations: [{purpose: tests}]}
test_overrides:
  - rule_id: 100
    test_ids: [1]
    reason: replaced
    output: {log: {no_expect_ids: [1]}}
  - rule_id: 100
    test_ids: [2]
    reason: not supported yet
  - rule_id: 200
    stage_ids: [1]
    reason: second stage only
    output: {}
""")
    overrides = load_overrides(path)
    assert (overrides.engine, len(overrides.entries)) == ("bastion", 3)
    tests = [make_test(100, 1, expect_1), make_test(100, 2, expect_1),
             make_test(100, 3, expect_1), make_test(200, 9, expect_1, expect_1)]
    target = ScriptedTarget()  # logs nothing: every original expectation fails
    run = await run_tests(tests, target, overrides=overrides)
    outcome = {c.id: (c.outcome, c.reason) for c in run.cases}
    assert outcome["100-1"] == ("passed", "")  # output replaced: now expects no id 1
    assert outcome["100-2"] == ("passed", "override: not supported yet")
    assert outcome["100-3"][0] == "failed"
    assert outcome["200-9"][0] == "failed"
    assert outcome["200-9"][1].startswith("stage 1/2: expected id(s) 1")
    assert "/100/2/0" not in target.ran  # a forced pass is not run
    assert run.cases[3].stages[1].passed  # stage 1 of 200-9 checks nothing now


@needs_crs
def test_crs_coraza_overrides_load() -> None:
    overrides = load_overrides(CRS / "tests" / "regression" / "coraza-overrides.yaml")
    assert len(overrides.entries) == 9  # as the notes count them
    forced = [(e.rule_id, e.test_ids) for e in overrides.entries if e.output is None]
    assert forced == [(932200, (13,)), (934131, (5, 7))]
    stage = Stage(920430, 8, 0, StageInput(), expect_1)
    replaced, reason = overrides.apply(stage)
    assert reason is None and replaced.output.status == (505,)
    assert replaced.output.log.no_expect_ids == (920430,)


@pytest.mark.parametrize(("include", "exclude", "selected"), [
    (None, None, ["1-1", "1-2", "12-1", "2-1"]),
    (r"^1-", None, ["1-1", "1-2"]),
    (None, r"^1-", ["12-1", "2-1"]),
    (r"^1-1$", r"^1-", ["1-1"]),  # include wins over exclude
    (None, r"-1$", ["1-2"]),
])
async def test_include_exclude(include: str | None, exclude: str | None,
                               selected: list[str]) -> None:
    tests = [make_test(1, 1), make_test(1, 2), make_test(12, 1), make_test(2, 1)]
    run = await run_tests(tests, ScriptedTarget(),
                          include=re.compile(include) if include else None,
                          exclude=re.compile(exclude) if exclude else None)
    assert [c.id for c in run.cases if c.outcome == "passed"] == selected
    skipped = len(tests) - len(selected)
    assert run.summary_line() == (f"{len(selected)} passed, 0 failed"
                                  + (f", {skipped} skipped" if skipped else ""))


async def test_retry_once_and_concurrency_keep_order() -> None:
    class Flaky(ScriptedTarget):
        async def run_stage(self, stage: Stage) -> StageResult:
            uri = stage.input.uri or "/"
            self.ran.append(uri)
            return result(ids=(1,) if self.ran.count(uri) > 1 else ())

    retrying = StageOutput(log=LogExpectation(expect_ids=(1,)), retry_once=True)
    tests = [make_test(5, i, retrying if i % 2 else expect_1) for i in range(1, 9)]
    run = await run_tests(tests, Flaky(), concurrency=4)
    assert [c.id for c in run.cases] == [t.id for t in tests]
    assert [c.outcome for c in run.cases] == ["passed", "failed"] * 4
    assert run.cases[0].stages[0].retried


# ---------------------------------------------------------------------------
# End to end: LiveTarget against a small fake WAF that logs JSON lines
# ---------------------------------------------------------------------------


def fake_waf(log_path: Path) -> web.Application:
    """Logs one JSON line per request (before answering): the X-CRS-Test value as the
    message, and rule 1 matched when the query contains "attack" (then 403)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        marker = request.headers.get("X-CRS-Test")
        attack = "attack" in request.query_string
        if request.path == "/drop":
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPBadRequest()
        record: dict[str, Any] = {"msg": marker or f"{request.method} {request.path_qs}",
                                  "matched": [{"id": 1, "msg": "attack"}] if attack else []}
        if marker:
            record["matched"] = [{"id": 999999, "msg": marker}]
        with log_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        return web.Response(status=403 if attack else 200, text="blocked" if attack else "ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


SUITE = """
rule_id: 1
tests:
  - test_id: 1
    desc: attack logged
    stages:
      - input: {uri: "/?q=attack", headers: {Host: localhost}}
        output: {log: {expect_ids: [1]}}
  - test_id: 2
    desc: clean request, nothing logged
    stages:
      - input: {uri: "/?q=hello", headers: {Host: localhost}}
        output: {log: {no_expect_ids: [1]}}
  - test_id: 3
    desc: expects an id that is not logged (fails)
    stages:
      - input: {uri: "/?q=hello", headers: {Host: localhost}}
        output: {log: {expect_ids: [1]}}
  - test_id: 4
    desc: status and response body
    stages:
      - input: {method: POST, uri: "/?q=attack", data: "a=b", headers: {Host: localhost}}
        output: {status: 403, response_contains: "block+ed", log: {match_regex: '"id": 1\\b'}}
  - test_id: 5
    desc: wrong status (fails)
    stages:
      - input: {uri: "/?q=attack", headers: {Host: localhost}}
        output: {status: 200}
  - test_id: 6
    desc: two stages, the second one logs nothing
    stages:
      - input: {uri: "/?q=attack", headers: {Host: localhost}}
        output: {log: {expect_ids: [1]}}
      - input: {uri: "/two", headers: {Host: localhost}}
        output: {log: {no_expect_ids: [1, 999999]}}
  - test_id: 7
    desc: the connection is dropped
    stages:
      - input: {uri: "/drop", headers: {Host: localhost}}
        output: {expect_error: true}
"""
EXPECTED = {"1-1": "passed", "1-2": "passed", "1-3": "failed", "1-4": "passed",
            "1-5": "failed", "1-6": "passed", "1-7": "passed"}


@pytest.fixture
async def waf_server(tmp_path: Path, upstream: Callable[..., Awaitable[str]]
                     ) -> tuple[str, int, Path]:
    log_path = tmp_path / "waf.log"
    log_path.write_text('{"msg": "an old line", "matched": [{"id": 1}]}\n')
    url = await upstream(fake_waf(log_path))
    host, port = url.removeprefix("http://").split(":")
    return host, int(port), log_path


@pytest.mark.parametrize("jobs", [1, 3])
async def test_live_target_end_to_end(tmp_path: Path, waf_server: tuple[str, int, Path],
                                      jobs: int) -> None:
    host, port, log_path = waf_server
    tests = list(load_test_file(write(tmp_path, "suite/1.yaml", SUITE)).tests)
    out, err = io.StringIO(), io.StringIO()
    reporter = ConsoleReporter(out, err)
    async with LiveTarget(host, port, log_path, concurrency=jobs) as target:
        run = await run_tests(tests, target, concurrency=jobs, reporter=reporter)
    reporter.end(run)
    assert {c.id: c.outcome for c in run.cases} == EXPECTED
    lines = out.getvalue().splitlines()
    assert lines[-1] == "5 passed, 2 failed"
    assert "FAIL 1-3: expected id(s) 1 not logged (logged: none)" in lines
    assert "FAIL 1-5: status 403, expected 200" in lines
    assert "progress: 7/7 tests" in err.getvalue()
    by_id = {c.id: c for c in run.cases}
    assert by_id["1-1"].stages[0].rule_ids == (1,)  # 999999 marker lines are not counted
    assert by_id["1-4"].stages[0].status == 403


async def test_probe_fails_when_markers_are_not_logged(tmp_path: Path,
                                                       waf_server: tuple[str, int, Path]
                                                       ) -> None:
    host, port, _ = waf_server
    target = LiveTarget(host, port, tmp_path / "other.log", marker_polls=(0, 0.01),
                        marker_sends=1)
    with pytest.raises(ftw.TargetError, match="never appeared in"):
        await target.probe()
    with pytest.raises(ftw.TargetError, match=r"marker request .* failed"):
        await LiveTarget("127.0.0.1", 9, tmp_path / "other.log").probe()


async def test_replay_cli_live(tmp_path: Path, waf_server: tuple[str, int, Path],
                               capsys: pytest.CaptureFixture[str]) -> None:
    host, port, log_path = waf_server
    suite = write(tmp_path, "suite/1.yaml", SUITE)
    report = tmp_path / "report.json"
    base = [str(suite.parent), "--url", f"http://{host}:{port}", "--log", str(log_path)]

    # replay_main runs its own event loop: give it a thread of its own
    code = await asyncio.to_thread(replay_main, [*base, "--json", str(report)])
    assert code == 1
    assert capsys.readouterr().out.splitlines()[-1] == "5 passed, 2 failed"
    data = json.loads(report.read_text())
    assert data["summary"] == {**data["summary"], "passed": 5, "failed": 2, "skipped": 0}
    assert {t["id"]: t["outcome"] for t in data["tests"]} == EXPECTED

    overrides = write(tmp_path, "o.yaml", "test_overrides:\n- {rule_id: 1, test_ids: [3],"
                      " reason: known}\n- {rule_id: 1, test_ids: [5], reason: x,"
                      " output: {status: 403}}\n")
    code = await asyncio.to_thread(replay_main, [*base, "--overrides", str(overrides),
                                                 "--exclude", "^1-[67]$", "-j", "2"])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == "5 passed, 0 failed, 2 skipped"


@pytest.mark.parametrize(("args", "message"), [
    (["x"], "the in-process mode needs --crs CRS_DIR"),
    (["x", "--url", "http://127.0.0.1:1"], "--url needs --log FILE"),
    (["x", "--url", "ftp://h", "--log", "l"], "--url ftp://h: expected http"),
    (["x", "--url", "http://h", "--log", "l", "--paranoia", "2"], "--paranoia configures"),
    (["x", "--include", "("], "--include: invalid regex"),
    (["missing-dir", "--url", "http://h", "--log", "l"], "missing-dir: no such file"),
    ([], "give test PATHs or --crs CRS_DIR"),
    (["bad"], "bad/1.yaml:2:1: malformed YAML"),
    (["x", "-j", "0"], "-j must be at least 1"),
])
def test_replay_cli_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str], args: list[str],
                                 message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "x/1.yaml", SUITE)
    write(tmp_path, "bad/1.yaml", "rule_id: 1\n\t- x\n")
    assert replay_main(args) == 2
    assert message in capsys.readouterr().err


def test_replay_cli_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        replay_main(["x", "--paranoia", "7"])
    assert exc.value.code == 2


# ---------------------------------------------------------------------------
# albedo
# ---------------------------------------------------------------------------


@pytest.fixture
async def albedo(upstream: Callable[..., Awaitable[str]]) -> str:
    return await upstream(albedo_app())


@pytest.mark.parametrize(("method", "path", "spec", "status", "headers", "body"), [
    ("GET", "/status/200", None, 200, {}, b""),
    ("PUT", "/anything?x=1", "junk", 200, {}, b""),
    ("GET", "/reflect", None, 200, {}, b""),
    ("POST", "/reflect", {"status": 403, "headers": {"X-A": "1", "Bad Name": "x"},
                          "body": "<html><body>hi", "logMessage": "test 1"},
     403, {"X-A": "1", "Content-Type": "text/html; charset=utf-8"}, b"<html><body>hi"),
    ("POST", "/reflect/", {"encodedBody": base64.b64encode(b"root:x:0:0").decode()},
     200, {"Content-Type": "text/plain; charset=utf-8"}, b"root:x:0:0"),
    ("POST", "/reflect", {"body": "a", "encodedBody": "Yg==",
                          "headers": {"Content-Type": "application/json"}},
     200, {"Content-Type": "application/json"}, b"a"),
    ("POST", "/reflect", {"status": 42}, 400, {}, b"Invalid status code: 42"),
    ("POST", "/reflect", "{not json", 400, {}, b"Invalid JSON in request body"),
    ("POST", "/reflect", {"encodedBody": "%%%"}, 400, {},
     b"invalid base64 encoding of response body"),
])
async def test_albedo(albedo: str, http: aiohttp.ClientSession, method: str, path: str,
                      spec: Any, status: int, headers: dict[str, str], body: bytes) -> None:
    data = spec if isinstance(spec, str) or spec is None else json.dumps(spec)
    async with http.request(method, albedo + path, data=data) as resp:
        assert resp.status == status
        assert await resp.read() == body
        for name, value in headers.items():
            assert resp.headers[name] == value
        assert "Bad Name" not in resp.headers
        if status == 200 and not body:
            assert "Content-Type" not in resp.headers


def test_overrides_type_is_exported() -> None:
    assert Overrides().apply(Stage(1, 1, 0, StageInput(), StageOutput()))[1] is None
