"""Every action, declaratively: inline rules + a request -> what the transaction shows."""

from __future__ import annotations

import pytest

from tests.waf.test_engine import FORM, Req, fired, run
from waf.actions import action_names
from waf.rules import RuleSetError, compile_rules
from waf.seclang import parse_text

# (name, rules, request, rule ids logged)
CASES: list[tuple[str, str, Req, list[int]]] = [
    ("nolog hides the match", 'SecAction "id:1,phase:1,pass,nolog"', Req(), []),
    ("log shows it", 'SecAction "id:1,phase:1,pass,log"', Req(), [1]),
    ("noauditlog with log still logs", 'SecAction "id:1,phase:1,pass,log,noauditlog"', Req(), [1]),
    ("setvar =", 'SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=5"\n'
     'SecRule TX:a "@eq 5" "id:2,phase:1,pass"', Req(), [2]),
    ("setvar =-", 'SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=5,setvar:tx.a=-7"\n'
     'SecRule TX:a "@eq -2" "id:2,phase:1,pass"', Req(), [2]),
    ("setvar delete", 'SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=5,setvar:!tx.a"\n'
     'SecRule &TX:a "@eq 0" "id:2,phase:1,pass"', Req(), [2]),
    ("setvar without value is 1", 'SecAction "id:1,phase:1,pass,nolog,setvar:tx.flag"\n'
     'SecRule TX:flag "@eq 1" "id:2,phase:1,pass"', Req(), [2]),
    ("setvar macro key", 'SecRule ARGS:k "@rx ." "id:1,phase:2,pass,nolog,setvar:tx.%{ARGS.k}=1"\n'
     'SecRule TX:hello "@eq 1" "id:2,phase:2,pass"', Req(uri="/?k=hello"), [2]),
    ("initcol + setvar on it", 'SecAction "id:1,phase:1,pass,nolog,initcol:ip=%{remote_addr},'
     'setvar:ip.hits=+1"\nSecRule IP:hits "@eq 1" "id:2,phase:1,pass"', Req(), [2]),
    ("setenv", 'SecAction "id:1,phase:1,pass,nolog,setenv:MODE=strict"\n'
     'SecRule ENV:MODE "@streq strict" "id:2,phase:1,pass"', Req(), [2]),
    ("expirevar is accepted", 'SecAction "id:1,phase:1,pass,log,expirevar:tx.a=60"', Req(), [1]),
    ("ctl ruleEngine=Off", 'SecAction "id:1,phase:1,pass,nolog,ctl:ruleEngine=Off"\n'
     'SecAction "id:2,phase:2,pass"', Req(), []),
    ("ctl ruleRemoveByTag", 'SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveByTag=noisy"\n'
     'SecAction "id:2,phase:1,pass,tag:noisy"\nSecAction "id:3,phase:1,pass,tag:quiet"',
     Req(), [3]),
    ("ctl ruleRemoveByMsg", 'SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveByMsg=bye"\n'
     "SecAction \"id:2,phase:1,pass,msg:'bye'\"\nSecAction \"id:3,phase:1,pass,msg:'hi'\"",
     Req(), [3]),
    ("ctl ruleRemoveTargetByTag",
     'SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=t1;ARGS:a"\n'
     'SecRule ARGS "@rx x" "id:2,phase:2,pass,tag:t1"', Req(uri="/?a=x"), []),
    ("ctl ruleRemoveTargetByMsg",
     'SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetByMsg=m1;ARGS:a"\n'
     "SecRule ARGS \"@rx x\" \"id:2,phase:2,pass,msg:'m1'\"", Req(uri="/?a=x&b=x"), [2]),
    ("ctl requestBodyAccess=Off", 'SecAction "id:1,phase:1,pass,nolog,ctl:requestBodyAccess=Off"\n'
     'SecRule ARGS_POST "@rx ." "id:2,phase:2,pass"',
     Req(method="POST", headers=FORM, body=b"a=1"), []),
    ("ctl requestBodyProcessor=URLENCODED",
     'SecAction "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=URLENCODED"\n'
     'SecRule ARGS_POST:a "@streq 1" "id:2,phase:2,pass"',
     Req(method="POST", headers=[("Content-Type", "text/plain")], body=b"a=1"), [2]),
    ("ctl forceRequestBodyVariable",
     'SecAction "id:1,phase:1,pass,nolog,ctl:forceRequestBodyVariable=On"\n'
     'SecRule REQUEST_BODY "@contains raw" "id:2,phase:2,pass"',
     Req(method="POST", headers=[("Content-Type", "text/plain")], body=b"raw text"), [2]),
    ("no forced body variable", 'SecRule REQUEST_BODY "@contains raw" "id:2,phase:2,pass"',
     Req(method="POST", headers=[("Content-Type", "text/plain")], body=b"raw text"), []),
    ("ctl responseBodyAccess=Off",
     'SecAction "id:1,phase:1,pass,nolog,ctl:responseBodyAccess=Off"\n'
     'SecRule RESPONSE_BODY "@rx ." "id:2,phase:4,pass"',
     Req(response_headers=[("Content-Type", "text/html")], response_body=b"x"), []),
    ("severity by name", "SecAction \"id:1,phase:1,pass,severity:'CRITICAL'\"\n"
     'SecRule HIGHEST_SEVERITY "@eq 2" "id:2,phase:1,pass"', Req(), [1, 2]),
    ("allow:phase skips the rest of the phase only",
     'SecRuleEngine On\nSecAction "id:1,phase:1,allow:phase"\nSecAction "id:2,phase:1,pass"\n'
     'SecAction "id:3,phase:2,pass"', Req(), [1, 3]),
    ("allow:request skips the request phases",
     'SecRuleEngine On\nSecAction "id:1,phase:1,allow:request"\nSecAction "id:2,phase:2,pass"\n'
     'SecAction "id:3,phase:3,pass"', Req(), [1, 3]),
]


