"""The data plane of one process: accept, route, run the plugin chain, proxy, log.

Bodies stream in both directions; the only buffering is the one a plugin asks
for. Every refusal the gateway makes itself is a JSON body
``{"error": ..., "request_id": ...}`` with the status a client can act on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict
from yarl import URL

from proxy.accesslog import AccessLog
from proxy.config import LoadedConfig
from proxy.flow import Flow, LocalResponse, UpstreamTarget, json_error
from proxy.forwarding import strip_hop_by_hop, upstream_headers
from proxy.metrics import Metrics
from proxy.routing import Route, normalize_request_path
from proxy.runtime import Runtime, build_runtime
from proxy.upstream import Endpoint, Service

log = logging.getLogger("bastion.gateway")

SERVER_NAME = "bastion"
# How stale /metrics may be: per-request counts are written out this often.
METRICS_FLUSH_INTERVAL = 1.0
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_NO_BODY_STATUSES = frozenset({204, 304})
_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
_WS_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version",
                           "sec-websocket-extensions", "sec-websocket-protocol"})


class ClientBodyError(Exception):
    """The client's request body broke a limit (413) or stalled (408)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _BodyReader:
    """The client's body as an async iterator, with size limit and read timeout.

    ``started`` tells whether any byte was consumed, which decides whether a
    failed upstream attempt may be retried with a fresh iterator.
    """

    def __init__(self, request: web.BaseRequest, max_bytes: int, timeout: float) -> None:
        self.content = request.content
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.received = 0
        self.started = False
        self.error: ClientBodyError | None = None

    async def read_chunk(self) -> bytes:
        try:
            async with asyncio.timeout(self.timeout or None):
                chunk = await self.content.readany()
        except TimeoutError:
            self.error = ClientBodyError(408, "timed out reading the request body")
            raise self.error from None
        except aiohttp.ClientPayloadError as exc:
            self.error = ClientBodyError(400, f"malformed request body: {exc}")
            raise self.error from None
        if chunk:
            self.started = True
            self.received += len(chunk)
            if self.max_bytes and self.received > self.max_bytes:
                self.error = ClientBodyError(413, "request body too large")
                raise self.error
        return chunk

    async def read_up_to(self, limit: int) -> tuple[bytes, bytes]:
        """(first ``limit`` bytes, what was read past them); the second is empty at EOF."""
        buf = bytearray()
        while len(buf) <= limit:
            chunk = await self.read_chunk()
            if not chunk:
                return bytes(buf), b""
            buf += chunk
        return bytes(buf[:limit]), bytes(buf[limit:])

    async def stream(self) -> AsyncIterator[bytes]:
        while chunk := await self.read_chunk():
            yield chunk


@dataclass
class _Attempt:
    response: aiohttp.ClientResponse | None
    endpoint: Endpoint | None
    error_status: int = 0
    error_message: str = ""


class _Protocol(RequestHandler):
    """aiohttp's connection handler with the gateway's answers to broken requests.

    aiohttp answers an over-long line with a plain 400; clients deserve 414
    for the URL and 431 for headers, in our JSON shape. It also has no
    deadline for a request whose headers trickle in (slowloris): we give one.
    """

    gateway: Gateway
    _header_timer: asyncio.TimerHandle | None = None
    busy = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # `_messages` holds parsed requests not yet handed to the handler.
        if self.busy or getattr(self, "_messages", None):
            self._cancel_header_timer()
        elif self._header_timer is None and self.transport is not None:
            timeout = self.gateway.limits().client_header_timeout
            if timeout:
                self._header_timer = asyncio.get_running_loop().call_later(
                    timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.busy or self.transport is None or self.transport.is_closing():
            return
        body = json.dumps({"error": "timed out reading the request headers",
                           "request_id": _new_request_id()}).encode()
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.gateway.metrics.local_errors.labels("408").inc()
        self.force_close()  # closes the transport once the 408 is flushed

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        limits = self.gateway.limits()
        if isinstance(exc, LineTooLong):
            too_long_url = exc.args[1] == self.gateway.max_line_size
            status, text = ((414, "request URL too long") if too_long_url
                            else (431, "request header fields too large"))
        elif isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc):
            status, text = 431, f"more than {limits.max_headers} request headers"
        elif status == 400:
            detail = str(exc.message if isinstance(exc, BadHttpMessage) else message)
            # aiohttp quotes the offending bytes: never echo more than a glimpse.
            detail = detail.split("\n", 1)[0][:120]
            text = f"malformed request: {detail}"
        else:
            log.error("error handling request", exc_info=exc)
            text = "internal error"
        self.gateway.metrics.local_errors.labels(str(status)).inc()
        local = json_error(status, text, _new_request_id(), {"Server": SERVER_NAME})
        resp = web.Response(status=local.status, body=local.body, headers=local.headers)
        resp.force_close()
        return resp


