"""The demo upstream `bastion run` hosts for ``builtin:echo``: it answers with the request."""

from __future__ import annotations

import hashlib

from aiohttp import web

_MAX_ECHOED_BODY = 64 * 1024


async def _echo(request: web.Request) -> web.StreamResponse:
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    # Stream the body: the demo must not fall over on a large upload.
    async for chunk in request.content.iter_chunked(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
        if len(head) < _MAX_ECHOED_BODY:
            head += chunk[: _MAX_ECHOED_BODY - len(head)]
    return web.json_response({
        "method": request.method,
        "path": request.path,
        "query": request.rel_url.raw_query_string,
        "headers": dict(request.headers),
        "body": head.decode("utf-8", "replace"),
        "body_bytes": size,
        "body_sha256": digest.hexdigest(),
        "remote": request.remote,
    })


def echo_app() -> web.Application:
    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", _echo)
    return app