@pytest.mark.parametrize(("rules", "req", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_actions(rules: str, req: Req, expected: list[int]) -> None:
    assert [m.id for m in run(rules, req).logged_rules] == expected


def test_metadata_reaches_the_log() -> None:
    tx = run("SecAction \"id:7,phase:1,pass,msg:'m',logdata:'d',severity:4,tag:a,tag:b,"
             "ver:'v1',rev:2,maturity:9,accuracy:8\"")
    (m,) = tx.matched
    assert (m.id, m.msg, m.data, m.severity, m.tags) == (7, "m", "d", 4, ("a", "b"))


def test_redirect_and_status() -> None:
    tx = run("SecRuleEngine On\nSecAction \"id:1,phase:1,redirect:'https://x.test/%{tx.0}'\"")
    assert tx.interruption is not None
    assert (tx.interruption.action, tx.interruption.status) == ("redirect", 302)
    assert tx.interruption.url == "https://x.test/"
    tx = run('SecRuleEngine On\nSecAction "id:1,phase:1,drop"')
    assert tx.interruption is not None and tx.interruption.action == "drop"


def test_pass_does_not_interrupt_in_on_mode() -> None:
    tx = run('SecRuleEngine On\nSecAction "id:1,phase:1,pass"')
    assert tx.interruption is None and fired(tx) == [1]


@pytest.mark.parametrize(("actions", "message"), [
    ("id:1,phase:9", "bad phase"),
    ("id:x", "positive integer"),
    ("id:1,severity:loud", "unknown severity"),
    ("id:1,status:99", "HTTP status"),
    ("id:1,skip:0", "positive number"),
    ("id:1,allow:forever", "allow takes"),
    ("id:1,t:nosuch", "unknown transformation"),
    ("id:1,ctl:nosuch=1", "unknown ctl"),
    ("id:1,setvar:novalue", "COLLECTION.NAME"),
    ("id:1,initcol:ip", "NAME=KEY"),
    ("id:1,capture:yes", "takes no value"),
    ("id:1,msg", "needs a value"),
])
def test_bad_action_arguments_are_load_errors(actions: str, message: str) -> None:
    with pytest.raises(RuleSetError) as info:
        compile_rules(parse_text(f'SecAction "{actions}"', "a.conf"))
    assert message in str(info.value)
    assert info.value.line == 1


def test_chain_links_may_not_carry_starter_actions() -> None:
    with pytest.raises(RuleSetError, match="first rule of a chain"):
        compile_rules(parse_text('SecRule ARGS "@rx a" "id:1,phase:1,chain"\n'
                                 'SecRule ARGS "@rx b" "id:2"'))


def test_every_action_crs_uses_is_registered() -> None:
    crs_actions = {"accuracy", "auditlog", "block", "capture", "chain", "ctl", "deny", "id",
                   "initcol", "log", "logdata", "maturity", "msg", "multimatch", "noauditlog",
                   "nolog", "pass", "phase", "rev", "setvar", "severity", "skipafter",
                   "status", "t", "tag", "ver", "allow", "skip", "expirevar", "drop",
                   "redirect", "setenv"}
    assert crs_actions <= set(action_names())
