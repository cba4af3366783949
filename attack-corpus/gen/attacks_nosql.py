"""NoSQL injection: ``attacks/1120-nosql.yaml``.

MongoDB operator injection, the way it reaches an application:

- bracket syntax in query strings, forms and cookies (``password[$ne]=x``),
  which qs, PHP and Rails parse into ``{"password": {"$ne": "x"}}``;
- operator objects in JSON bodies where the application expects a string
  (``{"username": {"$gt": ""}}``), under login and lookup fields;
- a JSON document sent as a string parameter that the application parses
  (``filter={"$where": ...}``);
- server-side JavaScript: ``$where``/``$function``/``$accumulator`` bodies,
  and string-concatenated queries broken out of with ``'`` or ``"``
  (``' || '1'=='1``, ``'; return true; var x='``, ``'; sleep(5000); '``,
  ``this.password.match(/.*/)``, busy loops).

Encodings: URL-encoded brackets, double URL encoding and ``%u`` for the
bracket syntax, plain for JSON. Comparison operators on ordinary fields
(``price[$gt]=10``, ``filters[title][$containsi]=x``) are left out: Strapi and
Feathers APIs take exactly that syntax from clients. The cases here put
operators where a string is expected (credentials, tokens, codes, login
identities) or use the operators that execute code (``$where``, ``$function``,
``$accumulator``, ``$expr``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

from common import API_HEADERS, BROWSER_HEADERS, ENCODINGS, case, header_safe, request, write

FAMILY = "nosql"

FORM_HEADERS = {**BROWSER_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}
JSON_HEADERS = {**API_HEADERS, "Content-Type": "application/json"}


def nosql(stage_input: dict[str, Any], desc: str, placement: str, encoding: str = "plain",
          technique: str = "") -> dict[str, Any]:
    tags = [f"placement:{placement}", f"encoding:{encoding}", f"technique:{technique}"]
    assert "{{" not in (stage_input.get("data") or ""), "go-ftw would read {{ as a template"
    return case(stage_input, family=FAMILY, attack=True, desc=desc, tags=tags)


def enc_name(name: str, how: str) -> str:
    """The parameter name as it goes on the wire."""
    if how == "plain":
        return name  # brackets and $ sent literally, as browsers and curl -g do
    if how == "url":
        return quote(name, safe="")
    if how == "double-url":
        return quote(quote(name, safe=""), safe="")
    if how == "unicode-u":
        return "".join(c if c.isalnum() else f"%u{ord(c):04x}" for c in name)
    raise ValueError(how)


# (pairs, path, description): bracket-syntax operator injection.
BRACKET = [
    ([("username", "admin"), ("password[$ne]", "x")], "/login", "password[$ne] login bypass"),
    ([("username[$ne]", "null"), ("password[$ne]", "null")], "/login", "both fields [$ne]"),
    ([("username[$gt]", ""), ("password[$gt]", "")], "/login", "[$gt] empty string"),
    ([("username", "admin"), ("password[$regex]", "^a")], "/login", "[$regex] password guess"),
    ([("username[$regex]", ".*"), ("password[$exists]", "true")], "/login",
     "[$regex] and [$exists]"),
    ([("username[$in][]", "admin"), ("username[$in][]", "root"), ("password[$ne]", "")],
     "/login", "[$in] list of users"),
    ([("user", "admin"), ("pass[$nin][]", "wrong")], "/api/auth", "[$nin] password"),
    ([("email[$ne]", "x@example.com"), ("token[$ne]", "")], "/password/reset",
     "reset token [$ne]"),
    ([("q[$where]", "sleep(5000)")], "/search", "[$where] sleep"),
    ([("filter[$where]", "this.role=='admin'")], "/api/v1/users", "[$where] JavaScript"),
    ([("api_key[$ne]", "x")], "/api/v1/export", "api_key [$ne]"),
    ([("code[$regex]", "^1"), ("phone", "5551234")], "/verify", "[$regex] on an OTP code"),
    ([("name[$expr][$eq][]", "1"), ("name[$expr][$eq][]", "1")], "/api/v1/items", "[$expr]"),
    ([("username", "admin"), ("password[$not][$eq]", "x")], "/login", "[$not] password"),
    ([("$or[0][username]", "admin"), ("$or[1][a][$ne]", "1")], "/login", "$or at the top"),
]

# JSON bodies with operator objects: (path, body, description).
JSON_BODIES = [
    ("/api/v1/login", {"username": {"$ne": None}, "password": {"$ne": None}},
     "$ne null on both fields"),
    ("/api/v1/login", {"username": "admin", "password": {"$gt": ""}}, "$gt empty string"),
    ("/api/v1/login", {"email": {"$regex": ".*@example\\.com"}, "password": {"$exists": True}},
     "$regex email, $exists password"),
    ("/api/v1/login", {"username": {"$in": ["admin", "root", "administrator"]},
                       "password": {"$ne": "x"}}, "$in user list"),
    ("/api/v1/login", {"user": {"login": "admin", "password": {"$regex": "^s"}}},
     "nested $regex password"),
    ("/api/v1/session", {"token": {"$ne": ""}}, "session token $ne"),
    ("/api/v1/password-reset", {"email": "victim@example.com", "resetToken": {"$ne": None}},
     "reset token $ne"),
    ("/api/v1/search", {"filter": {"$where": "this.price < 0 || sleep(5000)"}},
     "$where with sleep"),
    ("/api/v1/search", {"$where": "function() { return this.isAdmin == true; }"},
     "$where function"),
    ("/api/v1/items", {"query": {"name": {"$function": {
        "body": "function(n) { return true; }", "args": ["$name"], "lang": "js"}}}},
     "$function server-side JavaScript"),
    ("/api/v1/report", {"pipeline": [{"$group": {"_id": None, "x": {"$accumulator": {
        "init": "function() { return 0; }", "accumulate": "function(s) { return s; }",
        "accumulateArgs": [], "merge": "function(a, b) { return a; }", "lang": "js"}}}}]},
     "$accumulator server-side JavaScript"),
    ("/api/v1/users/lookup", {"username": {"$expr": {"$eq": [1, 1]}}}, "$expr tautology"),
    ("/api/v1/otp/verify", {"phone": "5551234", "code": {"$gte": 0}}, "OTP code $gte"),
    ("/api/v1/login", {"login": {"$nin": [""]}, "pwd": {"$nin": [""]}}, "$nin on login"),
    ("/graphql", {"query": "query($f: JSON) { users(filter: $f) { email } }",
                  "variables": {"f": {"password": {"$regex": "^a"}}}},
     "GraphQL variable carrying $regex"),
]

# A JSON document in a string parameter the application parses.
JSON_STRINGS = [
    ('{"username": {"$ne": null}, "password": {"$ne": null}}', "login filter as a string"),
    ('{"$where": "sleep(5000) || true"}', "$where as a string"),
    ('{"$gt": ""}', "bare operator object"),
    ('{"email": {"$regex": "^admin"}}', "$regex filter"),
    ("{'$ne': 1}", "single-quoted operator object"),
]

# Server-side JavaScript and string-concatenated query break-outs.
JS_PAYLOADS = [
    "' || '1'=='1",
    "admin' || 'a'=='a",
    "\" || \"\"==\"",
    "'; return true; var x='",
    "\"; return true; var foo=\"",
    "'; sleep(5000); var x='",
    "1; sleep(5000)",
    "' && this.password.match(/.*/)//",
    "' && this.passwordzz.match(/.*/)//",
    "admin' && this.password.match(/^a.*$/)//",
    "'; while(true){}; var x='",
    "';it=new Date();do{pt=new Date();}while(pt-it<5000);var x='",
    "', $where: '1 == 1",
    "', $or: [ {}, { 'a':'a",
    "true, $where: '1 == 1'",
    "1, $where: 'sleep(5000)'",
    "' || 1==1//",
    "0;return true",
    "'; return db.users.find(); var x='",
    "db.injection.insert({success:1});",
    "'; db.users.drop(); var x='",
    "' } ], $comment: 'injected",
]


def build() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    add = out.append
    # bracket syntax: form and query, plain; then encodings
    for i, (pairs, path, desc) in enumerate(BRACKET):
        # A browser percent-encodes the brackets of a form field name; a
        # query string typed or built by a script often keeps them literal.
        form_body = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs)
        query = "&".join(f"{k}={quote_plus(v)}" for k, v in pairs)
        add(nosql(request("POST", path, FORM_HEADERS, form_body), f"form: {desc}", "form",
                  technique="operator"))
        add(nosql(request("GET", f"{path}?{query}", BROWSER_HEADERS), f"query: {desc}", "query",
                  technique="operator"))
        how = ("url", "double-url", "unicode-u")[i % 3]
        enc_query = "&".join(f"{enc_name(k, how)}={quote_plus(v)}" for k, v in pairs)
        if how == "url" or i % 2:
            add(nosql(request("GET", f"{path}?{enc_query}", BROWSER_HEADERS),
                      f"query ({how}): {desc}", "query", how, "operator"))
        else:
            # one layer more than the form's own encoding
            layer = (lambda k: quote(k, safe="")) if how == "double-url" else \
                (lambda k: enc_name(k, "unicode-u"))
            enc_body = "&".join(f"{quote_plus(layer(k))}={quote_plus(v)}" for k, v in pairs)
            add(nosql(request("POST", path, FORM_HEADERS, enc_body), f"form ({how}): {desc}",
                      "form", how, "operator"))
    # multipart field names and cookies
    boundary = "----WebKitFormBoundaryq8Yv2nR4L0mT7sKc"
    for name, value in [("password[$ne]", "x"), ("username[$regex]", "^adm")]:
        body = (f"--{boundary}\nContent-Disposition: form-data; name=\"username\"\n\nadmin\n"
                f"--{boundary}\nContent-Disposition: form-data; name=\"{name}\"\n\n{value}\n"
                f"--{boundary}--\n")
        ctype = f"multipart/form-data; boundary={boundary}"
        inp = request("POST", "/login", {**BROWSER_HEADERS, "Content-Type": ctype}, body)
        inp["headers"]["Content-Length"] = str(len(body.replace("\n", "\r\n").encode()))
        add(nosql(inp, f"multipart field {name}", "multipart", technique="operator"))
    for cookie, desc in [("session[$ne]=1", "cookie name [$ne]"),
                         ("user_id[$gt]=0; theme=dark", "cookie name [$gt]"),
                         ("auth%5B%24ne%5D=x", "cookie name [$ne] URL-encoded")]:
        add(nosql(request("GET", "/account", {**BROWSER_HEADERS, "Cookie": cookie}), desc,
                  "cookie", "url" if "%" in cookie else "plain", "operator"))
    # JSON bodies
    for path, doc, desc in JSON_BODIES:
        add(nosql(request("POST", path, JSON_HEADERS, json.dumps(doc)), f"JSON: {desc}", "json",
                  technique="operator" if "$where" not in json.dumps(doc) else "javascript"))
    # JSON documents in string parameters
    for doc, desc in JSON_STRINGS:
        add(nosql(request("GET", f"/api/v1/users?filter={quote_plus(doc)}", BROWSER_HEADERS),
                  f"query: {desc}", "query", technique="operator"))
        add(nosql(request("POST", "/api/v1/search", JSON_HEADERS, json.dumps({"where": doc})),
                  f"JSON string: {desc}", "json", technique="operator"))
    # JavaScript payloads in several placements and encodings
    places = ("form", "query", "json", "cookie")
    for i, payload in enumerate(JS_PAYLOADS):
        for j in range(2):
            where = places[(i + j) % len(places)]
            enc = "plain" if j == 0 else ("plain", "double-url", "unicode-u", "plain")[i % 4]
            if where == "cookie":
                enc = "plain"  # cookies carry one URL-encoding layer only
            value = ENCODINGS[enc](payload)
            if where == "form":
                inp = request("POST", "/login", FORM_HEADERS,
                              f"username={quote_plus(value)}&password=s3cret%21")
            elif where == "query":
                inp = request("GET", f"/api/v1/products?category={quote_plus(value)}",
                              BROWSER_HEADERS)
            elif where == "json":
                inp = request("POST", "/api/v1/login", JSON_HEADERS,
                              json.dumps({"username": value, "password": "secret"}))
            else:
                if not header_safe(value):
                    continue
                inp = request("GET", "/account", {**BROWSER_HEADERS,
                                                  "Cookie": f"session=abc; user={quote(value)}"})
            add(nosql(inp, f"{where}: {payload}", where, enc, "javascript"))
    return out


def main() -> None:
    write("attacks/1120-nosql.yaml", 1120000,
          "NoSQL (MongoDB) injection: operator injection in brackets, JSON and JSON strings; "
          "server-side JavaScript and string break-outs", build())


if __name__ == "__main__":
    main()
