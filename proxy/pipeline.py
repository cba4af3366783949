"""A route's plugin chain: runs each hook across its plugins in order.

Only plugins that override a hook are called for it, so a chain of plugins
that never look at bodies costs nothing per chunk. A local response
(``flow.respond``) stops the hook loop at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from proxy.flow import Flow
from proxy.plugin import Plugin

log = logging.getLogger("bastion.pipeline")


class PluginChain:
    def __init__(self, plugins: Sequence[Plugin[Any]]) -> None:
        self.plugins = tuple(plugins)
        self._req_headers = tuple(p for p in plugins if p.overrides("on_request_headers"))
        self._req_body = tuple(p for p in plugins if p.overrides("on_request_body"))
        self._resp_headers = tuple(p for p in plugins if p.overrides("on_response_headers"))
        self._resp_body = tuple(p for p in plugins if p.overrides("on_response_body"))
        self._resp_body_stream = tuple(p for p in self._resp_body if p.response_body_streaming)
        self._done = tuple(p for p in plugins if p.overrides("on_done"))
        # Checked before awaiting a hook: with no plugin for it, no coroutine.
        self.has_request_headers = bool(self._req_headers)
        self.has_response_headers = bool(self._resp_headers)
        self.has_done = bool(self._done)
        wanting = [p for p in self._req_body if p.request_body_limit is not None]
        # Buffer once, to the largest limit any plugin asked for.
        self.request_body_limit: int | None = (
            max(p.request_body_limit for p in wanting if p.request_body_limit is not None)
            if wanting else None
        )
        self.request_body_overflow: Literal["reject", "truncate"] = (
            "reject" if any(p.request_body_overflow == "reject" for p in wanting) else "truncate"
        )

    @property
    def reads_request_body(self) -> bool:
        return bool(self._req_body)

    @property
    def reads_response_body(self) -> bool:
        """Whether some plugin reads (and may rewrite) every response body as a stream."""
        return bool(self._resp_body_stream)

    async def request_headers(self, flow: Flow) -> None:
        for p in self._req_headers:
            await p.on_request_headers(flow)
            if flow.local_response is not None:
                return

    async def request_body(self, flow: Flow, chunk: bytes, end: bool) -> bytes:
        for p in self._req_body:
            chunk = await p.on_request_body(flow, chunk, end)
            if flow.local_response is not None:
                return b""
        return chunk

    async def response_headers(self, flow: Flow) -> None:
        for p in self._resp_headers:
            await p.on_response_headers(flow)
            if flow.local_response is not None:
                return

    async def response_body(self, flow: Flow, chunk: bytes, end: bool,
                            buffered: bool = False) -> bytes:
        """Streaming plugins see every body; a buffered body also goes to the rest."""
        for p in self._resp_body if buffered else self._resp_body_stream:
            chunk = await p.on_response_body(flow, chunk, end)
            if flow.local_response is not None:
                return b""
        return chunk

    async def done(self, flow: Flow) -> None:
        # Every plugin gets on_done, even when one of them fails.
        for p in self._done:
            try:
                await p.on_done(flow)
            except Exception:
                log.exception("plugin %s failed in on_done", p.name)
