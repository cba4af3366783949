"""One request/response exchange as plugins see it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from multidict import CIMultiDict

if TYPE_CHECKING:
    from aiohttp import web

    from proxy.routing import Route

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class LocalResponse:
    status: int
    body: bytes
    headers: CIMultiDict[str]


@dataclass(slots=True)
class Decision:
    plugin: str
    action: str
    detail: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "action": self.action, **self.detail}


@dataclass(slots=True)
class UpstreamTarget:
    """One place to send this request instead of the route's service.

    A plugin that picks upstreams itself (the AI proxy: one provider, then
    the next on failure) sets ``flow.upstream_targets``; the gateway tries
    them in order, moving on after a connection failure, a timeout before the
    response headers, or a status in ``flow.upstream_retry_statuses``, and
    records which one answered in ``flow.upstream_target``.
    """

    url: str  # scheme://host[:port][/base path], no trailing slash
    name: str = ""  # for logs and metrics (a provider name)
    # Path and query after ``url``; None keeps flow.upstream_path.
    path: str | None = None
    # Set on the request headers (e.g. the provider's Authorization), after removals.
    headers: Mapping[str, str] = field(default_factory=dict)
    remove_headers: tuple[str, ...] = ()
    # A replacement body (then Content-Length is set from it); None sends the request's own.
    body: bytes | None = None
    connect_timeout: float | None = None
    # Longest wait for the next bytes (headers, then each chunk of the body).
    read_timeout: float | None = None
    # Anything the plugin wants back when this target answered (a model name...).
    meta: Any = None


def json_error(status: int, message: str, request_id: str,
               headers: Mapping[str, str] | None = None) -> LocalResponse:
    """The JSON error every part of the gateway answers with."""
    body = json.dumps({"error": message, "request_id": request_id}).encode()
    h: CIMultiDict[str] = CIMultiDict(headers or {})
    h["Content-Type"] = "application/json"
    return LocalResponse(status, body, h)


class Flow:
    """Request, response and per-plugin state for one exchange.

    ``request_headers`` and ``upstream_path`` are what goes upstream (plugins
    edit them); ``response_status``/``response_headers`` are what goes back
    (plugins edit them in ``on_response_headers``).
    """

    __slots__ = (
        "_states", "bytes_in", "bytes_out", "client_ip", "consumer", "credential_id", "decisions",
        "endpoint", "error_body", "extra_response_headers", "local_response", "method", "path",
        "query_string", "request", "request_body_truncated", "request_headers", "request_id",
        "response_body_limit", "response_body_overflow", "response_headers", "response_started",
        "response_status", "route", "started", "upstream_duration", "upstream_error",
        "upstream_path", "upstream_retry_statuses", "upstream_started", "upstream_target",
        "upstream_targets",
    )

    def __init__(self, request: web.BaseRequest, request_id: str, client_ip: str,
                 request_headers: CIMultiDict[str], path: str, upstream_path: str) -> None:
        self.request = request
        self.request_id = request_id
        self.client_ip = client_ip
        self.method: str = request.method
        # The normalized, decoded path routing used (``%2F`` stays encoded).
        self.path = path
        self.query_string: str = request.query_string
        # What goes upstream: the normalized path, still percent-encoded, and
        # the query exactly as received. Plugins may rewrite it.
        self.upstream_path = upstream_path
        self.request_headers = request_headers
        # Set before on_request_body when a buffered body was cut at
        # request_body_limit ("truncate"): plugins see only its first bytes.
        self.request_body_truncated = False
        self.route: Route | None = None
        # Set by authentication: the consumer (its config object) and the id
        # of the credential it presented.
        self.consumer: Any = None
        self.credential_id: str | None = None
        self.response_status: int = 0
        # Set once response headers are on the wire: no status can change after.
        self.response_started = False
        self.response_headers: CIMultiDict[str] = CIMultiDict()
        self.response_body_limit: int | None = None
        self.response_body_overflow: Literal["reject", "truncate"] = "truncate"
        self.local_response: LocalResponse | None = None
        self.decisions: list[Decision] = []
        self.endpoint: str | None = None
        self.started = time.perf_counter()
        self.upstream_started: float | None = None
        self.upstream_duration: float | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        # Set by a plugin to send elsewhere than the route's service (UpstreamTarget).
        # Set by a plugin whose clients expect errors in their own API's shape
        # (the AI proxy: OpenAI's): builds the gateway's own error answers
        # (502, 504, 413...) for this exchange; None keeps the standard JSON.
        self.error_body: Callable[[int, str], LocalResponse | None] | None = None
        # Set when the upstream broke off in the middle of the body: the
        # plugins' end-of-body call then sees it (and may close the stream).
        self.upstream_error: str | None = None
        # Headers for the client whatever answers: upstream, a plugin or the gateway.
        self.extra_response_headers: list[tuple[str, str]] = []
        self.upstream_targets: list[UpstreamTarget] | None = None
        self.upstream_retry_statuses: frozenset[int] = frozenset()
        # The target that answered (or failed last), once the upstream call is made.
        self.upstream_target: UpstreamTarget | None = None
        self._states: dict[int, Any] = {}

    @property
    def responded(self) -> bool:
        return self.local_response is not None

    def respond(self, status: int, body: bytes | str | Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None) -> None:
        """End the exchange with a local response; later plugins are skipped."""
        h: CIMultiDict[str] = CIMultiDict(headers or {})
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
            h.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.local_response = LocalResponse(status, data, h)

    def respond_error(self, status: int, message: str,
                      headers: Mapping[str, str] | None = None) -> None:
        """Answer with the gateway's standard JSON error body."""
        self.local_response = json_error(status, message, self.request_id, headers)

    def add_response_header(self, name: str, value: str) -> None:
        """Send this header to the client on whatever response this exchange ends with.

        Unlike editing ``response_headers`` in ``on_response_headers``, it also
        reaches local answers (a 401 from a later plugin, a gateway 502), so a
        refreshed or cleared cookie is never lost.
        """
        self.extra_response_headers.append((name, value))

    def decide(self, plugin: str, action: str, **detail: Any) -> None:
        """Record a plugin decision for the access log and metrics."""
        self.decisions.append(Decision(plugin, action, detail))

    def state(self, owner: object, factory: Callable[[], S]) -> S:
        """The state slot of ``owner`` (a plugin) for this flow, made on first use."""
        key = id(owner)
        try:
            return self._states[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._states[key] = factory()
            return value

    def buffer_response_body(self, limit: int,
                             overflow: Literal["reject", "truncate"] = "reject") -> None:
        """From on_response_headers: deliver the whole response body in one call.

        Past ``limit``, "reject" answers 502 and "truncate" hands plugins the
        first ``limit`` bytes and streams the rest unseen.
        """
        self.response_body_limit = max(limit, self.response_body_limit or 0)
        # One plugin that cannot inspect a prefix makes the whole chain reject.
        if overflow == "reject":
            self.response_body_overflow = "reject"
