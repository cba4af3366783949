"""Helpers shared by the ``benign_*`` generators; this module writes no file itself.

The benign corpus models requests that real clients send. These helpers build
them the way go-ftw puts them on the wire (see ``waf.ftw.build_request``):

- ``multipart/form-data`` bodies are written with ``\\n`` line ends, because
  go-ftw turns every ``\\n`` of such a body into ``\\r\\n``; Content-Length is
  counted after that conversion.
- a body containing ``{{`` (a Vue or Jinja template quoted in a post, a GitHub
  Actions expression) would be read as a Go template, so it travels as
  base64 ``encoded_data`` instead of ``data``.
- header sets that must keep a browser's order go in ``ordered_headers``.

Everything is deterministic: ids, tokens and signatures derive from fixed seeds.
"""

# Real text has en dashes, multiplication signs and dotless i's: keep them.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import uuid
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, quote_plus

from common import case

Input = dict[str, Any]
Headers = Mapping[str, str] | Sequence[tuple[str, str]]

CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
FIREFOX_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/18.1 Safari/605.1.15")
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
CHROME_SEC_CH_UA = '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
HTML_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
               "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")


def site_headers(host: str = "shop.example.com", *, ua: str = CHROME_UA,
                 accept: str = HTML_ACCEPT, lang: str = "en-US,en;q=0.9",
                 **extra: str) -> dict[str, str]:
    """A browser's usual headers for a page on ``host`` (keyword names use ``_`` for ``-``)."""
    out = {"Host": host, "User-Agent": ua, "Accept": accept, "Accept-Language": lang,
           "Accept-Encoding": "gzip, deflate, br, zstd"}
    out.update({k.replace("_", "-"): v for k, v in extra.items()})
    return out


