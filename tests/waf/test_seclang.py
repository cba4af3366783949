"""SecLang syntax: directives, quoting, continuation, Include, and the SecRule sub-parsers."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from waf.seclang import (
    ActionSpec,
    Directive,
    OperatorSpec,
    SecLangError,
    VariableSpec,
    parse_actions,
    parse_file,
    parse_operator,
    parse_text,
    parse_variables,
)

CRS = Path(__file__).resolve().parents[3] / "shared" / "crs"

# Every action name SecLang (ModSecurity v2/v3, Coraza) defines, lower-cased.
KNOWN_ACTIONS = frozenset(
    [
        "accuracy",
        "allow",
        "append",
        "auditlog",
        "block",
        "capture",
        "chain",
        "ctl",
        "deny",
        "deprecatevar",
        "drop",
        "exec",
        "expirevar",
        "id",
        "initcol",
        "log",
        "logdata",
        "maturity",
        "msg",
        "multimatch",
        "noauditlog",
        "nolog",
        "pass",
        "pause",
        "phase",
        "prepend",
        "proxy",
        "redirect",
        "rev",
        "sanitisearg",
        "sanitisematched",
        "sanitisematchedbytes",
        "sanitiserequestheader",
        "sanitiseresponseheader",
        "setenv",
        "setrsc",
        "setsid",
        "setuid",
        "setvar",
        "severity",
        "skip",
        "skipafter",
        "status",
        "t",
        "tag",
        "ver",
        "xmlns",
    ]
)


def shape(directives: list[Directive]) -> list[tuple[str, tuple[str, ...], int]]:
    return [(d.name, d.args, d.line) for d in directives]


# --- directives: quoting, comments, continuation ---

DIRECTIVES = [
    ("SecRuleEngine On", [("SecRuleEngine", ("On",), 1)]),
    ("secrule ARGS x", [("secrule", ("ARGS", "x"), 1)]),
    ("SecFoo a  b\tc", [("SecFoo", ("a", "b", "c"), 1)]),
    ('SecRule ARGS "@rx a b" "id:1"', [("SecRule", ("ARGS", "@rx a b", "id:1"), 1)]),
    ("SecRule ARGS '@rx a b' 'id:1'", [("SecRule", ("ARGS", "@rx a b", "id:1"), 1)]),
    # \" is a literal quote inside "..."
    (r'SecRule ARGS "@rx a\"b" "id:1"', [("SecRule", ("ARGS", '@rx a"b', "id:1"), 1)]),
    # \' is a literal quote inside '...'
    (r"SecMarker 'it\'s'", [("SecMarker", ("it's",), 1)]),
    # a \" inside '...' is not an escape of the enclosing quote: kept as written
    (r"SecMarker 'a\"b'", [("SecMarker", (r"a\"b",), 1)]),
    # \\ stays as written; other backslashes too
    (
        r'SecRule ARGS "@rx a\\d\x5c\w" "id:1"',
        [("SecRule", ("ARGS", r"@rx a\\d\x5c\w", "id:1"), 1)],
    ),
    # \\ before the closing quote: the quote ends the argument
    (r'SecRule ARGS "@rx a\\" "id:1"', [("SecRule", ("ARGS", "@rx a\\\\", "id:1"), 1)]),
    # \\\" is an escaped backslash, then an escaped quote
    (r'SecRule ARGS "@rx a\\\"b" "id:1"', [("SecRule", ("ARGS", r'@rx a\\"b', "id:1"), 1)]),
    # single quotes inside a double-quoted action list are left for parse_actions
    (
        "SecAction \"id:1,msg:'a, b',setvar:'tx.x=+1'\"",
        [("SecAction", ("id:1,msg:'a, b',setvar:'tx.x=+1'",), 1)],
    ),
    ('SecRule ARGS "@rx x" ""', [("SecRule", ("ARGS", "@rx x", ""), 1)]),
    # a quote inside a bare word is part of it; '#' mid-line is not a comment
    ('SecMarker a"b', [("SecMarker", ('a"b',), 1)]),
    ("SecMarker END#1", [("SecMarker", ("END#1",), 1)]),
    # comments and blank lines, also indented and with CRLF
    (
        "# comment\n\n   # indented\r\nSecMarker A\r\n\t\nSecMarker B",
        [("SecMarker", ("A",), 4), ("SecMarker", ("B",), 6)],
    ),
    # a comment ending in a backslash continues nothing
    ("#SecAction \\\nSecMarker A\n", [("SecMarker", ("A",), 2)]),
    ("  # a \\\n# b \\\nSecMarker A", [("SecMarker", ("A",), 3)]),
    # CRS-style continuation: backslash removed, next line's indentation kept
    (
        'SecRule ARGS "@rx x" \\\n    "id:1,\\\n    phase:2,\\\n    pass"\nSecMarker M',
        [
            ("SecRule", ("ARGS", "@rx x", "id:1,    phase:2,    pass"), 1),
            ("SecMarker", ("M",), 5),
        ],
    ),
    # continuation inside a quoted argument joins the text verbatim
    ('SecRule ARGS "@rx a\\\n b" "id:1"', [("SecRule", ("ARGS", "@rx a b", "id:1"), 1)]),
    # continuation right after the name
    ("SecMarker\\\n END", [("SecMarker", ("END",), 1)]),
    # a blank line ends a continued directive (as in httpd)
    ("SecMarker A\\\n\nSecMarker B", [("SecMarker", ("A",), 1), ("SecMarker", ("B",), 3)]),
    # a UTF-8 byte order mark is ignored
    ("\ufeffSecMarker A", [("SecMarker", ("A",), 1)]),
    ("", []),
    ("# only\n  \n", []),
]


@pytest.mark.parametrize(("text", "expected"), DIRECTIVES)
def test_directives(text: str, expected: list[tuple[str, tuple[str, ...], int]]) -> None:
    assert shape(parse_text(text)) == expected


def test_directive_records_source() -> None:
    [d] = parse_text("SecMarker A", source="inline.conf")
    assert d == Directive("SecMarker", ("A",), "inline.conf", 1)
    [d] = parse_text("SecMarker A")
    assert d.file == "<inline>"


ERRORS = [
    ('SecRule ARGS "@rx x', 1, "unterminated double quote"),
    ("SecRule ARGS '@rx x", 1, "unterminated single quote"),
    (r'SecRule ARGS "@rx x\"', 1, "unterminated double quote"),
    ('SecMarker "a"b', 1, "right after a closing quote"),
    ("SecRule ARGS", 1, "SecRule takes 2 or 3 arguments (variables, operator[, actions]), got 1"),
    ('SecRule ARGS "x" "id:1" extra', 1, "got 4 (unbalanced quote"),
    ('SecAction "id:1" # note', 1, "SecAction takes 1 argument, got 3"),
    ("SecMarker", 1, "SecMarker takes 1 argument, got 0"),
    ("SecRuleUpdateTargetById 1", 1, "takes 2 or 3 arguments"),
    ("SecRuleRemoveById", 1, "takes at least 1 argument"),
    ('"SecMarker" A', 1, "expected a directive name"),
    ("1SecMarker A", 1, "expected a directive name"),
    ("SecMarker A\x00", 1, "control character U+0000"),
    ("SecMarker A\rB", 1, "control character U+000D"),
    ("SecMarker A \\ \nSecMarker B", 1, "blank after a line-continuation backslash"),
    ("SecMarker A\nSecMarker B\\", 2, "line continuation at the end of the file"),
    # the error names the line where the directive starts, and the first error wins
    ('SecMarker A\n\nSecRule ARGS \\\n  "@rx x" \\\n  "id:1" \\\n  junk\nSecRule', 3, "got 4"),
    # '#' inside a continued directive is text, as in httpd
    ('SecAction \\\n# note\n  "id:1"', 1, "SecAction takes 1 argument, got 2"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS)
def test_errors(text: str, line: int, message: str) -> None:
    with pytest.raises(SecLangError) as info:
        parse_text(text, source="x.conf")
    assert info.value.file == "x.conf"
    assert info.value.line == line
    assert message in info.value.message
    assert str(info.value) == f"x.conf:{line}: {info.value.message}"


def test_error_is_value_error() -> None:
    with pytest.raises(ValueError, match=r"^<inline>:1: SecMarker takes"):
        parse_text("SecMarker")


def test_error_at_directive() -> None:
    [d] = parse_text("SecMarker A\n\nSecRule ARGS x", source="r.conf")[1:]
    err = SecLangError.at(d, "bad operator")
    assert (err.file, err.line, str(err)) == ("r.conf", 3, "r.conf:3: bad operator")


# --- Include ---


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_include_relative_to_including_file(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "SecMarker M1\nInclude sub/a.conf\nSecMarker M2\n")
    write(tmp_path / "sub" / "a.conf", "SecMarker A1\ninclude 'deeper/b.conf'\n")
    write(tmp_path / "sub" / "deeper" / "b.conf", "\n\nSecMarker B\n")
    got = [(d.args[0], Path(d.file), d.line) for d in parse_file(main)]
    assert got == [
        ("M1", main, 1),
        ("A1", tmp_path / "sub" / "a.conf", 1),
        ("B", tmp_path / "sub" / "deeper" / "b.conf", 3),
        ("M2", main, 3),
    ]


def test_include_glob_sorted(tmp_path: Path) -> None:
    for name in ("b.conf", "a.conf", "c.conf", "skip.txt"):
        write(tmp_path / "rules" / name, f"SecMarker {name}\n")
    got = parse_text('Include "rules/*.conf"', base_dir=tmp_path)
    assert [d.args[0] for d in got] == ["a.conf", "b.conf", "c.conf"]


def test_include_absolute_glob(tmp_path: Path) -> None:
    write(tmp_path / "x[1]" / "a.conf", "SecMarker A\n")
    got = parse_text(f"Include {tmp_path}/x[[]1]/*.conf")
    assert [d.args[0] for d in got] == ["A"]


def test_include_base_dir_with_glob_characters(tmp_path: Path) -> None:
    base = tmp_path / "odd[dir]"
    write(base / "a.conf", "SecMarker A\n")
    assert [d.args[0] for d in parse_text("Include *.conf", base_dir=base)] == ["A"]


def test_same_file_twice_is_not_a_loop(tmp_path: Path) -> None:
    write(tmp_path / "a.conf", "SecMarker A\n")
    got = parse_text("Include a.conf\nInclude a.conf", base_dir=tmp_path)
    assert [d.args[0] for d in got] == ["A", "A"]


def test_include_optional(tmp_path: Path) -> None:
    text = "IncludeOptional missing.conf\nIncludeOptional none/*.conf\nSecMarker A"
    assert [d.args[0] for d in parse_text(text, base_dir=tmp_path)] == ["A"]


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path / "bad.conf", "# x\nSecMarker\n")
    with pytest.raises(SecLangError) as info:
        parse_text("SecMarker A\nInclude bad.conf", base_dir=tmp_path)
    assert (Path(info.value.file), info.value.line) == (tmp_path / "bad.conf", 2)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("SecMarker A\nInclude missing.conf", 2, "no such file"),
        ("Include nothing/*.conf", 1, "the pattern matched no files"),
        ("Include", 1, "Include takes 1 argument"),
        ("Include a.conf b.conf", 1, "Include takes 1 argument"),
        ('Include ""', 1, "Include needs a path"),
        ("Include .", 1, "is a directory"),
    ],
)
def test_include_errors(tmp_path: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(SecLangError) as info:
        parse_text(text, source="main.conf", base_dir=tmp_path)
    assert (info.value.file, info.value.line) == ("main.conf", line)
    assert message in info.value.message


def test_relative_include_in_text_needs_base_dir() -> None:
    with pytest.raises(SecLangError, match="without base_dir"):
        parse_text("Include rules/*.conf")


def test_include_loop(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", "SecMarker A\nInclude b.conf\n")
    write(tmp_path / "b.conf", "\nInclude ./a.conf\n")
    with pytest.raises(SecLangError, match="Include loop") as info:
        parse_file(a)
    assert (Path(info.value.file), info.value.line) == (tmp_path / "b.conf", 2)


def test_include_self(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", "Include *.conf\n")
    with pytest.raises(SecLangError, match="Include loop"):
        parse_file(a)


def test_parse_file_missing(tmp_path: Path) -> None:
    with pytest.raises(SecLangError, match="cannot read"):
        parse_file(tmp_path / "nope.conf")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"SecMarker A\nSecMarker caf\xe9\n")
    with pytest.raises(SecLangError, match="not UTF-8") as info:
        parse_file(path)
    assert info.value.line == 2


# --- variables ---

VARIABLES = [
    ("ARGS", [VariableSpec("ARGS", None, False, False, False)]),
    (
        "request_headers:User-Agent",
        [VariableSpec("REQUEST_HEADERS", "User-Agent", False, False, False)],
    ),
    (
        "REQUEST_HEADERS|!REQUEST_HEADERS:Cookie|&ARGS|ARGS:/^x-.*$/|XML:/*|XML://@*"
        "|REQUEST_COOKIES:'/regex/'",
        [
            VariableSpec("REQUEST_HEADERS", None, False, False, False),
            VariableSpec("REQUEST_HEADERS", "Cookie", False, True, False),
            VariableSpec("ARGS", None, False, False, True),
            VariableSpec("ARGS", "^x-.*$", True, False, False),
            VariableSpec("XML", "/*", False, False, False),
            VariableSpec("XML", "//@*", False, False, False),
            VariableSpec("REQUEST_COOKIES", "regex", True, False, False),
        ],
    ),
    ("&TX:crs_setup_version", [VariableSpec("TX", "crs_setup_version", False, False, True)]),
    ("!ARGS_NAMES:/^(a|b)$/", [VariableSpec("ARGS_NAMES", "^(a|b)$", True, True, False)]),
    (
        r"ARGS:/a\/b/|ARGS",
        [
            VariableSpec("ARGS", r"a\/b", True, False, False),
            VariableSpec("ARGS", None, False, False, False),
        ],
    ),
    ("ARGS:'a|b'", [VariableSpec("ARGS", "a|b", False, False, False)]),
    (r"ARGS:'it\'s'", [VariableSpec("ARGS", "it's", False, False, False)]),
    (
        "TX:0|TX:1",
        [
            VariableSpec("TX", "0", False, False, False),
            VariableSpec("TX", "1", False, False, False),
        ],
    ),
    (
        " ARGS | ARGS_NAMES ",
        [
            VariableSpec("ARGS", None, False, False, False),
            VariableSpec("ARGS_NAMES", None, False, False, False),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), VARIABLES)
def test_parse_variables(text: str, expected: list[VariableSpec]) -> None:
    assert parse_variables(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty variable list"),
        ("ARGS|", "ends with '|'"),
        ("|ARGS", "expected a variable name"),
        ("ARGS||ARGS", "expected a variable name"),
        ("!&ARGS", "cannot be combined"),
        ("ARGS:", "empty key"),
        ("ARGS:/abc", "unterminated /regex/"),
        ("ARGS:/abc/x", "unexpected 'x'"),
        ("ARGS:'abc", "unterminated quote"),
        ("!ARGS", "needs a key"),
        ("AR-GS", "unexpected '-'"),
        ("ARGS NAMES", "unexpected 'N'"),
        ("1ARGS", "expected a variable name"),
    ],
)
def test_parse_variables_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_variables(text)
    assert message in str(info.value)


# --- operators ---

OPERATORS = [
    ("@rx ^foo$", OperatorSpec("rx", "^foo$", False)),
    ("!@rx ^foo$", OperatorSpec("rx", "^foo$", True)),
    ("@pmFromFile lfi-os-files.data", OperatorSpec("pmfromfile", "lfi-os-files.data", False)),
    ("@unconditionalMatch", OperatorSpec("unconditionalmatch", "", False)),
    ("@eq 0", OperatorSpec("eq", "0", False)),
    ("@within %{tx.allowed_methods}", OperatorSpec("within", "%{tx.allowed_methods}", False)),
    # implicit @rx: the whole text is the regex, as written
    ("^foo bar$", OperatorSpec("rx", "^foo bar$", False)),
    ("!^foo", OperatorSpec("rx", "^foo", True)),
    (" foo", OperatorSpec("rx", " foo", False)),
    ("", OperatorSpec("rx", "", False)),
    # blanks after the name are separators; trailing blanks belong to the argument
    ("@rx \t a b ", OperatorSpec("rx", "a b ", False)),
    ("  !@streq x", OperatorSpec("streq", "x", True)),
]


@pytest.mark.parametrize(("text", "expected"), OPERATORS)
def test_parse_operator(text: str, expected: OperatorSpec) -> None:
    assert parse_operator(text) == expected


@pytest.mark.parametrize("text", ["@", "@ foo", "!@", "@rx/foo/", "@1x foo"])
def test_parse_operator_errors(text: str) -> None:
    with pytest.raises(ValueError, match="invalid operator name"):
        parse_operator(text)


# --- actions ---

ACTIONS = [
    ("", []),
    ("pass", [ActionSpec("pass", None)]),
    (
        "id:1,phase:2,t:none,t:urlDecodeUni,msg:'a, b',setvar:'tx.x=+1',"
        "ctl:ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME,pass",
        [
            ActionSpec("id", "1"),
            ActionSpec("phase", "2"),
            ActionSpec("t", "none"),
            ActionSpec("t", "urlDecodeUni"),
            ActionSpec("msg", "a, b"),
            ActionSpec("setvar", "tx.x=+1"),
            ActionSpec("ctl", "ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME"),
            ActionSpec("pass", None),
        ],
    ),
    # CRS continuation lines leave blanks between items
    (
        "id:1,    phase:1,\tSkipAfter:END-X ,  NOLOG",
        [
            ActionSpec("id", "1"),
            ActionSpec("phase", "1"),
            ActionSpec("skipafter", "END-X"),
            ActionSpec("nolog", None),
        ],
    ),
    (
        "setvar:'tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}'",
        [ActionSpec("setvar", "tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}")],
    ),
    (
        r"msg:'prefix \'UP\' to',tag:x",
        [ActionSpec("msg", "prefix 'UP' to"), ActionSpec("tag", "x")],
    ),
    ("msg:'the \"magic\" one'", [ActionSpec("msg", 'the "magic" one')]),
    (r"logdata:'a\d\\'", [ActionSpec("logdata", r"a\d\\")]),
    ("msg:''", [ActionSpec("msg", "")]),
    ("msg:,pass", [ActionSpec("msg", ""), ActionSpec("pass", None)]),
    ("msg: 'x'", [ActionSpec("msg", "x")]),
    ("msg:a b", [ActionSpec("msg", "a b")]),
    (
        "logdata:%{MATCHED_VAR_NAME}=%{MATCHED_VAR}",
        [ActionSpec("logdata", "%{MATCHED_VAR_NAME}=%{MATCHED_VAR}")],
    ),
    ("ctl:ruleRemoveById=920540", [ActionSpec("ctl", "ruleRemoveById=920540")]),
]


@pytest.mark.parametrize(("text", "expected"), ACTIONS)
def test_parse_actions(text: str, expected: list[ActionSpec]) -> None:
    assert parse_actions(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id:1,", "ends with ','"),
        (",id:1", "expected an action name"),
        ("id:1,,pass", "expected an action name"),
        ("msg:'abc", "unterminated quote"),
        ("msg:'a'b", "unexpected 'b' after action 'msg'"),
        ("pass deny", "unexpected 'd' after action 'pass'"),
        ("t :none", "unexpected ':'"),
        ("setvar:tx.a='b,c'", 'unexpected "\'"'),
        ("1d:1", "expected an action name"),
    ],
)
def test_parse_actions_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_actions(text)
    assert message in str(info.value)


# --- the OWASP Core Rule Set ---


@pytest.mark.skipif(not CRS.is_dir(), reason=f"CRS data not found at {CRS}")
def test_parses_crs() -> None:
    text = f"Include {CRS / 'crs-setup.conf.example'}\nInclude {CRS / 'rules'}/*.conf\n"
    started = time.perf_counter()
    directives = parse_text(text)
    parsed = time.perf_counter() - started
    print(f"\nparsed {len(directives)} CRS directives in {parsed * 1000:.0f} ms")
    assert parsed < 0.5

    rule_files = [d for d in directives if Path(d.file).parent == CRS / "rules"]
    counts = Counter(d.name for d in rule_files)
    assert counts == {
        "SecRule": 695,
        "SecAction": 7,
        "SecMarker": 30,
        "SecRuleUpdateTargetById": 55,
        "SecComponentSignature": 1,
    }
    setup = Counter(d.name for d in directives if d.file.endswith("crs-setup.conf.example"))
    assert setup == {"SecDefaultAction": 5, "SecAction": 1}

    operators: Counter[str] = Counter()
    variables: Counter[str] = Counter()
    action_names: set[str] = set()
    for d in directives:
        name = d.name.lower()
        try:
            if name == "secrule":
                for v in parse_variables(d.args[0]):
                    variables[
                        f"{v.collection}:{v.key}" if v.collection == "XML" else v.collection
                    ] += 1
                op = parse_operator(d.args[1])
                operators["!" * op.negated + op.name] += 1
                actions = parse_actions(d.args[2]) if len(d.args) == 3 else []
            elif name in ("secaction", "secdefaultaction"):
                actions = parse_actions(d.args[0])
            elif name == "secruleupdatetargetbyid":
                targets = parse_variables(d.args[1])
                # all exclusions: !REQUEST_COOKIES:<name or /regex/>, once !ARGS_NAMES:json.profile
                assert all(t.negated and t.key for t in targets)
                actions = []
            else:
                actions = []
        except ValueError as exc:
            raise SecLangError.at(d, str(exc)) from exc
        action_names.update(a.name for a in actions)
    assert action_names <= KNOWN_ACTIONS, action_names - KNOWN_ACTIONS
    assert (operators["rx"], operators["!rx"], operators["lt"], operators["pmfromfile"]) == (
        297,
        21,
        189,
        20,
    )
    assert sum(operators.values()) == 695
    assert (variables["XML:/*"], variables["XML://@*"]) == (176, 175)


@pytest.mark.skipif(not CRS.is_dir(), reason=f"CRS data not found at {CRS}")
def test_crs_quoting_details() -> None:
    by_id: dict[str, Directive] = {}
    for d in parse_file(CRS / "rules" / "RESPONSE-955-WEB-SHELLS.conf") + parse_file(
        CRS / "rules" / "REQUEST-920-PROTOCOL-ENFORCEMENT.conf"
    ):
        if len(d.args) == 3:
            for a in parse_actions(d.args[2]):
                if a.name == "id" and a.value:
                    by_id[a.value] = d
    # a regex whose trailing space matters
    assert parse_operator(by_id["955180"].args[1]).argument.endswith("[0-9.]+ ")
    msg = [a.value for a in parse_actions(by_id["920490"].args[2]) if a.name == "msg"]
    assert msg == [
        "Request header x-up-devcap-post-charset detected in combination "
        "with prefix 'UP' to User-Agent"
    ]