class _ClosingResponse(web.Response):
    """A response after which the connection closes at once.

    aiohttp otherwise lingers for up to 10 s reading a request body nobody
    wants; for a client we just refused for its body, that is a gift.
    """

    async def write_eof(self, data: bytes = b"") -> None:
        req = self._req  # cleared by write_eof
        await super().write_eof(data)
        if req is not None and isinstance(req.protocol, RequestHandler):
            req.protocol.force_close()


def origin_form(raw_target: str) -> str | None:
    """The path-and-query of a request target; None when it has none.

    Absolute-form (``http://host/p?q``), which RFC 9112 says servers must
    accept, is reduced to its path; authority-form (CONNECT ``host:port``) and
    anything else that is not a path has nothing to route.
    """
    if raw_target.startswith("/"):
        return raw_target
    scheme, sep, rest = raw_target.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        slash = rest.find("/")
        query = rest.find("?")
        if slash < 0 or (0 <= query < slash):
            return "/" + (rest[query:] if query >= 0 else "")
        return rest[slash:]
    return None


def _new_request_id() -> str:
    return os.urandom(16).hex()


class _Server(web.Server):
    def __init__(self, gateway: Gateway, **kwargs: Any) -> None:
        super().__init__(gateway.handle, **kwargs)
        self.gateway = gateway

    def __call__(self) -> RequestHandler:
        proto = _Protocol(self, loop=self._loop, **self._kwargs)
        proto.gateway = self.gateway
        return proto