def xhr_headers(host: str = "shop.example.com", *, origin: str | None = None,
                ua: str = CHROME_UA, **extra: str) -> dict[str, str]:
    """A single-page app's ``fetch()`` to its own API."""
    origin = origin or f"https://{host}"
    out = {"Host": host, "User-Agent": ua, "Accept": "application/json, text/plain, */*",
           "Accept-Language": "en-US,en;q=0.9", "Accept-Encoding": "gzip, deflate, br, zstd",
           "Origin": origin, "Referer": origin + "/", "Sec-Fetch-Site": "same-origin",
           "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    out.update({k.replace("_", "-"): v for k, v in extra.items()})
    return out


def api_headers(host: str = "api.example.com", *, ua: str = "python-requests/2.32.3",
                token: str | None = None, **extra: str) -> dict[str, str]:
    """A server-side or SDK client calling a JSON API."""
    out = {"Host": host, "User-Agent": ua, "Accept": "application/json"}
    if token:
        out["Authorization"] = f"Bearer {token}"
    out.update({k.replace("_", "-"): v for k, v in extra.items()})
    return out


# ------------------------------------------------------------------ requests


def wire_body(body: str | bytes, content_type: str) -> bytes:
    """The body bytes go-ftw sends (multipart: every ``\\n`` becomes ``\\r\\n``)."""
    raw = body.encode() if isinstance(body, str) else body
    if "multipart/form-data;" in content_type.lower():
        raw = raw.replace(b"\n", b"\r\n")
    return raw


def req(method: str, uri: str, headers: Headers, body: str | bytes | None = None,
        content_type: str | None = None) -> Input:
    """One go-ftw stage input. ``headers`` as a mapping (sent sorted by name) or as a
    sequence of pairs (sent in that order). ``content_type`` is added when given. A
    bytes body, or one with ``{{``, travels as base64 ``encoded_data``."""
    out: Input = {"dest_addr": "127.0.0.1", "port": 80, "method": method, "uri": uri}
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    for name, value in pairs:
        if not all(ch == "\t" or 0x20 <= ord(ch) < 0x7F for ch in value):
            raise ValueError(f"{method} {uri}: header {name} is not printable ASCII: {value!r}")
    if body is not None:
        ctype = next((v for k, v in pairs if k.lower() == "content-type"), "")
        pairs.append(("Content-Length", str(len(wire_body(body, ctype)))))
        if isinstance(body, bytes):
            out["encoded_data"] = base64.b64encode(body).decode()
        elif "{{" in body:
            out["encoded_data"] = base64.b64encode(body.encode()).decode()
        else:
            out["data"] = body
    if isinstance(headers, Mapping):
        out["headers"] = dict(pairs)
    else:
        out["ordered_headers"] = [{"name": k, "value": v} for k, v in pairs]
    return out


def benign(inp: Input, kind: str, desc: str, *tags: str) -> dict[str, Any]:
    """A benign test of ``kind`` with extra tags such as ``placement:json``. Content goes
    as clients send it, so the encoding is ``plain`` (as :func:`common.cases` tags it)."""
    return case(inp, family=kind, attack=False, desc=desc[:160],
                tags=[*tags, "encoding:plain"])


# ------------------------------------------------------------------- bodies


def form(pairs: Sequence[tuple[str, str]] | Mapping[str, str]) -> str:
    """``application/x-www-form-urlencoded`` as browsers encode it."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in items)


def query(pairs: Sequence[tuple[str, str]] | Mapping[str, str], *, space: str = "+",
          brackets: bool = False) -> str:
    """A query string as a browser's form submission encodes it; ``space="%20"`` as
    ``encodeURIComponent`` does; ``brackets=True`` keeps ``[]`` in names, as URLs
    that scripts build by hand (``resources[type]=...``) have them."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    safe = "[]" if brackets else ""
    if space == "+":
        return "&".join(f"{quote_plus(k, safe=safe)}={quote_plus(v)}" for k, v in items)
    return "&".join(f"{quote(k, safe=safe)}={quote(v, safe='')}" for k, v in items)


def uri_component(text: str) -> str:
    """JavaScript's ``encodeURIComponent``."""
    return quote(text, safe="!~*'()")


def js(obj: Any, *, pretty: bool = False) -> str:
    """JSON as JavaScript's ``JSON.stringify`` writes it (UTF-8, no ASCII escaping)."""
    if pretty:
        return json.dumps(obj, ensure_ascii=False, indent=2)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def py_json(obj: Any) -> str:
    """JSON as Python's ``requests`` sends it (``json.dumps`` defaults: ASCII escapes)."""
    return json.dumps(obj)


BOUNDARY_CHROME = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
BOUNDARY_FIREFOX = "---------------------------418735298317294853963418"
BOUNDARY_CURL = "------------------------d74496d66958873e"


def multipart(parts: Sequence[tuple[str, str] | tuple[str, str, str, str | bytes]],
              boundary: str = BOUNDARY_CHROME) -> tuple[str, str | bytes]:
    """(content type, body) for form fields ``(name, value)`` and files
    ``(name, filename, content type, content)``. Lines end in ``\\n`` (see module doc).
    File names are quoted the way browsers do (``"`` as ``%22``, UTF-8 as is). The body
    is bytes when a file's content is."""
    chunks: list[bytes] = []
    for part in parts:
        head = [f"--{boundary}"]
        if len(part) == 2:
            head.append(f'Content-Disposition: form-data; name="{part[0]}"')
            content: str | bytes = part[1]
        else:
            fname = part[1].replace('"', "%22").replace("\n", "%0A")
            head.append(f'Content-Disposition: form-data; name="{part[0]}"; filename="{fname}"')
            head.append(f"Content-Type: {part[2]}")
            content = part[3]
        chunks.append(("\n".join(head) + "\n\n").encode())
        chunks.append((content.encode() if isinstance(content, str) else content) + b"\n")
    chunks.append(f"--{boundary}--\n".encode())
    body = b"".join(chunks)
    binary = any(len(p) == 4 and isinstance(p[3], bytes) for p in parts)
    return f"multipart/form-data; boundary={boundary}", body if binary else body.decode()


# ------------------------------------------------------------- identifiers


def uid(seed: str) -> str:
    """A stable UUID for ``seed``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "bastion-benign:" + seed))


def hexid(seed: str, length: int = 32) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def token(seed: str, length: int = 32) -> str:
    """URL-safe random-looking text, as session ids and API keys look."""
    raw = hashlib.sha512(seed.encode()).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")[:length]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(claims: Mapping[str, Any], *, alg: str = "HS256", kid: str | None = None) -> str:
    """A signed-looking JWT (HMAC over the text with a fixed key; RS256 ones get a
    256-byte signature of the same shape)."""
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
               + b64url(json.dumps(dict(claims), separators=(",", ":")).encode()))
    mac = hmac.new(b"corpus-key", signing.encode(), hashlib.sha256).digest()
    sig = mac * 8 if alg.startswith(("RS", "PS")) else mac
    return signing + "." + b64url(sig)


def basic(user: str, password: str) -> str:
    """An ``Authorization: Basic`` value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def hmac_b64(secret: str, message: str) -> str:
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def png(width: int = 16, height: int = 16, seed: int = 1) -> bytes:
    """A real, small RGB PNG (a colour gradient), as avatars and thumbnails are."""
    rows = b"".join(
        b"\x00" + b"".join(bytes(((x * 16 + seed * 40) % 256, (y * 16) % 256,
                                  (x * y + seed * 7) % 256)) for x in range(width))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def data_uri_png(seed: int = 1, size: int = 16) -> str:
    return "data:image/png;base64," + base64.b64encode(png(size, size, seed)).decode()


# ---------------------------------------------------------------- people

PEOPLE: list[dict[str, str]] = [
    {"first": "Siobhán", "last": "O'Brien", "email": "siobhan.obrien@example.ie",
     "phone": "+353 1 555 0142", "street": "14 St. Stephen's Green", "city": "Dublin",
     "region": "D02", "zip": "D02 XY45", "country": "IE", "company": "O'Brien & Daughters Ltd."},
    {"first": "Jean-Luc", "last": "Lefèvre", "email": "jl.lefevre+orders@example.fr",
     "phone": "+33 6 12 34 56 78", "street": "27, rue de l'Église", "city": "Lyon",
     "region": "Auvergne-Rhône-Alpes", "zip": "69002", "country": "FR",
     "company": "Lefèvre & Fils SARL"},
    {"first": "María José", "last": "Núñez-García", "email": "mj.nunez@example.es",
     "phone": "+34 612 345 678", "street": "C/ de Alcalá, 42, 3º Izq.", "city": "Madrid",
     "region": "Madrid", "zip": "28014", "country": "ES", "company": "Núñez y Asociados, S.L."},
    {"first": "Dwayne", "last": "D'Angelo Jr.", "email": "dwayne.dangelo@example.com",
     "phone": "(555) 010-0199", "street": "1600 Amphitheatre Pkwy, Apt. #4B",
     "city": "Mountain View", "region": "CA", "zip": "94043-1351", "country": "US",
     "company": "Smith, Jones & D'Angelo, LLP"},
    {"first": "Zoë", "last": "Ångström", "email": "zoe@angstrom.example.se",
     "phone": "+46 70 123 45 67", "street": "Drottninggatan 53 (3 tr)", "city": "Stockholm",
     "region": "Stockholms län", "zip": "111 21", "country": "SE", "company": "Ångström AB"},
    {"first": "Mehmet", "last": "Yılmaz", "email": "mehmet.yilmaz@example.com.tr",
     "phone": "+90 532 123 45 67", "street": "İstiklal Cd. No:123/4", "city": "İstanbul",
     "region": "Beyoğlu", "zip": "34433", "country": "TR", "company": "Yılmaz Tekstil A.Ş."},
    {"first": "Priya", "last": "Raghavan", "email": "priya_r@example.in",
     "phone": "+91 98765 43210", "street": "Flat 12-B, Lotus Apts., 4th Cross, Indiranagar",
     "city": "Bengaluru", "region": "KA", "zip": "560038", "country": "IN",
     "company": "Raghavan & Co."},
    {"first": "Tomasz", "last": "Wiśniewski", "email": "t.wisniewski@example.pl",
     "phone": "+48 601 234 567", "street": "ul. Marszałkowska 84/92 m. 15", "city": "Warszawa",
     "region": "mazowieckie", "zip": "00-514", "country": "PL", "company": "Wiśniewski Sp. z o.o."},
    {"first": "Keiko", "last": "Tanaka", "email": "keiko.tanaka@example.jp",
     "phone": "+81 3-1234-5678", "street": "千代田区丸の内1-9-1", "city": "東京都",
     "region": "Tokyo", "zip": "100-0005", "country": "JP", "company": "田中商事株式会社"},
    {"first": "Ngozi", "last": "Okafor-Adeyemi", "email": "ngozi.okafor@example.ng",
     "phone": "+234 803 123 4567", "street": "Plot 5, Admiralty Way, Lekki Phase 1",
     "city": "Lagos", "region": "LA", "zip": "106104", "country": "NG",
     "company": "Okafor-Adeyemi Holdings"},
]

PRODUCTS: list[dict[str, Any]] = [
    {"sku": "TSH-ROCK-BLK-M", "name": "Rock & Roll Tee – Black", "price": 24.99,
     "variant": "M / Black", "qty": 2},
    {"sku": "FLAG-UJ-3X5", "name": "Union Jack Flag 3'x5' (Nylon)", "price": 18.5,
     "variant": "3' x 5'", "qty": 1},
    {"sku": "PLT-SNAKE-12", "name": "Snake Plant, 1' tall, in 6\" pot", "price": 32.0,
     "variant": "Ceramic pot – white", "qty": 1},
    {"sku": "TBL-DROPLEAF-OAK", "name": "Drop-Leaf Dining Table (Oak)", "price": 349.0,
     "variant": "Natural oak", "qty": 1},
    {"sku": "SKL-CAST-10", "name": "Cast Iron Skillet 10¼\"", "price": 39.95,
     "variant": "Pre-seasoned", "qty": 1},
    {"sku": "BK-JS-GOODPARTS", "name": "JavaScript: The Good Parts", "price": 29.99,
     "variant": "Paperback", "qty": 1},
    {"sku": "MUG-CPP-11OZ", "name": "\"Hello, World!\" C++ Mug (11 oz)", "price": 14.0,
     "variant": "11 oz", "qty": 3},
    {"sku": "SHOE-INSERT-GEL", "name": "Gel Shoe Inserts – Men's 8-13", "price": 12.49,
     "variant": "Men's 8–13", "qty": 2},
]


def main() -> None:
    """Nothing to write: ``all.py`` calls every module's ``main``."""
