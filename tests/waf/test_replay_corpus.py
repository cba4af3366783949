"""``bastion replay --corpus``: detection per family and false positives, from tags."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from waf.ftw import FtwFormatError, FtwTest, StageResult, load_test_file
from waf.replay import (
    CorpusCase,
    CorpusReport,
    CorpusResult,
    classify,
    judge_response,
    render_markdown,
    render_text,
)
from waf.replay import main as replay_main

CRS = Path(__file__).resolve().parents[3] / "shared" / "crs"
needs_crs = pytest.mark.skipif(not (CRS / "rules").is_dir(),
                               reason=f"the CRS checkout is not at {CRS}")

# A rule set of its own, so that these tests do not follow rules/ as it grows.
RULES = r"""
SecRule ARGS "@contains evil" "id:10001,phase:2,deny,status:403,log,msg:'evil'"
SecRule ARGS "@contains sleep(" "id:10002,phase:2,deny,status:403,log,msg:'sleep'"
SecRule REQUEST_HEADERS:User-Agent "@contains badbot" \
    "id:10003,phase:1,deny,status:403,log,msg:'bad bot'"
"""

SQLI = """
rule_id: 1030
tests:
  - test_id: 1
    desc: sleep in the query
    tags: [attack, "family:sqli", "placement:query", "encoding:plain"]
    stages:
      - input: {uri: "/search?q=sleep(5)", headers: {Host: localhost}}
        output: {status: 403}
  - test_id: 2
    desc: union select in a form (no rule for it)
    tags: [attack, "family:sqli", "placement:form", "encoding:plain"]
    stages:
      - input:
          method: POST
          uri: /contact
          headers: {Host: localhost}
          data: "q=1 union select password from users"
        output: {status: 403}
  - test_id: 3
    desc: a JSON body the WAF cannot parse (refused with 400)
    tags: [attack, "family:sqli", "placement:json", "encoding:plain"]
    stages:
      - input:
          method: POST
          uri: /api
          headers: {Host: localhost, Content-Type: application/json}
          data: '{"q": '
        output: {status: 403}
"""

# Type and family from the file's meta tags; the tests name placement and encoding.
XSS = """
meta: {author: test, tags: [attack, "family:xss"]}
rule_id: 1040
tests:
  - test_id: 1
    desc: evil in the query
    tags: ["placement:query", "encoding:plain"]
    stages:
      - input: {uri: "/?q=evil", headers: {Host: localhost}}
        output: {status: 403}
  - test_id: 2
    desc: a bad bot
    tags: ["placement:header", "encoding:plain"]
    stages:
      - input: {uri: "/", headers: {Host: localhost, User-Agent: badbot/1.0}}
        output: {status: 403}
  - test_id: 3
    desc: "a tag in the query | with `backticks`"
    tags: ["placement:query", "encoding:plain"]
    stages:
      - input: {uri: "/?q=%3Cb%3E", headers: {Host: localhost}}
        output: {status: 403}
"""

BENIGN = """
rule_id: 2010
tests:
  - test_id: 1
    desc: a plain search
    tags: [benign, "kind:search", "placement:query"]
    stages:
      - input: {uri: "/search?q=hello", headers: {Host: localhost}}
        output: {status: 200}
  - test_id: 2
    desc: a film title with a scary word
    tags: [benign, "kind:search", "placement:query"]
    stages:
      - input: {uri: "/search?q=evil+twin+movie", headers: {Host: localhost}}
        output: {status: 200}
  - test_id: 3
    desc: a text body to /reflect (albedo would answer 400)
    tags: [benign, "kind:upload"]
    stages:
      - input:
          method: POST
          uri: /reflect
          headers: {Host: localhost, Content-Type: text/plain}
          data: "hello there"
        output: {status: 200}
  - test_id: 4
    desc: HEAD of some page
    tags: [benign, "kind:upload"]
    stages:
      - input: {method: HEAD, uri: "/any/where", headers: {Host: localhost}}
        output: {status: 200}