class Gateway:
    """One process's gateway: listeners, the live runtime, the upstream pool."""

    def __init__(self, loaded: LoadedConfig, *, metrics: Metrics | None = None,
                 builtin_echo_url: str | None = None, reuse_port: bool = False,
                 access_log: AccessLog | None = None) -> None:
        self._initial = loaded
        self.metrics = metrics or Metrics()
        self.builtin_echo_url = builtin_echo_url
        self.reuse_port = reuse_port
        self.access_log = access_log or AccessLog.from_config(loaded.config.access_log)
        self.runtime: Runtime | None = None
        self.session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self._sites: list[web.BaseSite] = []
        self._generation = 0
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        limits = loaded.config.limits
        # The parser's line limits are fixed when listening starts: URL and
        # header limits changed by a reload apply in the handler.
        self.max_line_size = limits.max_url_bytes + 64
        self.max_field_size = limits.max_header_bytes
        if self.max_field_size == self.max_line_size:
            self.max_field_size += 1

    def limits(self) -> Any:
        rt = self.runtime
        return (rt.loaded if rt else self._initial).config.limits

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        self._generation = 1
        self.runtime = await build_runtime(self._initial, self.metrics, generation=1,
                                           builtin_echo_url=self.builtin_echo_url)
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60, keepalive_timeout=30)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        limits = self._initial.config.limits
        server = _Server(self, max_line_size=self.max_line_size,
                         max_field_size=self.max_field_size,
                         max_headers=limits.max_headers,
                         keepalive_timeout=limits.keepalive_timeout,
                         # A proxy forwards a compressed request body as it came,
                         # with its Content-Encoding; decoding it would send
                         # plain bytes under a gzip label.
                         auto_decompress=False,
                         access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False,
                                        shutdown_timeout=limits.shutdown_grace)
        await self._runner.setup()
        for listener in self._initial.config.listeners:
            site = web.TCPSite(self._runner, listener.host, listener.port,
                               reuse_port=self.reuse_port, backlog=1024)
            await site.start()
            self._sites.append(site)
        self._flusher = asyncio.create_task(self._flush_metrics())

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(METRICS_FLUSH_INTERVAL)
            self.metrics.flush()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        out = []
        for site in self._sites:
            server = getattr(site, "_server", None)
            for sock in getattr(server, "sockets", None) or ():
                host, port = sock.getsockname()[:2]
                out.append((host, port))
        return out

    async def reload(self, loaded: LoadedConfig) -> Runtime:
        """Build ``loaded`` and swap it in. On error raise, and keep serving the old one."""
        async with self._reload_lock:
            old = self.runtime
            runtime = await build_runtime(loaded, self.metrics, generation=self._generation + 1,
                                          builtin_echo_url=self.builtin_echo_url, previous=old)
            self._generation += 1
            self.runtime = runtime
            if loaded.config.access_log != (old.loaded.config.access_log if old else None):
                self.access_log.close()
                self.access_log = AccessLog.from_config(loaded.config.access_log)
            if old is not None:
                self._retire(old)
            return runtime

    def _retire(self, runtime: Runtime) -> None:
        runtime.retired = True
        if runtime.active == 0:
            self._spawn(runtime.close())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period), close."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self.metrics.flush()
        if self.runtime is not None:
            await self.runtime.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
        self.access_log.close()

    # --------------------------------------------------------------- request

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        rt = self.runtime
        assert rt is not None and self.session is not None
        proto = request.protocol
        if isinstance(proto, _Protocol):
            proto.busy = True
            proto._cancel_header_timer()
        rt.active += 1
        try:
            return await self._serve(rt, request)
        finally:
            rt.active -= 1
            if rt.retired and rt.active == 0:
                self._spawn(rt.close())
            if isinstance(proto, _Protocol):
                proto.busy = False

    def _local(self, request: web.BaseRequest, local: LocalResponse, request_id: str,
               close: bool = False) -> web.Response:
        headers = CIMultiDict(local.headers)
        headers.setdefault("X-Request-Id", request_id)
        headers.setdefault("Server", SERVER_NAME)
        cls = _ClosingResponse if close else web.Response
        resp = cls(status=local.status, body=local.body, headers=headers)
        if close:
            resp.force_close()
        return resp

    async def _serve(self, rt: Runtime, request: web.BaseRequest) -> web.StreamResponse:
        limits = rt.loaded.config.limits
        headers = request.headers
        peer = request.remote or ""
        trusted_peer = rt.trusted.trusts(peer)
        request_id = headers.get("X-Request-Id", "") if trusted_peer else ""
        if not (0 < len(request_id) <= 128 and _REQUEST_ID_OK.issuperset(request_id)):
            request_id = _new_request_id()
        client_ip = rt.trusted.client_ip(peer, headers.getall("X-Forwarded-For", ()))

        refusal = self._check_limits(request, limits)
        route = None
        target = origin_form(request.raw_path)
        if target is None:
            refusal = refusal or (400, "the request target must be a path (this is not a "
                                       "forward proxy: no CONNECT or authority-form)")
            target = "/"
        path, upstream_path = normalize_request_path(target)
        if refusal is None:
            route = rt.table.match(headers.get("Host", ""), path, request.method,
                                   headers, lambda: request.query)
            if route is None:
                refusal = (404, "no route matches this request")
        if refusal is not None:
            status, message = refusal
            self.metrics.local_errors.labels(str(status)).inc()
            # Do not read an unwanted body just to keep the connection.
            resp = self._local(request, json_error(status, message, request_id), request_id,
                               close=status in (413, 431, 414) and request.body_exists)
            self._log(None, request, request_id, client_ip, status, time.perf_counter(),
                      error=message)
            return resp

        assert route is not None
        up_headers = upstream_headers(headers, peer, trusted_peer, client_ip, request_id,
                                      request.scheme)
        flow = Flow(request, request_id, client_ip, up_headers, path, upstream_path)
        flow.route = route
        try:
            return await self._proxy(flow, route, limits)
        except Exception:
            if flow.response_started:
                raise  # too late for a status; aiohttp drops the connection
            log.exception("request %s failed inside the gateway", request_id)
            return self._fail(flow, 500, "internal error")
        finally:
            if route.chain.has_done:
                await route.chain.done(flow)
            for d in flow.decisions:
                self.metrics.plugin_decisions.labels(d.plugin, d.action).inc()
            self._log(flow, request, request_id, client_ip, flow.response_status,
                      flow.started, route=route.name)

    def _check_limits(self, request: web.BaseRequest, limits: Any) -> tuple[int, str] | None:
        if len(request.raw_path) > limits.max_url_bytes:
            return 414, "request URL too long"
        raw = request.raw_headers
        if len(raw) > limits.max_headers:
            return 431, f"more than {limits.max_headers} request headers"
        if sum(len(k) + len(v) + 4 for k, v in raw) > limits.max_header_bytes:
            return 431, "request header fields too large"
        cl = request.content_length
        if limits.max_body_bytes and cl is not None and cl > limits.max_body_bytes:
            return 413, "request body too large"
        return None

    async def _proxy(self, flow: Flow, route: Route, limits: Any) -> web.StreamResponse:
        request = flow.request
        chain = route.chain
        if chain.has_request_headers:
            await chain.request_headers(flow)
            if flow.local_response is not None:
                return self._answer_local(flow)

        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(flow, route)

        # Expect is answered hop by hop: only now, with the plugins' consent,
        # does the client get to send its body.
        expect = flow.request_headers.popall("Expect", None)
        if expect is not None:
            if expect[0].lower() != "100-continue":
                return self._fail(flow, 417, f"unsupported expectation {expect[0]!r}")
            if request.version >= (1, 1) and request.body_exists:
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        reader = _BodyReader(request, limits.max_body_bytes, limits.client_body_timeout)
        make_body: Callable[[], Any]
        # Whether a failed attempt can be sent again: a body held in memory can;
        # a stream can only until its first byte is consumed.
        replayable = True
        if not request.body_exists:
            flow.request_headers.popall("Content-Length", None)

            def make_body() -> Any:
                return None
        elif chain.request_body_limit is not None:
            try:
                prefix, extra = await reader.read_up_to(chain.request_body_limit)
            except ClientBodyError as exc:
                return self._fail(flow, exc.status, exc.message)
            if extra and chain.request_body_overflow == "reject":
                return self._fail(flow, 413, "request body exceeds the inspection limit")
            flow.request_body_truncated = bool(extra)
            body = await chain.request_body(flow, prefix, True)
            if flow.local_response is not None:
                return self._answer_local(flow)
            flow.request_headers.popall("Content-Length", None)
            if not extra:
                flow.request_headers["Content-Length"] = str(len(body))

                def make_body() -> Any:
                    return body
            else:
                replayable = False

                async def rest() -> AsyncIterator[bytes]:
                    yield body
                    yield extra
                    async for chunk in reader.stream():
                        yield chunk

                def make_body() -> Any:
                    return rest()
        elif chain.reads_request_body:
            replayable = False
            flow.request_headers.popall("Content-Length", None)

            async def rewritten() -> AsyncIterator[bytes]:
                while True:
                    chunk = await reader.read_chunk()
                    out = await chain.request_body(flow, chunk, not chunk)
                    if flow.local_response is not None:
                        raise ClientBodyError(0, "refused by a plugin")
                    if out:
                        yield out
                    if not chunk:
                        return

            def make_body() -> Any:
                return rewritten()
        else:
            replayable = False
            # Framing is ours: whatever a plugin did to Content-Length, an
            # untouched body goes with the length the client declared.
            flow.request_headers.popall("Content-Length", None)
            if request.content_length is not None:
                flow.request_headers["Content-Length"] = str(request.content_length)

            def make_body() -> Any:
                return reader.stream()

        attempt = await self._send_upstream(flow, route.service, make_body, reader,
                                            replayable)
        flow.bytes_in = reader.received
        if flow.local_response is not None:
            return self._answer_local(flow)
        if attempt.response is None:
            if reader.error is not None:
                return self._fail(flow, reader.error.status, reader.error.message)
            return self._fail(flow, attempt.error_status, attempt.error_message)
        return await self._respond(flow, route, attempt.response)

    async def _send_upstream(self, flow: Flow, service: Service, make_body: Callable[[], Any],
                             reader: _BodyReader, replayable: bool) -> _Attempt:
        if flow.upstream_targets:
            return await self._send_to_targets(flow, service, flow.upstream_targets, make_body,
                                               reader, replayable)
        retry = service.config.retries
        idempotent = retry.idempotent and flow.method in IDEMPOTENT
        tried: list[Endpoint] = []
        assert self.session is not None
        for attempt_no in range(retry.attempts + 1):
            endpoint = service.pick(tried)
            tried.append(endpoint)
            flow.endpoint = endpoint.url
            headers = flow.request_headers
            if not service.config.preserve_host:
                headers["Host"] = endpoint.netloc
            last = attempt_no == retry.attempts
            flow.upstream_started = time.perf_counter()
            try:
                resp = await self.session.request(
                    flow.method, URL(endpoint.url + flow.upstream_path, encoded=True),
                    headers=headers, data=make_body(), timeout=service.timeout,
                    allow_redirects=False, compress=None,
                )
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if reader.error is not None or flow.local_response is not None:
                    return _Attempt(None, endpoint)
                kind, status, message = _classify(exc)
                self.metrics.upstream_errors.labels(service.name, kind).inc()
                if service.report_failure(endpoint):
                    self.metrics.ejections.labels(service.name).inc()
                can_resend = replayable or not reader.started
                may_retry = can_resend and (
                    (kind == "connect" and retry.on_connect_failure) or idempotent)
                log.info("upstream %s attempt %d to %s failed: %s (%s)", service.name,
                         attempt_no + 1, endpoint.url, kind, exc)
                if may_retry and not last:
                    self.metrics.upstream_retries.labels(service.name).inc()
                    continue
                return _Attempt(None, endpoint, status, message)
            flow.upstream_duration = time.perf_counter() - flow.upstream_started
            if resp.status in retry.on_status:
                if service.report_failure(endpoint):
                    self.metrics.ejections.labels(service.name).inc()
                if idempotent and (replayable or not reader.started) and not last:
                    resp.release()
                    self.metrics.upstream_retries.labels(service.name).inc()
                    continue
            else:
                service.report_success(endpoint)
            self.metrics.observe_upstream(service.name, flow.upstream_duration)
            return _Attempt(resp, endpoint)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_to_targets(self, flow: Flow, service: Service,
                               targets: list[UpstreamTarget], make_body: Callable[[], Any],
                               reader: _BodyReader, replayable: bool) -> _Attempt:
        """Targets a plugin chose, in order; the next one after a failure before the headers."""
        assert self.session is not None
        status, message = 502, "no upstream target answered"
        for i, target in enumerate(targets):
            last = i == len(targets) - 1
            flow.upstream_target = target
            flow.endpoint = target.url
            name = target.name or service.name
            headers = CIMultiDict(flow.request_headers)
            for header in target.remove_headers:
                headers.popall(header, None)
            for header, value in target.headers.items():
                headers[header] = value
            url = URL(target.url + (target.path if target.path is not None
                                    else flow.upstream_path), encoded=True)
            headers["Host"] = url.raw_authority
            body: Any
            if target.body is not None:
                body = target.body
                headers.popall("Transfer-Encoding", None)
                headers["Content-Length"] = str(len(body))
            else:
                body = make_body()
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=target.connect_timeout or service.timeout.sock_connect,
                sock_read=target.read_timeout or service.timeout.sock_read)
            flow.upstream_started = time.perf_counter()
            try:
                resp = await self.session.request(flow.method, url, headers=headers, data=body,
                                                  timeout=timeout, allow_redirects=False,
                                                  compress=None)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if reader.error is not None or flow.local_response is not None:
                    return _Attempt(None, None)
                kind, status, message = _classify(exc)
                self.metrics.upstream_errors.labels(name, kind).inc()
                log.info("upstream target %s (%d of %d) failed: %s (%s)", name, i + 1,
                         len(targets), kind, exc)
                can_resend = target.body is not None or replayable or not reader.started
                if not last and can_resend:
                    self.metrics.upstream_retries.labels(name).inc()
                    continue
                return _Attempt(None, None, status, message)
            flow.upstream_duration = time.perf_counter() - flow.upstream_started
            self.metrics.observe_upstream(name, flow.upstream_duration)
            if resp.status in flow.upstream_retry_statuses and not last and (
                    target.body is not None or replayable or not reader.started):
                resp.release()
                self.metrics.upstream_retries.labels(name).inc()
                continue
            return _Attempt(resp, None)
        return _Attempt(None, None, status, message)

    async def _respond(self, flow: Flow, route: Route,
                       upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        request = flow.request
        chain = route.chain
        try:
            flow.response_status = upstream.status
            flow.response_headers = strip_hop_by_hop(upstream.headers)
            if chain.has_response_headers:
                await chain.response_headers(flow)
                if flow.local_response is not None:
                    return self._answer_local(flow)
            has_body = request.method != "HEAD" and upstream.status not in _NO_BODY_STATUSES \
                and upstream.status >= 200
            out_headers = flow.response_headers
            for name, value in flow.extra_response_headers:
                out_headers.add(name, value)
            out_headers.setdefault("X-Request-Id", flow.request_id)
            out_headers.setdefault("Server", SERVER_NAME)

            if has_body and flow.response_body_limit is not None:
                return await self._respond_buffered(flow, chain, upstream)

            rewrites = has_body and chain.reads_response_body
            # Framing is ours: the upstream's length for an untouched body,
            # none (chunked) for a rewritten one, whatever plugins set.
            out_headers.popall("Content-Length", None)
            if not rewrites and "Content-Length" in upstream.headers:
                out_headers["Content-Length"] = upstream.headers["Content-Length"]
            out = web.StreamResponse(status=flow.response_status, reason=upstream.reason
                                     if flow.response_status == upstream.status else None,
                                     headers=out_headers)
            if has_body and "Content-Length" not in out_headers and request.version >= (1, 1):
                out.enable_chunked_encoding()
            flow.response_started = True
            await out.prepare(request)
            if has_body:
                content = upstream.content
                while True:
                    try:
                        chunk = await content.readany()
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        log.info("upstream broke off mid-body: %r", exc)
                        self.metrics.upstream_errors.labels(route.service.name, "body").inc()
                        flow.upstream_error = f"upstream broke off mid-body: {type(exc).__name__}"
                        # Too late for a status. A rewriting plugin may close the
                        # body in its own terms (an SSE error event); otherwise
                        # cut the client off so it sees a truncated response,
                        # not a complete-looking one.
                        tail = b""
                        if rewrites:
                            tail = await chain.response_body(flow, b"", True)
                        if tail and flow.local_response is None:
                            flow.bytes_out += len(tail)
                            await out.write(tail)
                            await out.write_eof()
                        else:
                            self._abort(request)
                        return out
                    end = not chunk
                    if rewrites:
                        # Plugins see every chunk, then one empty end=True call.
                        chunk = await chain.response_body(flow, chunk, end)
                        if flow.local_response is not None:
                            log.warning("plugin answered after the response started; closing")
                            self._abort(request)
                            return out
                    if chunk:
                        flow.bytes_out += len(chunk)
                        await out.write(chunk)
                    if end:
                        break
            await out.write_eof()
            return out
        finally:
            upstream.release()

    @staticmethod
    def _abort(request: web.BaseRequest) -> None:
        if request.transport is not None:
            request.transport.close()

    async def _respond_buffered(self, flow: Flow, chain: Any,
                                upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        limit = flow.response_body_limit or 0
        buf = bytearray()
        content = upstream.content
        try:
            while len(buf) <= limit:
                chunk = await content.readany()
                if not chunk:
                    break
                buf += chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            return self._fail(flow, 502, f"upstream broke off the response body: {exc}")
        extra = bytes(buf[limit:])
        if extra and flow.response_body_overflow == "reject":
            return self._fail(flow, 502, "response body exceeds the inspection limit")
        body = await chain.response_body(flow, bytes(buf[:limit]), True, buffered=True)
        if flow.local_response is not None:
            return self._answer_local(flow)
        headers = flow.response_headers
        headers.popall("Content-Length", None)
        if not extra:
            flow.bytes_out = len(body)
            return web.Response(status=flow.response_status, body=body, headers=headers)
        out = web.StreamResponse(status=flow.response_status, headers=headers)
        out.enable_chunked_encoding()
        flow.response_started = True
        await out.prepare(flow.request)
        for part in (body, extra):
            flow.bytes_out += len(part)
            await out.write(part)
        while chunk := await content.readany():
            flow.bytes_out += len(chunk)
            await out.write(chunk)
        await out.write_eof()
        return out

    async def _websocket(self, flow: Flow, route: Route) -> web.StreamResponse:
        """Relay WebSocket messages between client and upstream."""
        assert self.session is not None
        service = route.service
        endpoint = service.pick()
        flow.endpoint = endpoint.url
        headers = CIMultiDict(
            (k, v) for k, v in flow.request_headers.items() if k.lower() not in _WS_HANDSHAKE)
        if not service.config.preserve_host:
            headers["Host"] = endpoint.netloc
        protocols = [p.strip() for p in
                     flow.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        url = URL(endpoint.url.replace("http", "ws", 1) + flow.upstream_path, encoded=True)
        try:
            upstream = await self.session.ws_connect(
                url, headers=headers, protocols=protocols, autoping=True, max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_close=10), compress=0,
            )
        except aiohttp.WSServerHandshakeError as exc:
            return self._fail(flow, 502, f"upstream refused the WebSocket upgrade ({exc.status})")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            kind, status, message = _classify(exc)
            self.metrics.upstream_errors.labels(service.name, kind).inc()
            return self._fail(flow, status, message)
        client = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (), max_msg_size=0)
        flow.response_status = 101
        flow.response_started = True
        await client.prepare(flow.request)

        async def pump(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                else:
                    break
            await dst.close(code=src.close_code or 1000)

        try:
            await asyncio.gather(pump(client, upstream), pump(upstream, client))
        except Exception as exc:  # a peer vanished: close both ends
            log.info("websocket relay ended: %r", exc)
        finally:
            await upstream.close()
            await client.close()
        return client

    def _fail(self, flow: Flow, status: int, message: str) -> web.Response:
        self.metrics.local_errors.labels(str(status)).inc()
        shaped = None
        if flow.error_body is not None:
            try:
                shaped = flow.error_body(status, message)
            except Exception:
                log.exception("a plugin's error_body failed; answering the standard error")
        flow.local_response = shaped or json_error(status, message, flow.request_id)
        return self._answer_local(flow, close=status in (400, 408, 413))

    def _answer_local(self, flow: Flow, close: bool = False) -> web.Response:
        local = flow.local_response
        assert local is not None
        if flow.extra_response_headers:
            headers = CIMultiDict(local.headers)
            for name, value in flow.extra_response_headers:
                headers.add(name, value)
            local = LocalResponse(local.status, local.body, headers)
        flow.response_status = local.status
        flow.bytes_out = len(local.body)
        return self._local(flow.request, local, flow.request_id, close)

    def _log(self, flow: Flow | None, request: web.BaseRequest, request_id: str, client_ip: str,
             status: int, started: float, route: str | None = None,
             error: str | None = None) -> None:
        duration = time.perf_counter() - started
        self.metrics.observe_request(route or "", status, duration)
        if not self.access_log.enabled:
            return
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "request_id": request_id,
            "client_ip": client_ip,
            "method": request.method,
            "path": flow.path if flow is not None else request.path,
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
        }
        if flow is not None:
            record["bytes_in"] = flow.bytes_in
            record["bytes_out"] = flow.bytes_out
            record["upstream"] = flow.endpoint
            if flow.upstream_duration is not None:
                record["upstream_ms"] = round(flow.upstream_duration * 1000, 3)
            if flow.consumer is not None:
                record["consumer"] = getattr(flow.consumer, "name", str(flow.consumer))
            if flow.decisions:
                record["decisions"] = [d.as_dict() for d in flow.decisions]
            if flow.local_response is not None and flow.local_response.status >= 400:
                error = _error_text(flow.local_response)
        if error:
            record["error"] = error
        self.access_log.write(record)


def _error_text(local: LocalResponse) -> str | None:
    try:
        data = json.loads(local.body)
    except ValueError:
        return None
    return data.get("error") if isinstance(data, dict) else None


def _classify(exc: BaseException) -> tuple[str, int, str]:
    """(metric kind, status for the client, message) for an upstream failure."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect_timeout", 504, "upstream connect timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", 502, "upstream refused the connection"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout", 504, "upstream timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "reset", 502, "upstream closed the connection"
    return "error", 502, f"upstream error: {type(exc).__name__}"
