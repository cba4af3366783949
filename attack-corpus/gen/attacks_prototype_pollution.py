"""JavaScript prototype pollution: ``attacks/1160-prototype-pollution.yaml``.

The payload is mostly a *key*: ``?__proto__[isAdmin]=true`` through qs-style
query and form parsers, ``{"__proto__": {...}}`` and
``{"constructor": {"prototype": {...}}}`` through deep merges of JSON bodies,
multipart field names and cookie names. Set-by-path APIs take it as a value
(``{"path": "__proto__.isAdmin"}``). The library's placements put payloads in
values, so most tests are built by hand here. Encodings: plain, percent-
encoded once more (``%255f%255fproto%255f%255f``, for servers that decode
twice), and JSON ``\\u`` escapes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from attacks_xss import ftw_safe
from common import API_HEADERS, BROWSER_HEADERS, case, cases, request, write

FAMILY = "prototype-pollution"

QUERY_KEYS: list[tuple[str, str]] = [
    ("__proto__[isAdmin]", "true"),
    ("__proto__.isAdmin", "true"),
    ("constructor[prototype][isAdmin]", "true"),
    ("constructor.prototype.isAdmin", "true"),
    ("user[__proto__][role]", "admin"),
    ("__proto__[toString]", "x"),
    ("__pro__proto__to__[polluted]", "1"),
    ("__proto__[innerHTML]", "<img/src/onerror=alert(1)>"),
    ("__proto__[src]", "data:,alert(1)//"),
    ("x[constructor][prototype][polluted]", "1"),
    ("__proto__[sourceURL]", "\u2028\u2029alert(1)"),
    ("a[0][__proto__][b]", "1"),
]

JSON_BODIES: list[str] = [
    '{"__proto__": {"isAdmin": true}}',
    '{"constructor": {"prototype": {"isAdmin": true}}}',
    '{"user": {"name": "jane", "__proto__": {"role": "admin"}}}',
    ('{"__proto__": {"shell": "/proc/self/exe", "argv0": "console.log(require(\'child_process\')'
     '.execSync(\'id\').toString())//", "NODE_OPTIONS": "--require /proc/self/cmdline"}}'),
    '{"\\u005f\\u005fproto\\u005f\\u005f": {"polluted": 1}}',
    '[{"__proto__": {"a": 1}}]',
    '{"settings": {"constructor": {"prototype": {"outputFunctionName": "x;process.exit()//"}}}}',
    '{"__proto__": {"status": 510}}',
]

VALUE_PAYLOADS: list[str] = [
    "__proto__.isAdmin",
    "constructor.prototype.isAdmin",
    "__proto__[polluted]",
    '{"__proto__":{"isAdmin":true}}',
    "a.__proto__.b",
    "constructor[prototype][role]",
]


def build() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []

    def add(inp: dict[str, Any], desc: str, where: str, enc: str = "plain") -> None:
        tests.append(case(inp, family=FAMILY, attack=True, desc=desc,
                          tags=[f"placement:{where}", f"encoding:{enc}"]))

    form = {**BROWSER_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}
    json_h = {**API_HEADERS, "Content-Type": "application/json"}
    for i, (key, value) in enumerate(QUERY_KEYS):
        pair = f"{quote(key, safe='')}={quote_plus(value)}"
        add(request("GET", f"/api/v1/search?q=shoes&{pair}"), f"query key {key}", "query-name")
        if i % 2 == 0:
            add(request("POST", "/profile", form, f"name=Jane&{pair}"),
                f"form key {key}", "form-name")
        else:
            twice = quote(quote(key, safe=""), safe="")
            add(request("GET", f"/api/v1/search?{twice}={quote_plus(value)}"),
                f"query key {key}, percent-encoded twice", "query-name", "double-url")
    for i, body in enumerate(JSON_BODIES):
        add(request(["POST", "PUT", "PATCH"][i % 3], "/api/v1/users/42", json_h, body),
            f"JSON body {body[:80]}", "json-key",
            "unicode-escape" if "\\u005f" in body else "plain")
    # Multipart field names and cookie names.
    boundary = "----BastionPPBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"__proto__[isAdmin]\"\r\n\r\n"
            f"true\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
            f"hello\r\n--{boundary}--\r\n")
    add(request("POST", "/upload", {**BROWSER_HEADERS,
                                    "Content-Type": f"multipart/form-data; boundary={boundary}"},
                body),
        "multipart field named __proto__[isAdmin]", "multipart-name")
    add(request("GET", "/account", {**BROWSER_HEADERS,
                                    "Cookie": "session=abc; __proto__[isAdmin]=true"}),
        "cookie named __proto__[isAdmin]", "cookie-name")
    add(request("GET", "/account", {**BROWSER_HEADERS,
                                    "Cookie": "session=abc; constructor[prototype][x]=1"}),
        "cookie named constructor[prototype][x]", "cookie-name")
    # Set-by-path APIs: the path is a value.
    add(request("POST", "/api/v1/settings", json_h,
                '{"op": "set", "path": "__proto__.isAdmin", "value": true}'),
        "set-by-path API: path __proto__.isAdmin", "json")
    add(request("POST", "/api/v1/settings", json_h,
                '{"op": "set", "path": ["__proto__", "isAdmin"], "value": true}'),
        "set-by-path API: path as an array", "json")
    add(request("POST", "/api/v1/settings", json_h,
                '{"op": "set", "path": "constructor.prototype.isAdmin", "value": true}'),
        "set-by-path API: constructor.prototype path", "json")
    tests += cases(VALUE_PAYLOADS, family=FAMILY, placements=["query"])
    tests += cases(VALUE_PAYLOADS[:3], family=FAMILY, placements=["query"],
                   encodings=["double-url", "unicode-u"])
    tests += cases(VALUE_PAYLOADS[3:4], family=FAMILY, placements=["multipart", "cookie"])
    return tests


def main() -> None:
    write("attacks/1160-prototype-pollution.yaml", 1160000, "JavaScript prototype pollution",
          ftw_safe(build()))


if __name__ == "__main__":
    main()
