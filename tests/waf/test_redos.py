"""Hostile input through the full CRS at paranoia 4: linear time, and no exceptions.

The three ~8 KiB inputs are the ones that make CRS's patterns backtrack under
Python's ``re`` (tens of seconds in total; 942251 alone takes 24 s on the
quote-and-spaces one, see ../shared/notes/crs-coraza-ftw.md §2). Each goes in
every place a request can carry it, and a request's whole evaluation (phases 1
and 2) must stay far below that. The bound is generous so a slow CI machine
cannot flake it; catastrophic backtracking would still blow through it.
Broken bodies must end in REQBODY_ERROR and the host config's verdict, never
in an exception.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

import pytest

from waf.engine import build_ruleset
from waf.rules import RuleSet
from waf.transaction import Transaction

CRS = Path(__file__).resolve().parents[3] / "shared" / "crs"
pytestmark = pytest.mark.skipif(not (CRS / "rules").is_dir(),
                                reason="../shared/crs (OWASP CRS v4) is absent")

# Seconds one request's phases 1-2 may take. Measured: tens of milliseconds.
BOUND = 5.0

HOSTILE: dict[str, str] = {
    "a*8192": "a" * 8192,
    "quote+50 spaces": ("'" + " " * 50) * 160,
    "<a x=x=...": ("<a " + "x=" * 30) * 120,
}

BOUNDARY = "XyZzy"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"

BROWSER = [
    ("Host", "shop.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.5"),
]


@pytest.fixture(scope="module")
def detect_ruleset() -> RuleSet:
    return build_ruleset(engine="DetectionOnly", paranoia=4, crs=CRS)


@pytest.fixture(scope="module")
def blocking_ruleset() -> RuleSet:
    return build_ruleset(engine="On", paranoia=4, crs=CRS)


@dataclass
class Request:
    method: str = "GET"
    uri: str = "/"
    headers: list[tuple[str, str | bytes]] = field(default_factory=lambda: list(BROWSER))
    body: bytes = b""


def evaluate(ruleset: RuleSet, req: Request) -> tuple[Transaction, float]:
    """Phases 1 and 2 (and logging) of one request; the seconds phases 1-2 took."""
    tx = Transaction(ruleset, "redos")
    started = time.perf_counter()
    tx.process_connection("203.0.113.7", 50123, "10.0.0.1", 443)
    tx.process_uri(req.uri, req.method, "HTTP/1.1")
    for name, value in req.headers:
        tx.add_request_header(name, value)
    if req.body:
        tx.add_request_header("Content-Length", str(len(req.body)))
    if tx.process_request_headers() is None:
        tx.process_request_body(req.body)
    elapsed = time.perf_counter() - started
    tx.process_logging()
    return tx, elapsed


def carrying(place: str, value: str) -> Request:
    if place == "query":
        return Request(uri="/search?q=" + quote(value, safe=""))
    if place == "header":
        return Request(headers=[*BROWSER, ("X-Comment", value)])
    if place == "cookie":
        return Request(headers=[*BROWSER, ("Cookie", "session=abc; note=" + value)])
    if place == "body":
        return posting("application/x-www-form-urlencoded",
                       b"user=bob&comment=" + quote(value, safe="").encode())
    if place == "json body":
        return posting("application/json", json.dumps({"user": "bob", "comment": value}).encode())
    if place == "xml body":
        return posting("application/xml", f"<c><user>bob</user><comment>{escape(value)}</comment>"
                                          f"</c>".encode())
    assert place == "multipart body"
    return posting(MULTIPART, (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="comment"'
                               f"\r\n\r\n{value}\r\n--{BOUNDARY}--\r\n").encode())


def posting(ctype: str, body: bytes) -> Request:
    return Request(method="POST", uri="/submit", headers=[*BROWSER, ("Content-Type", ctype)],
                   body=body)


def value_seen(tx: Transaction, place: str) -> bytes | None:
    """The hostile value as the engine holds it: proof it was evaluated, not dropped."""
    if place == "xml body":  # XML:/* is the root element's text: bob, then the comment
        assert tx.xml is not None
        texts: list[bytes] = tx.xml.xpath("/*")
        return texts[0].removeprefix(b"bob")
    collection, key = {"query": (tx.args_get, "q"), "header": (tx.request_headers, "x-comment"),
                       "cookie": (tx.request_cookies, "note"), "body": (tx.args_post, "comment"),
                       "json body": (tx.args_post, "json.comment"),
                       "multipart body": (tx.args_post, "comment")}[place]
    value: bytes | None = collection.first(key)
    return value


@pytest.mark.parametrize("place", ["query", "header", "cookie", "body", "json body",
                                   "xml body", "multipart body"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_8k_input_is_evaluated_in_linear_time(detect_ruleset: RuleSet, name: str,
                                                      place: str) -> None:
    value = HOSTILE[name]
    assert 7 * 1024 < len(value) <= 8 * 1024  # as the notes give them: 8192, 8160, 7560
    tx, elapsed = evaluate(detect_ruleset, carrying(place, value))
    print(f"\n{name!r} as {place}: {elapsed * 1000:.1f} ms, {len(tx.matched)} rules matched")
    assert tx.singles["REQBODY_ERROR"].value == b"0"
    assert value_seen(tx, place) == value.encode()
    assert elapsed < BOUND, f"{name!r} as {place} took {elapsed:.2f} s"


def test_all_hostile_inputs_at_once(detect_ruleset: RuleSet) -> None:
    """Every input in every place of one request: still one linear pass."""
    headers: list[tuple[str, str | bytes]] = [*BROWSER,
                                              ("Content-Type", "application/x-www-form-urlencoded")]
    query, body = [], []
    for i, value in enumerate(HOSTILE.values()):
        headers += [(f"X-Hostile-{i}", value), ("Cookie", f"c{i}={value}")]
        query.append(f"q{i}={quote(value, safe='')}")
        body.append(f"f{i}={quote(value, safe='')}")
    req = Request(method="POST", uri="/x?" + "&".join(query), headers=headers,
                  body="&".join(body).encode())
    tx, elapsed = evaluate(detect_ruleset, req)
    print(f"\nall hostile inputs in one request: {elapsed * 1000:.1f} ms")
    assert len(tx.args_get) == len(tx.args_post) == len(HOSTILE)
    assert elapsed < BOUND


# ---------------------------------------------------------------------------
# Broken bodies

def billion_laughs(levels: int = 9) -> bytes:
    lines = [b'<?xml version="1.0"?>', b"<!DOCTYPE lolz [", b'<!ENTITY lol0 "lol">']
    lines += [b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10)
              for i in range(1, levels + 1)]
    lines += [b"]>", b"<lolz>&lol%d;</lolz>" % levels]
    return b"\n".join(lines)


BROKEN: list[tuple[str, str, bytes, str]] = [
    # (name, content type, body, what REQBODY_ERROR_MSG starts with)
    ("truncated json", "application/json", b'{"user": "bob", "tags": ["a", {"b": "', "JSON"),
    ("json invalid utf-8", "application/json", b'{"a": "\xff\xfe\xc3("}', "JSON"),
    ("json nested past the depth limit", "application/json", b"[" * 20000 + b"]" * 20000,
     "JSON"),
    ("json with a BOM", "application/json", b'\xef\xbb\xbf{"a": 1}', "JSON"),
    ("xml bomb", "application/xml", billion_laughs(), "XML"),
    ("xml external entity", "text/xml",
     b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
     "XML"),
    ("truncated xml", "application/xml", b"<order><item>1</item><item>", "XML"),
    ("xml invalid utf-8", "application/xml", b"<a>\xff\xfe</a>", "XML"),
    ("multipart without final boundary", MULTIPART,
     f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue'.encode(),
     "Multipart"),
    ("multipart with no boundary in it", MULTIPART, b"just some bytes\r\n", "Multipart"),
    ("multipart without a boundary parameter", "multipart/form-data",
     f"--{BOUNDARY}\r\n\r\n".encode(), "Multipart"),
    ("multipart header without colon", MULTIPART,
     f"--{BOUNDARY}\r\nNoColonHere\r\n\r\nv\r\n--{BOUNDARY}--\r\n".encode(), "Multipart"),
    ("multipart 8 KiB header line", MULTIPART,
     f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"; x="{HOSTILE["quote+50 spaces"]}'
     f'"\r\n\r\nv\r\n--{BOUNDARY}--\r\n'.encode(), "Multipart"),
]


def broken(ctype: str, body: bytes) -> Request:
    return Request(method="POST", uri="/api/orders",
                   headers=[*BROWSER, ("Content-Type", ctype)], body=body)


@pytest.mark.parametrize(("ctype", "body", "error"), [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_broken_body_sets_reqbody_error_and_is_refused(detect_ruleset: RuleSet,
                                                       blocking_ruleset: RuleSet, ctype: str,
                                                       body: bytes, error: str) -> None:
    tx, elapsed = evaluate(detect_ruleset, broken(ctype, body))
    print(f"\n{ctype}, {len(body)} bytes: {elapsed * 1000:.1f} ms")
    assert elapsed < BOUND
    assert tx.singles["REQBODY_ERROR"].value == b"1"
    message = (tx.singles["REQBODY_ERROR_MSG"].value or b"").decode()
    assert message.startswith(f"{error} parsing error: "), message
    # DetectionOnly: the host config's rule 200002 matches and would have refused.
    (parse_failure,) = [m for m in tx.matched if m.id == 200002]
    assert parse_failure.disruptive
    assert parse_failure.data == message
    assert tx.interruption is None

    tx, _ = evaluate(blocking_ruleset, broken(ctype, body))
    assert tx.interruption is not None
    assert (tx.interruption.rule_id, tx.interruption.status) == (200002, 400)


@pytest.mark.parametrize(("ctype", "body"), [
    ("application/x-www-form-urlencoded", b"a=%ff%fe&b=\xff\xc3(&c=%zz&=&&d"),
    ("application/json", b'{"a": "\\ud800", "b": ' + b"9" * 8192 + b"}"),
    ("text/plain", b"\xff\xfe\x00 not utf-8 at all"),
], ids=["urlencoded with bad bytes and escapes", "json lone surrogate, 8 KiB number",
        "text/plain invalid utf-8"])
def test_odd_but_parseable_bodies_never_raise(detect_ruleset: RuleSet,
                                              blocking_ruleset: RuleSet, ctype: str,
                                              body: bytes) -> None:
    """No REQBODY_ERROR here: whatever the verdict, it comes from CRS's own rules."""
    for ruleset in (detect_ruleset, blocking_ruleset):
        tx, elapsed = evaluate(ruleset, broken(ctype, body))
        assert elapsed < BOUND
        assert tx.singles["REQBODY_ERROR"].value == b"0"
        assert 200002 not in [m.id for m in tx.matched]
        if tx.interruption is not None:
            assert tx.interruption.status == 403
            assert tx.interruption.rule_id == 949110  # anomaly score, not a crash path
