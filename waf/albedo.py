"""An albedo-compatible backend: the HTTP reflector the CRS regression tests expect.

    runner = web.AppRunner(albedo_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 8081).start()

``POST /reflect`` (and ``/reflect/``) takes a JSON document
``{"status", "headers", "body", "encodedBody", "logMessage"}`` and answers with that
status (0 or absent: 200), those headers and that body (``body`` when non-empty,
else base64 ``encodedBody``); ``logMessage`` is logged. The RESPONSE-95x tests use it
to make the gateway see a chosen response. Everything else, including go-ftw's
``GET /status/200`` markers, gets 200 with an empty body.

Errors follow coreruleset/albedo: 400 with ``Invalid JSON in request body``,
``Invalid status code: N`` (outside 100-599) or
``invalid base64 encoding of response body``. Header names or values that HTTP does
not allow are dropped, as Go's net/http drops them.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any

from aiohttp import web

__all__ = ["albedo_app"]

log = logging.getLogger("bastion.albedo")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1",
                  b"<div", b"<font", b"<table", b"<a", b"<style", b"<title", b"<b",
                  b"<body", b"<br", b"<p", b"<!--")
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")


def _sniff(body: bytes) -> str:
    """A Content-Type for a body sent without one, after Go's http.DetectContentType
    (the cases that matter for a WAF inspecting text responses)."""
    head = body[:512].lstrip(b"\t\n\x0c\r ")
    lower = head.lower()
    for prefix in _HTML_PREFIXES:
        if lower.startswith(prefix) and lower[len(prefix):len(prefix) + 1] in (b" ", b">"):
            return "text/html; charset=utf-8"
    if lower.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if _BINARY.search(body[:512]):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def _bad_request(message: str) -> web.Response:
    log.info("albedo: %s", message)
    return web.Response(status=400, body=message.encode(),
                        headers={"Content-Type": "text/plain; charset=utf-8"})


async def _reflect(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    try:
        spec: Any = json.loads(raw)
    except ValueError:
        return _bad_request("Invalid JSON in request body")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return _bad_request("Invalid JSON in request body")

    status, headers = spec.get("status"), spec.get("headers")
    body, encoded, message = spec.get("body"), spec.get("encodedBody"), spec.get("logMessage")
    if (not isinstance(status, int | None) or isinstance(status, bool)
            or not isinstance(headers, dict | None)
            or not all(isinstance(v, str | None) for v in (body, encoded, message))):
        return _bad_request("Invalid JSON in request body")
    if headers is not None and not all(isinstance(v, str) for v in headers.values()):
        return _bad_request("Invalid JSON in request body")

    if message:
        log.info("%s", message)
    status = status or 200
    if not 100 <= status < 600:
        return _bad_request(f"Invalid status code: {status}")
    if body:
        payload = body.encode("utf-8")
    elif encoded:
        try:
            # Go's base64 decoder skips line breaks; nothing else is tolerated.
            payload = base64.b64decode(encoded.replace("\r", "").replace("\n", ""),
                                       validate=True)
        except (binascii.Error, ValueError):
            return _bad_request("invalid base64 encoding of response body")
    else:
        payload = b""

    response = web.Response(status=status)
    for name, value in (headers or {}).items():
        if _TOKEN.fullmatch(name) and not _BAD_VALUE.search(value):
            response.headers.add(name, value)
        else:
            log.info("albedo: dropping invalid header %r", name)
    if status < 200 or status in (204, 304):
        payload = b""
    if payload:
        if "Content-Type" not in response.headers:
            response.headers["Content-Type"] = _sniff(payload)
        response.body = payload
    return response


async def _default(request: web.Request) -> web.StreamResponse:
    await request.read()  # drain, so that keep-alive connections stay usable
    return web.Response(status=200)


def albedo_app() -> web.Application:
    """The reflector as an aiohttp application."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/reflect", _reflect)
    app.router.add_post("/reflect/", _reflect)
    app.router.add_route("*", "/{tail:.*}", _default)
    return app
