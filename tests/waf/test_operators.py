"""Operators: one declarative table per operator, plus CRS-wide checks.

A row is ``(argument, value, expected match, expected captures)``; captures
are what ``set_captures`` received (every row runs with ``capturing=True``),
or None when the operator must not have set any.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import re2

from waf.operators import OperatorContext, get_operator, operator_names
from waf.operators.pm import PhraseMatch
from waf.operators.rx import Rx, regex_options

CRS_DIR = Path(__file__).resolve().parents[3] / "shared" / "crs"
CRS_RULES = CRS_DIR / "rules"
needs_crs = pytest.mark.skipif(
    not CRS_RULES.is_dir(), reason=f"CRS test data not found at {CRS_RULES}"
)

MACROS = {
    "TX.limit": "7",
    "TX.threshold": "5",
    "TX.1": "3",
    "TX.allowed_methods": "GET HEAD POST OPTIONS",
    "TX.word": "foo",
    "REQUEST_HEADERS.host": "example.com",
}


class FakeTx:
    """The OperatorTx protocol over a dict of macro values."""

    def __init__(self, capturing: bool = True) -> None:
        self.capturing = capturing
        self.captures: list[bytes] | None = None

    def set_captures(self, groups: Sequence[bytes]) -> None:
        self.captures = list(groups)

    def macro_value(self, collection: str, key: str | None) -> str:
        return MACROS.get(f"{collection}.{key}", "")


Row = tuple[str, bytes, bool, tuple[bytes, ...] | None]

QUOTE = "\u2018".encode()  # LEFT SINGLE QUOTATION MARK as UTF-8: e2 80 98

TABLES: dict[str, list[Row]] = {
    "rx": [
        ("foo", b"xfooy", True, (b"foo",)),
        ("foo", b"bar", False, None),
        ("a(b)(c)?", b"xab", True, (b"ab", b"b", b"")),
        (
            "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)",
            b"abcdefghijk",
            True,
            (b"abcdefghijk", b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i"),
        ),
        ("(?i)select", b"SeLeCt 1", True, (b"SeLeCt",)),
        ("^(?i)up", b"UPDATE", True, (b"UP",)),  # 920490's mid-pattern flag
        # DOTALL, but no multiline: ^ and $ anchor at the ends of the value.
        ("a.b", b"a\nb", True, (b"a\nb",)),
        ("^b", b"a\nb", False, None),
        ("a$", b"a\n", False, None),
        ("a\\z", b"xa", True, (b"a",)),
        # Byte semantics: one byte is one character.
        (r"\x{e2}\x80\x98", b"it" + QUOTE + b"s", True, (QUOTE,)),
        (r"\x{e2}\x80[\x98\x99]", b"\xe2\x80", False, None),
        ("\u2018", b"x" + QUOTE, True, (QUOTE,)),
        ("^.$", QUOTE, False, None),
        ("^...$", QUOTE, True, (QUOTE,)),
        (r"[\x80-\xff]+", b"a\xff\xfeb", True, (b"\xff\xfe",)),
        (r"a\x00b", b"a\x00b", True, (b"a\x00b",)),
        (r"^\w+$", b"caf\xe9", False, None),  # \w is ASCII-only
        ("", b"", True, (b"",)),
    ],
    "pm": [
        ("foo bar", b"xxFOOxx", True, (b"foo",)),
        ("foo bar", b"baz", False, None),
        ("AppleWebKit Android", b"mozilla applewebkit", True, (b"AppleWebKit",)),
        # Overlapping phrases: the one that ends first wins.
        ("abc bcd", b"xabcdx", True, (b"abc",)),
        ("bcd abc", b"xabcdx", True, (b"abc",)),
        ("he she hers", b"ushers", True, (b"she",)),
        ("( )", b"f()", True, (b"(",)),
        ("?>", b"<?php echo 1 ?>", True, (b"?>",)),
        # Case folding is ASCII-only: É (c3 89) does not match é (c3 a9).
        ("\u00c9t\u00e9", "\u00e9t\u00e9".encode(), False, None),
        ("\u00e9t\u00e9", "\u00e9T\u00e9".encode(), True, ("\u00e9t\u00e9".encode(),)),
        ("a", b"", False, None),
    ],
    "pmFromFile": [
        ("words.data", b"this has EVIL in it", True, (b"Evil",)),  # as written
        ("words.data", b"# comment", False, None),
        ("words.data", b"  padded  ", True, (b"padded",)),
        ("words.data", b"nothing here", False, None),
        ("words.data more.data", b"say Hello", True, (b"hello",)),
        ("empty.data", b"anything", False, None),
    ],
    "pmf": [
        ("more.data", b"HELLO", True, (b"hello",)),
    ],
    "detectSQLi": [
        ("", b"1' or '1'='1", True, (b"s&sos",)),
        ("", b"1 UNION SELECT password FROM users", True, (b"1UEnk",)),
        ("", b"\xff' or 1=1 --", True, (b"s&1c",)),
        ("", b"1'\x00 or '1'='1", True, (b"s&sos",)),
        ("", b"O'Reilly", False, None),
        ("", b"hello world", False, None),
        ("", b"", False, None),
    ],
    "detectXSS": [
        ("", b"<script>alert(1)</script>", True, None),
        ("", b"<img src=x onerror=alert(1)>", True, None),
        ("", b'" onmouseover="alert(1)', True, None),
        ("", b"\xff\x00<svg onload=alert(1)>", True, None),
        ("", b"hello <b>world</b>", False, None),
        ("", b"a < b", False, None),
        ("", b"", False, None),
    ],
    "eq": [
        ("5", b"5", True, None),
        ("5", b"6", False, None),
        ("5", b" 5abc", True, None),
        ("3", b"+3", True, None),
        ("-3", b"-3", True, None),
        ("0", b"abc", True, None),
        ("0", b"", True, None),
        ("0", b"- 3", True, None),
        ("0", b"99999999999", True, None),  # out of int range reads as 0
        ("2147483647", b"2147483647", True, None),
        ("5", b"0" * 5000 + b"5", True, None),
        ("0", b"1" * 5000, True, None),
        ("%{tx.limit}", b"7", True, None),
        ("%{TX:limit}", b"8", False, None),
        ("%{tx.missing}", b"0", True, None),
        ("1%{tx.limit}", b"17", True, None),
    ],
    "ge": [
        ("5", b"5", True, None),
        ("5", b"4", False, None),
        ("%{tx.threshold}", b"10", True, None),
        ("%{tx.threshold}", b"4", False, None),
    ],
    "gt": [
        ("5", b"6", True, None),
        ("5", b"5", False, None),
        ("0", b"x", False, None),
        ("%{tx.limit}", b"8", True, None),
    ],
    "le": [
        ("5", b"5", True, None),
        ("5", b"6", False, None),
        ("-1", b"-2", True, None),
    ],
    "lt": [
        ("5", b"4", True, None),
        ("5", b"5", False, None),
        ("1", b"", True, None),
        ("%{tx.1}", b"2", True, None),
        ("%{tx.1}", b"3", False, None),
    ],
    "streq": [
        ("POST", b"POST", True, None),
        ("POST", b"post", False, None),
        ("POST", b"POST ", False, None),
        ("GET /", b"GET /", True, None),
        ("", b"", True, None),
        ("%{tx.limit}", b"7", True, None),
    ],
    "contains": [
        ("#", b"a#b", True, None),
        ("-->", b"--", False, None),
        ("<title>x</title>", b"<TITLE>x</TITLE>", False, None),
        ("", b"anything", True, None),
        ("%{tx.word}", b"xfoox", True, None),
    ],
    "strmatch": [
        ("WebZIP", b"UA: WebZIP/1.0", True, None),
        ("webzip", b"WebZIP", False, None),
    ],
    "containsWord": [
        ("foo", b"foo", True, None),
        ("foo", b"a foo b", True, None),
        ("foo", b"foobar", False, None),
        ("foo", b"barfoo", False, None),
        ("foo", b"foobar foo", True, None),
        # ModSecurity v3 counts only ASCII letters as word characters.
        ("foo", b"foo1", True, None),
        ("foo", b"_foo_", True, None),
        ("foo", b"\xe9foo", True, None),
        ("", b"x", True, None),
        ("foo", b"", False, None),
        ("%{tx.word}", b"(foo)", True, None),
    ],
    "beginsWith": [
        ("#:~:text=", b"#:~:text=abc", True, None),
        ("abc", b"ab", False, None),
        ("abc", b"xabc", False, None),
        ("", b"x", True, None),
    ],
    "endsWith": [
        (".pdf", b"a.pdf", True, None),
        (".pdf", b"a.PDF", False, None),
        (".%{request_headers.host}", b"www.example.com", True, None),
        (".%{request_headers.host}", b"example.com", False, None),
        ("%{request_headers.host}", b"example.com", True, None),
        ("(internal dummy connection)", b"x (internal dummy connection)", True, None),
    ],
    "within": [
        ("GET HEAD POST", b"GET", True, None),
        ("GET HEAD POST", b"GE", True, None),  # substring, not word
        ("%{tx.allowed_methods}", b"OPTIONS", True, None),
        ("%{tx.allowed_methods}", b"DELETE", False, None),
        ("%{tx.allowed_methods}", b"get", False, None),
        # ModSecurity v3 (and Coraza) find an empty value within anything.
        ("%{tx.allowed_methods}", b"", True, None),
        ("HTTP/2 HTTP/2.0", b"HTTP/1.1", False, None),
    ],
    "ipMatch": [
        ("127.0.0.1,::1", b"127.0.0.1", True, None),
        ("127.0.0.1,::1", b"::1", True, None),
        ("127.0.0.1,::1", b"127.0.0.2", False, None),
        ("10.0.0.0/8 192.168.1.0/24", b"10.1.2.3", True, None),
        ("10.0.0.0/8, 192.168.1.0/24", b"192.168.2.1", False, None),
        ("10.0.0.7/8", b"10.200.0.1", True, None),
        ("2001:db8::/32", b"2001:db8::1", True, None),
        ("2001:db8::/32", b"10.0.0.1", False, None),
        ("10.0.0.0/8", b"not-an-ip", False, None),
        ("10.0.0.0/8", b"10.0.0.1 ", False, None),
        ("10.0.0.0/8", b"", False, None),
        ("10.0.0.0/8", b"\xff", False, None),
    ],
    "ipMatchFromFile": [
        ("ips.data", b"192.0.2.55", True, None),
        ("ips.data", b"2001:db8::5", True, None),
        ("ips.data", b"198.51.100.1", False, None),
    ],
    "ipMatchF": [
        ("ips.data", b"203.0.113.9", True, None),
    ],
    "validateByteRange": [
        ("1-255", b"abc", False, None),
        ("1-255", b"a\x00b", True, None),
        ("9,10,13,32-126,128-255", b"tab\there\r\n", False, None),
        ("9,10,13,32-126,128-255", b"del\x7f", True, None),
        ("32-36,38-126", b"100%", True, None),
        ("32-126", b"", False, None),
        ("65", b"AAA", False, None),
        ("65", b"AB", True, None),
        (" 0 - 255 ", bytes(range(256)), False, None),
    ],
    "validateUrlEncoding": [
        ("", b"a%20b", False, None),
        ("", b"%41%42", False, None),
        ("", b"%aF", False, None),
        ("", b"plain", False, None),
        ("", b"", False, None),
        ("", b"%", True, None),
        ("", b"%2", True, None),
        ("", b"100%", True, None),
        ("", b"%zz", True, None),
        ("", b"%2g", True, None),
        ("", b"%%41", True, None),
    ],
    "validateUtf8Encoding": [
        ("", b"", False, None),
        ("", b"plain ascii", False, None),
        ("", "caf\u00e9 \u20ac \U0001f600".encode(), False, None),
        ("", b"\xc3", True, None),  # truncated
        ("", b"\xc3(", True, None),  # bad continuation
        ("", b"\x80", True, None),  # stray continuation
        ("", b"\xc0\xaf", True, None),  # overlong "/"
        ("", b"\xe0\x80\xaf", True, None),  # overlong "/"
        ("", b"\xf0\x8f\xbf\xbf", True, None),  # overlong U+FFFF
        ("", b"\xed\xa0\x80", True, None),  # surrogate U+D800
        ("", b"\xf5\x80\x80\x80", True, None),
        ("", b"\xff", True, None),
        # ModSecurity checks only the lead byte against U+10FFFF.
        ("", b"\xf4\x90\x80\x80", False, None),
        ("", b"a\xf4\x90\x80\x80\xc3", True, None),
    ],
    "unconditionalMatch": [("", b"anything", True, None), ("", b"", True, None)],
    "noMatch": [("", b"anything", False, None)],
}

DATA_FILES = {
    "words.data": b"# a comment line\n\nEvil\n   padded   \n#not-a-phrase\n",
    "more.data": b"hello\r\nworld\n",
    "empty.data": b"# nothing but comments\n\n",
    "ips.data": b"# test networks\n192.0.2.0/24\n\n2001:db8::/32\n203.0.113.9\n",
    "bad-ips.data": b"192.0.2.0/24\nnot-an-ip\n",
}


@pytest.fixture
def data_ctx(tmp_path: Path) -> OperatorContext:
    for name, content in DATA_FILES.items():
        (tmp_path / name).write_bytes(content)
    return OperatorContext(base_dir=tmp_path)


def _table_cases() -> list[Any]:
    return [
        pytest.param(name, *row, id=f"{name}[{i}]")
        for name, rows in TABLES.items()
        for i, row in enumerate(rows)
    ]


@pytest.mark.parametrize(("name", "argument", "value", "matched", "captures"), _table_cases())
def test_operator_table(
    name: str,
    argument: str,
    value: bytes,
    matched: bool,
    captures: tuple[bytes, ...] | None,
    data_ctx: OperatorContext,
) -> None:
    op = get_operator(name, argument, data_ctx)
    tx = FakeTx(capturing=True)
    assert op.evaluate(tx, value) is matched
    assert tx.captures == (None if captures is None else list(captures))


@pytest.mark.parametrize(("name", "argument", "value", "matched", "captures"), _table_cases())
def test_no_captures_unless_capturing(
    name: str,
    argument: str,
    value: bytes,
    matched: bool,
    captures: tuple[bytes, ...] | None,
    data_ctx: OperatorContext,
) -> None:
    tx = FakeTx(capturing=False)
    assert get_operator(name, argument, data_ctx).evaluate(tx, value) is matched
    assert tx.captures is None


def test_every_operator_has_a_table() -> None:
    assert set(operator_names()) == {name.lower() for name in TABLES}


BAD_ARGUMENTS = [
    ("rx", "("),
    ("rx", "a{2,1}"),
    ("rx", "(?<=a)b"),  # lookbehind: not RE2
    ("pm", ""),
    ("pm", "   "),
    ("pmFromFile", ""),
    ("pmFromFile", "missing.data"),
    ("pmFromFile", "words.data missing.data"),
    ("ipMatch", ""),
    ("ipMatch", "300.1.1.1"),
    ("ipMatch", "10.0.0.0/33"),
    ("ipMatch", "127.0.0.1;::1"),
    ("ipMatchFromFile", "missing.data"),
    ("ipMatchFromFile", "bad-ips.data"),
    ("validateByteRange", ""),
    ("validateByteRange", "256"),
    ("validateByteRange", "10-5"),
    ("validateByteRange", "a-z"),
    ("validateByteRange", "-5"),
    ("validateByteRange", "1,,2"),
    ("eq", ""),
    ("lt", "abc"),
]


@pytest.mark.parametrize(("name", "argument"), BAD_ARGUMENTS)
def test_bad_argument_raises_value_error(
    name: str, argument: str, data_ctx: OperatorContext
) -> None:
    with pytest.raises(ValueError, match=f"@{name}"):
        get_operator(name, argument, data_ctx)


HOSTILE_VALUES = [
    b"",
    b"\x00",
    bytes(range(256)),
    b"\xff\xfe\xfd",
    b"\xed\xa0\x80\xc0\xaf",
    b"%" * 100,
    b"9" * 10000,
    b"-" + b"0" * 10000,
    b"'" * 8192,
    b"<" * 8192,
    "\u2018\U0001f600".encode(),
]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_never_raises_on_hostile_values(name: str, data_ctx: OperatorContext) -> None:
    argument = TABLES[name][0][0]
    op = get_operator(name, argument, data_ctx)
    for capturing in (False, True):
        for value in HOSTILE_VALUES:
            assert isinstance(op.evaluate(FakeTx(capturing), value), bool)


def test_rx_exposes_pattern_and_regex_for_set_prefilters() -> None:
    ops = [get_operator("rx", p) for p in ("foo", r"ba[rz]", r"\x{e2}\x80\x98")]
    assert all(isinstance(op, Rx) for op in ops)
    rxs = [op for op in ops if isinstance(op, Rx)]
    assert [op.pattern for op in rxs] == ["foo", r"ba[rz]", r"\x{e2}\x80\x98"]
    assert rxs[1].regex.search(b"xbaz") is not None
    prefilter = re2.Set.SearchSet(regex_options())
    for op in rxs:
        prefilter.Add(op.pattern.encode())
    prefilter.Compile()
    assert sorted(prefilter.Match(b"bar " + QUOTE)) == [1, 2]


def test_pm_exposes_lowercased_phrases() -> None:
    op = get_operator("pm", "Foo bar FOO")
    assert isinstance(op, PhraseMatch)
    assert op.phrases == (b"foo", b"bar")


def test_macro_argument_expands_per_transaction() -> None:
    op = get_operator("within", "%{tx.allowed_methods}")
    assert op.evaluate(FakeTx(), b"HEAD")
    MACROS["TX.allowed_methods"], saved = "PUT", MACROS["TX.allowed_methods"]
    try:
        assert not op.evaluate(FakeTx(), b"HEAD")
    finally:
        MACROS["TX.allowed_methods"] = saved


# ---------------------------------------------------------------------------
# Against the real Core Rule Set
# ---------------------------------------------------------------------------

# The operator string of a SecRule, as Apache's tokenizer reads it: only \" is
# an escape, so the pattern is the text between quotes with \" unescaped.
_RX_ARGUMENT = re.compile(r'"!?@rx ((?:[^"\\]|\\.)*)"')


def crs_rx_patterns() -> list[str]:
    patterns: list[str] = []
    for conf in sorted(CRS_RULES.glob("*.conf")):
        text = conf.read_text(encoding="utf-8")
        patterns += [m.group(1).replace('\\"', '"') for m in _RX_ARGUMENT.finditer(text)]
    return patterns


@pytest.fixture(scope="module")
def crs_rx_operators() -> list[Rx]:
    if not CRS_RULES.is_dir():
        pytest.skip(f"CRS test data not found at {CRS_RULES}")
    ops = [get_operator("rx", p) for p in dict.fromkeys(crs_rx_patterns())]
    return [op for op in ops if isinstance(op, Rx)]


@needs_crs
def test_every_crs_rx_pattern_compiles(crs_rx_operators: list[Rx]) -> None:
    patterns = crs_rx_patterns()
    # Census (notes/crs-census.md): 318 @rx/!@rx occurrences, 295 distinct.
    assert (len(patterns), len(set(patterns))) == (318, 295)
    assert len(crs_rx_operators) == 295


HOSTILE_8K = {
    "a*8192": b"a" * 8192,
    "quote-spaces": (b"'" + b" " * 50) * 160,
    "tag-attrs": (b"<a " + b"x=" * 30) * 120,
}


@needs_crs
def test_crs_rx_patterns_resist_redos(crs_rx_operators: list[Rx]) -> None:
    tx = FakeTx(capturing=True)
    started = time.perf_counter()
    slowest = (0.0, "")
    for op in crs_rx_operators:
        for value in HOSTILE_8K.values():
            t0 = time.perf_counter()
            op.evaluate(tx, value)
            elapsed = time.perf_counter() - t0
            slowest = max(slowest, (elapsed, op.pattern[:60]))
    total = time.perf_counter() - started
    runs = len(crs_rx_operators) * len(HOSTILE_8K)
    print(f"\nReDoS: {runs} searches in {total * 1000:.1f} ms; slowest {slowest[0] * 1000:.2f} ms")
    assert total < 10.0


@needs_crs
@pytest.mark.parametrize(
    ("data_file", "value", "phrase"),
    [
        ("lfi-os-files.data", b"../../etc/passwd", b"etc/passwd"),
        ("restricted-files.data", b"/site/.HTACCESS", b".htaccess"),
    ],
)
def test_pm_from_file_reads_crs_data(data_file: str, value: bytes, phrase: bytes) -> None:
    op = get_operator("pmFromFile", data_file, OperatorContext(base_dir=CRS_RULES))
    assert isinstance(op, PhraseMatch)
    assert len(op.phrases) > 100
    assert not any(p.startswith(b"#") for p in op.phrases)
    tx = FakeTx()
    assert op.evaluate(tx, value)
    assert tx.captures == [phrase]
    assert not op.evaluate(FakeTx(), b"hello world")
