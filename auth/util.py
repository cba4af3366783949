"""Small request edits and checks shared by authenticators."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from http.cookies import CookieError, SimpleCookie
from urllib.parse import unquote_plus

from proxy.flow import Flow


def query_values(flow: Flow, name: str) -> list[str]:
    """Every value of query parameter ``name`` (decoded), in order."""
    out: list[str] = []
    for part in flow.query_string.split("&"):
        key, sep, value = part.partition("=")
        if unquote_plus(key) == name:
            out.append(unquote_plus(value) if sep else "")
    return out


def remove_query_params(flow: Flow, names: Collection[str]) -> None:
    """Drop parameters from what goes upstream; the rest keep their exact encoding."""
    path, sep, query = flow.upstream_path.partition("?")
    if not sep:
        return
    kept = [p for p in query.split("&") if unquote_plus(p.partition("=")[0]) not in names]
    flow.upstream_path = path + ("?" + "&".join(kept) if kept else "")


def cookie_value(flow: Flow, name: str) -> list[str]:
    """Every value of cookie ``name`` across the request's Cookie headers."""
    out: list[str] = []
    for header in flow.request_headers.getall("Cookie", ()):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                out.append(_unquote_cookie(value))
    return out


def _unquote_cookie(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(f"x={value}")
            return parsed["x"].value
        except CookieError:
            return value
    return value


def remove_cookie(flow: Flow, name: str) -> None:
    """Drop one cookie from the Cookie headers that go upstream."""
    headers = flow.request_headers
    values = headers.popall("Cookie", [])
    for header in values:
        kept = [p.strip() for p in header.split(";")
                if p.strip() and p.strip().partition("=")[0] != name]
        if kept:
            headers.add("Cookie", "; ".join(kept))


def lookup_digest(secret: str | bytes) -> bytes:
    """A fixed-size digest to index secrets by: a dict lookup on it leaks no prefix timing."""
    data = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(data).digest()


def same_secret(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode() if isinstance(a, str) else a,
                               b.encode() if isinstance(b, str) else b)
