"""Building blocks for the corpus generators: placements, encodings, go-ftw YAML.

Each generator (``gen/<name>.py``) lists payloads and calls :func:`cases` to
put each one in several places of a request (query, path, form, JSON, XML,
multipart, header, cookie) under several encodings, then :func:`write` to
produce ``attacks/<file>.yaml`` or ``benign/<file>.yaml`` in the go-ftw
format ``bastion replay`` reads. Run ``python attack-corpus/gen/all.py`` to
regenerate every file; the YAML is checked in, so a corpus run needs no
generator.

Every test carries tags: ``attack`` or ``benign``; ``family:<name>`` (attacks)
or ``kind:<name>`` (benign traffic); ``placement:<where>``; ``encoding:<how>``.
An attack passes when the gateway refuses it (403); a benign request passes
when it gets through (200 from the reflecting backend).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import yaml

CORPUS = Path(__file__).resolve().parent.parent

BROWSER_HEADERS: dict[str, str] = {
    "Host": "shop.example.com",
    "User-Agent": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                   "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
    "Accept-Encoding": "gzip, deflate, br",
}
API_HEADERS: dict[str, str] = {
    "Host": "api.example.com",
    "User-Agent": "python-requests/2.32.3",
    "Accept": "application/json",
}

# ---------------------------------------------------------------- encodings
# An encoding turns the payload into what the client puts on the wire *before*
# the placement's own escaping (URL encoding of a query value, JSON string
# escaping...), the way an attacker layers them.

Encoding = Callable[[str], str]


def plain(payload: str) -> str:
    return payload


def url_once(payload: str) -> str:
    """Percent-encoded once more than the placement needs: the server decodes twice."""
    return quote(payload, safe="")


def html_entities(payload: str) -> str:
    """Every non-alphanumeric character as a decimal HTML entity."""
    return "".join(ch if ch.isalnum() else f"&#{ord(ch)};" for ch in payload)


def html_hex_entities(payload: str) -> str:
    return "".join(ch if ch.isalnum() else f"&#x{ord(ch):x};" for ch in payload)


def unicode_percent_u(payload: str) -> str:
    """IIS-style ``%uXXXX`` for every non-alphanumeric character."""
    return "".join(ch if ch.isalnum() else f"%u{ord(ch):04x}" for ch in payload)


def base64_text(payload: str) -> str:
    return base64.b64encode(payload.encode()).decode()


def mixed_case(payload: str) -> str:
    return "".join(ch.upper() if i % 2 else ch.lower() for i, ch in enumerate(payload))


ENCODINGS: dict[str, Encoding] = {
    "plain": plain,
    "double-url": url_once,
    "html-entity": html_entities,
    "html-hex-entity": html_hex_entities,
    "unicode-u": unicode_percent_u,
    "base64": base64_text,
    "mixed-case": mixed_case,
}

# --------------------------------------------------------------- placements
# A placement builds one go-ftw stage input from a (wire-encoded) value.

Placement = Callable[[str], dict[str, Any]]


def _input(method: str, uri: str, headers: dict[str, str], data: str | None = None
           ) -> dict[str, Any]:
    out: dict[str, Any] = {"dest_addr": "127.0.0.1", "port": 80, "method": method,
                           "uri": uri, "headers": dict(headers)}
    if data is not None:
        wire = data.encode()
        if "multipart/form-data" in out["headers"].get("Content-Type", "").lower():
            # go-ftw sends a multipart body's "\n" as "\r\n": write "\n", count "\r\n".
            data = data.replace("\r\n", "\n")
            wire = data.replace("\n", "\r\n").encode()
        if "{{" in data:
            # go-ftw reads "{{" in data as a template: send such bodies encoded
            # (go-ftw expands a multipart body's "\n" there too).
            out["encoded_data"] = base64.b64encode(data.encode()).decode()
        else:
            out["data"] = data
        out["headers"]["Content-Length"] = str(len(wire))
    return out


def in_query(name: str = "q", path: str = "/search") -> Placement:
    return lambda v: _input("GET", f"{path}?{name}={quote_plus(v)}", BROWSER_HEADERS)


def in_path(prefix: str = "/files/") -> Placement:
    return lambda v: _input("GET", prefix + quote(v, safe=""), BROWSER_HEADERS)


def in_form(name: str = "comment", path: str = "/contact") -> Placement:
    def build(v: str) -> dict[str, Any]:
        headers = {**BROWSER_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}
        return _input("POST", path, headers, f"name=Jane+Doe&{name}={quote_plus(v)}")
    return build


def in_json(key: str = "query", path: str = "/api/v1/search") -> Placement:
    def build(v: str) -> dict[str, Any]:
        headers = {**API_HEADERS, "Content-Type": "application/json"}
        body = json.dumps({"page": 1, "filter": {key: v}, "tags": ["a", "b"]})
        return _input("POST", path, headers, body)
    return build


def in_xml(element: str = "name", path: str = "/api/v1/orders") -> Placement:
    def build(v: str) -> dict[str, Any]:
        headers = {**API_HEADERS, "Content-Type": "application/xml"}
        body = (f'<?xml version="1.0"?><order><id>42</id>'
                f"<{element}>{html.escape(v, quote=False)}</{element}></order>")
        return _input("POST", path, headers, body)
    return build


def in_multipart(field: str = "description", path: str = "/upload") -> Placement:
    def build(v: str) -> dict[str, Any]:
        boundary = "----BastionCorpusBoundary7MA4YWxkTrZu0gW"
        headers = {**BROWSER_HEADERS,
                   "Content-Type": f"multipart/form-data; boundary={boundary}"}
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
                f"Quarterly report\r\n--{boundary}\r\n"
                f"Content-Disposition: form-data; name=\"{field}\"\r\n\r\n{v}\r\n"
                f"--{boundary}--\r\n")
        return _input("POST", path, headers, body)
    return build


def in_header(name: str = "User-Agent", path: str = "/") -> Placement:
    return lambda v: _input("GET", path, {**BROWSER_HEADERS, name: v})


def in_cookie(name: str = "prefs", path: str = "/account") -> Placement:
    return lambda v: _input("GET", path,
                            {**BROWSER_HEADERS, "Cookie": f"session=abc123; {name}={quote(v)}"})


PLACEMENTS: dict[str, Placement] = {
    "query": in_query(),
    "path": in_path(),
    "form": in_form(),
    "json": in_json(),
    "xml": in_xml(),
    "multipart": in_multipart(),
    "header": in_header("Referer"),
    "cookie": in_cookie(),
}


def header_safe(value: str) -> bool:
    """Whether a value can travel in a header as is (no CR/LF, printable Latin-1)."""
    return all(ch == "\t" or 0x20 <= ord(ch) < 0x7F for ch in value)


# ------------------------------------------------------------------- cases


def cases(payloads: Iterable[str], *, family: str, placements: Sequence[str],
          encodings: Sequence[str] = ("plain",), attack: bool = True,
          extra_tags: Sequence[str] = (), desc: str = "") -> list[dict[str, Any]]:
    """One test per (payload, placement, encoding); headers skip values they cannot carry."""
    out: list[dict[str, Any]] = []
    for payload in payloads:
        for enc in encodings:
            value = ENCODINGS[enc](payload)
            for where in placements:
                if where in ("header", "cookie") and not header_safe(value):
                    continue
                stage_input = PLACEMENTS[where](value)
                tags = ["attack" if attack else "benign",
                        f"{'family' if attack else 'kind'}:{family}",
                        f"placement:{where}", f"encoding:{enc}", *extra_tags]
                out.append({"desc": desc or payload[:120], "tags": tags,
                            "stages": [{"input": stage_input,
                                        "output": {"status": 403 if attack else 200}}]})
    return out


def spread(payloads: Sequence[str], rotation: Sequence[str], per: int, *,
           places: Mapping[str, tuple[str, Placement]], family: str,
           encodings: Sequence[str] = ("plain",), start: int = 0) -> list[dict[str, Any]]:
    """Each payload in ``per`` placements taken in turn from ``rotation`` (keys of ``places``:
    (placement tag, builder)); headers, cookies and XML skip values they cannot carry."""
    out: list[dict[str, Any]] = []
    k = start
    for payload in payloads:
        for enc in encodings:
            value = ENCODINGS[enc](payload)
            placed = tries = 0
            while placed < per and tries < len(rotation):
                key = rotation[k % len(rotation)]
                k += 1
                tries += 1
                where, build = places[key]
                if where in ("header", "cookie") and not header_safe(value):
                    continue
                if where == "xml" and "\x00" in value:
                    continue  # XML cannot carry a NUL character
                out.append(case(build(value), family=family, attack=True, desc=payload[:120],
                                tags=[f"placement:{where}", f"encoding:{enc}"]))
                placed += 1
    return out


def case(stage_input: dict[str, Any], *, family: str, attack: bool, desc: str,
         tags: Sequence[str] = ()) -> dict[str, Any]:
    """A hand-built request (method, URI, headers, data) as one test."""
    return {"desc": desc,
            "tags": ["attack" if attack else "benign",
                     f"{'family' if attack else 'kind'}:{family}", *tags],
            "stages": [{"input": stage_input,
                        "output": {"status": 403 if attack else 200}}]}


def request(method: str, uri: str, headers: dict[str, str] | None = None,
            data: str | None = None) -> dict[str, Any]:
    return _input(method, uri, headers if headers is not None else BROWSER_HEADERS, data)


def write(relative: str, rule_id: int, description: str, tests: list[dict[str, Any]]) -> Path:
    """Write ``attacks/...`` or ``benign/...`` with tests numbered from 1."""
    for i, test in enumerate(tests, start=1):
        test["test_id"] = i
    doc = {"meta": {"author": "bastion", "description": description, "enabled": True},
           "rule_id": rule_id,
           "tests": [{"test_id": t["test_id"], "desc": t["desc"], "tags": t["tags"],
                      "stages": t["stages"]} for t in tests]}
    path = CORPUS / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))
    return path