"""

UNTAGGED = """
rule_id: 9000
tests:
  - test_id: 1
    stages:
      - input: {uri: "/", headers: {Host: localhost}}
        output: {status: 200}
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    for name, text in (("attacks/1030-sqli.yaml", SQLI), ("attacks/1040-xss.yaml", XSS),
                       ("benign/2010-search.yaml", BENIGN), ("other/9000-untagged.yaml", UNTAGGED)):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.conf"
    path.write_text(RULES)
    return path


def families(data: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {k: (v["attacks"], v["detected"]) for k, v in data["families"].items()}


# ---------------------------------------------------------------------------
# In-process
# ---------------------------------------------------------------------------


def test_corpus_in_process(corpus: Path, rules: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    code = replay_main(["--corpus", str(corpus), "--rules", str(rules), "--json", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1 tests are tagged neither 'attack' nor 'benign' and are not run: 9000-1" in err

    data = json.loads(report.read_text())
    assert data["setup"] == "rules.conf, paranoia 1"
    assert families(data) == {"sqli": (3, 2), "xss": (3, 2)}
    assert {k: (v["requests"], v["refused"]) for k, v in data["kinds"].items()} == {
        "search": (2, 1), "upload": (2, 0)}
    assert data["summary"] == {**data["summary"], "attacks": 6, "detected": 4,
                               "detection_pct": 66.67, "benign": 4, "false_positives": 1,
                               "false_positive_pct": 25.0, "unexpected": 0, "unclassified": 1}
    tests = {t["id"]: t for t in data["tests"]}
    assert tests["1030-1"] == {**tests["1030-1"], "outcome": "detected", "status": 403,
                               "rule_ids": [10002], "family": "sqli", "placement": "query"}
    # A body the WAF cannot parse: refused by the WAF's REQBODY_ERROR rule, with 400.
    assert tests["1030-3"] == {**tests["1030-3"], "outcome": "detected", "status": 400,
                               "rule_ids": [200002]}
    assert tests["1030-2"]["outcome"] == "missed"
    assert tests["1040-2"] == {**tests["1040-2"], "outcome": "detected", "family": "xss",
                               "placement": "header", "rule_ids": [10003]}
    assert tests["2010-2"] == {**tests["2010-2"], "outcome": "false-positive", "kind": "search",
                               "rule_ids": [10001]}
    # The backend answers 200 to anything: POST /reflect with text, HEAD.
    assert tests["2010-3"]["status"] == tests["2010-4"]["status"] == 200
    assert data["unclassified"] == ["9000-1"]

    lines = out.splitlines()
    assert lines[0].startswith("rules.conf, paranoia 1: 6 attacks and 4 benign requests "
                               "from 4 files in ")
    assert "  sqli          3         2      66.7%" in lines
    assert "  all           6         4      66.7%" in lines
    assert "  search         2        1            50.0%" in lines
    assert "  all            4        1            25.0%" in lines
    assert "Missed attacks: 2" in lines
    assert any(line.split()[:3] == ["1030-2", "sqli", "form/plain"] for line in lines)
    assert "False positives: 1" in lines
    assert any(line.split()[:5] == ["2010-2", "search", "query/untagged", "403", "(10001)"]
               for line in lines)
    assert lines[-1] == "detection 66.7% (4/6), false positives 25.0% (1/4)"


def test_corpus_markdown_and_thresholds(corpus: Path, rules: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--corpus", str(corpus), "--rules", str(rules), "--exclude", "^9000-"]
    code = replay_main([*base, "--format", "markdown", "--min-detection", "66",
                        "--max-fp", "25", "-v", "-j", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "| family | attacks | detected | detection |" in out
    assert "| --- | ---: | ---: | ---: |" in out
    assert "| sqli | 3 | 2 | 66.7% |" in out
    assert "| **all** | **6** | **4** | **66.7%** |" in out
    assert "| search | 2 | 1 | 50.0% |" in out
    assert "| **all** | **4** | **1** | **25.0%** |" in out
    assert "**Detection by placement**" in out  # -v
    assert "| header | 1 | 1 | 100.0% |" in out
    assert "**Missed attacks** (2):" in out
    assert ("- `1040-3` xss, query, plain: 200 — `` a tag in the query | with `backticks` ``"
            in out)
    assert "- `2010-2` search, query, untagged: 403 (10001) — `a film title with a scary word`" \
        in out
    assert "(1 not selected)" in out.splitlines()[0]

    code = replay_main([*base, "--min-detection", "70", "--max-fp", "20", "--include", "^10"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "bastion replay: detection 66.7% is below --min-detection 70%" in err
    # --include ^10 selected no benign tests: an FP threshold cannot be met on nothing
    assert "bastion replay: --max-fp: no benign tests were run" in err
    assert out.splitlines()[-1] == "detection 66.7% (4/6), false positives n/a (0/0)"


@needs_crs
def test_corpus_with_crs_as_shipped(corpus: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """CRS in blocking mode at paranoia 1, no regression-test setup: its anomaly
    scoring refuses the sleep() and the bad JSON, lets the search through, and
    refuses a text/plain body (920420: not in its allowed content types)."""
    report = tmp_path / "report.json"
    code = replay_main(["--corpus", "--crs", str(CRS), str(corpus), "--json", str(report),
                        "--include", "^(1030-[13]|2010-[134])$"])
    assert code == 0, capsys.readouterr().err
    data = json.loads(report.read_text())
    assert data["setup"].startswith("OWASP CRS 4.")
    assert data["setup"].endswith(", paranoia 1")
    assert {t["id"]: t["outcome"] for t in data["tests"]} == {
        "1030-1": "detected", "1030-3": "detected",
        "2010-1": "passed", "2010-3": "false-positive", "2010-4": "passed"}
    tests = {t["id"]: t for t in data["tests"]}
    assert 949110 in tests["1030-1"]["rule_ids"]  # the inbound anomaly verdict
    assert 920420 in tests["2010-3"]["rule_ids"]


# ---------------------------------------------------------------------------
# A live gateway (--url): judged by status, no log
# ---------------------------------------------------------------------------


async def test_corpus_against_a_live_gateway(
        corpus: Path, rules: Path, capsys: pytest.CaptureFixture[str],
        upstream: Callable[..., Awaitable[str]], gateway: Callable[..., Awaitable[Any]]
) -> None:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    backend = await upstream(app)
    gw = await gateway({"access_log": {"enabled": False},
                        "services": {"up": {"endpoints": [{"url": backend}]}},
                        "routes": [{"name": "all", "service": "up"}],
                        "plugins": {"waf": {"rules": [str(rules)]}}})
    # replay_main runs its own event loop: give it a thread of its own
    code = await asyncio.to_thread(replay_main, ["--corpus", str(corpus), "--url", gw.url,
                                                 "--exclude", "^9000-", "--min-detection", "60"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"the gateway at {gw.url}: 6 attacks and 4 benign requests")
    assert out.splitlines()[-1] == "detection 66.7% (4/6), false positives 25.0% (1/4)"


# ---------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------


def test_classify_reads_test_tags_then_file_tags(corpus: Path) -> None:
    xss = load_test_file(corpus / "attacks" / "1040-xss.yaml")
    case = classify(xss.tests[1], xss.meta.tags)
    assert case is not None
    assert (case.type, case.group, case.placement, case.encoding) == (
        "attack", "xss", "header", "plain")
    assert classify(xss.tests[1]) is None  # without the file's tags: neither type

    test = FtwTest(1, 1, (), tags=("benign", "kind:api", "family:ignored"))
    benign = classify(test, ("attack", "family:sqli", "encoding:base64"))
    assert benign is not None
    assert (benign.type, benign.group, benign.encoding) == ("benign", "api", "base64")
    with pytest.raises(FtwFormatError, match="tagged both attack and benign"):
        classify(FtwTest(1, 2, (), tags=("attack", "benign")))


def response(status: int, body: bytes = b"", ctype: str = "application/json") -> StageResult:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n\r\n".encode()
    return StageResult(status, head + body)


@pytest.mark.parametrize(("result", "expected"), [
    (response(403, b'{"error": "request blocked by the web application firewall", '
                   b'"request_id": "x", "rule_ids": [942100, 949110]}'), (True, (942100, 949110))),
    (response(400, b'{"error": "request blocked by the web application firewall", '
                   b'"request_id": "x", "rule_ids": [200002]}'), (True, (200002,))),
    (response(413, b'{"error": "request body exceeds the WAF\'s SecRequestBodyLimit"}'),
     (True, ())),
    (response(403, b"<html>Forbidden</html>", "text/html"), (True, ())),  # any WAF's 403
    (response(403), (True, ())),  # HEAD
    (response(400, b'{"error": "malformed request: bad header"}'), (False, ())),
    (response(200, b"{not json"), (False, ())),
    (StageResult(None, b"", "connection closed with no response"), (False, ())),
])
def test_judge_response(result: StageResult, expected: tuple[bool, tuple[int, ...]]) -> None:
    assert judge_response(result) == expected


def test_report_outcomes_and_thresholds() -> None:
    def case(type_: str, group: str, n: int) -> CorpusCase:
        return CorpusCase(FtwTest(1, n, (), desc=f"test {n}"), type_, group)  # type: ignore[arg-type]

    results = [
        CorpusResult(case("attack", "sqli", 1), True, 403, (1,)),
        CorpusResult(case("attack", "sqli", 2), False, 200),
        CorpusResult(case("attack", "xss", 3), False, None, error="no response within 3s"),
        CorpusResult(case("benign", "api", 4), False, 200),
        CorpusResult(case("benign", "api", 5), False, 502),
    ]
    report = CorpusReport(results, "x", files=1)
    assert [r.outcome for r in results] == ["detected", "missed", "missed", "passed",
                                            "unexpected"]
    assert [r.note() for r in results] == ["403 (1)", "200", "no response: no response within 3s",
                                           "200", "502 (not from the WAF)"]
    assert report.summary_line() == ("detection 33.3% (1/3), "
                                     "false positives 0.0% (0/2)")
    assert report.threshold_failures(33, 0) == []
    assert report.threshold_failures(34, None) == [
        "detection 33.3% is below --min-detection 34%"]
    assert CorpusReport([], "x").threshold_failures(0, 100) == [
        "--min-detection: no attack tests were run", "--max-fp: no benign tests were run"]
    text = render_text(report)
    assert "Unexpected answers to benign requests" in text
    assert "  1-5  api  untagged/untagged  502 (not from the WAF)  test 5" in text
    assert "| xss | 1 | 0 | 0.0% |" in render_markdown(report)


def test_lists_are_cut_unless_verbose() -> None:
    results = [CorpusResult(CorpusCase(FtwTest(1, n, ()), "attack", "sqli"), False, 200)
               for n in range(1, 31)]
    report = CorpusReport(results, "x")
    assert "Missed attacks: 30; the first 20, --verbose for all" in render_text(report)
    assert "  1-30 " in render_text(report, verbose=True)
    assert "  1-30 " not in render_text(report)


@pytest.mark.parametrize(("args", "message"), [
    (["c", "--format", "markdown"], "--format needs --corpus"),
    (["c", "--max-fp", "1"], "--max-fp needs --corpus"),
    (["c", "--rules", "r.conf"], "--rules needs --corpus"),
    (["--corpus"], "--corpus needs the corpus PATHs"),
    (["--corpus", "c", "--log", "x.log"], "--log does not apply with --corpus"),
    (["--corpus", "c", "--overrides", "o.yaml"], "--overrides does not apply with --corpus"),
    (["--corpus", "c", "--url", "http://h", "--paranoia", "2"], "--paranoia configures the"),
    (["--corpus", "c", "--url", "http://h", "--crs", "."], "--crs configures the in-process"),
    (["--corpus", "c", "--rules", "missing.conf"], "--rules missing.conf: no such file"),
    (["--corpus", "c", "--min-detection", "101"], "--min-detection: expected a percentage"),
    (["--corpus", "u"], "none of the 1 tests is tagged 'attack' or 'benign'"),
    (["--corpus", "c", "--rules", "bad.conf"], "the in-process gateway does not start"),
    (["--corpus", "c", "--url", "http://127.0.0.1:9"], "aborted: no HTTP response from 127.0."),
])
def test_corpus_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str], args: list[str],
                             message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "1.yaml").write_text(BENIGN)
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "1.yaml").write_text(UNTAGGED)
    (tmp_path / "bad.conf").write_text('SecRule ARGS "@nosuchop x" "id:1,deny"\n')
    assert replay_main(args) == 2
    assert message in capsys.readouterr().err
