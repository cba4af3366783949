"""Server-Sent Events (``text/event-stream``): the one parser and encoder in Bastion.

Every plugin that reads or rewrites an event stream (the AI plugins reading OpenAI
or Anthropic responses, for example) goes through this module instead of splitting
lines itself::

    def relay(event: SSEEvent) -> bytes:
        if event.event != "message":
            return event.raw  # untouched, byte-for-byte
        return encode_event(redact(event.data), id=event.id, retry=event.retry)

    parser = SSEParser()
    for chunk in upstream_chunks:
        for event in parser.feed(chunk):
            send(relay(event))
    for event in parser.close():  # end of stream; an unterminated event is dropped
        send(relay(event))

Parsing follows the WHATWG HTML "event stream interpretation" rules: CRLF, LF or a
lone CR end a line; ``data``, ``event``, ``id`` and ``retry`` are the fields; a line
starting with ``:`` is a comment; a blank line dispatches the event; a block without
``data`` lines dispatches nothing; a leading UTF-8 BOM is dropped. Bytes are decoded as
UTF-8 with replacement characters.

Blocks that dispatch nothing (comment-only keep-alives, ``id``-only blocks), extra
blank lines between events and the BOM belong to no event's ``raw``.

A lone CR at the very end of a chunk may be the first half of a CRLF split across
chunks, so the line it ends is processed when the next chunk (or ``close()``) arrives.
This keeps ``raw`` and the events independent of how the stream was chunked; it only
delays streams that use bare CR line endings.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

__all__ = ["SSEBufferOverflow", "SSEEvent", "SSEParser", "encode_event"]

_BOM = b"\xef\xbb\xbf"
_EOL = re.compile(rb"\r\n|\r|\n")
_TEXT_EOL = re.compile(r"\r\n|\r|\n")
_CR = 0x0D
_COLON = 0x3A
_SPACE = 0x20


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event.

    ``id`` and ``retry`` are the fields seen in this event (``None`` when absent or
    invalid); the stream-wide last event ID is ``SSEParser.last_event_id``. ``raw`` is
    the event exactly as received, from its first line (comments included) through the
    terminating blank line.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    raw: bytes = b""

    def encode(self) -> bytes:
        """Canonical serialisation of this event (``raw`` is not used)."""
        event = None if self.event == "message" else self.event
        return encode_event(self.data, event=event, id=self.id, retry=self.retry)


class SSEBufferOverflow(ValueError):
    """An event grew beyond ``SSEParser.max_event_bytes``; the stream should be aborted."""


class SSEParser:
    """Incremental event-stream parser: ``feed()`` chunks, get complete events back.

    ``max_event_bytes`` bounds the size of one event (its raw bytes, comments included)
    and therefore what the parser ever buffers for an unfinished event. A larger event
    raises ``SSEBufferOverflow`` whichever way the stream is chunked, and the parser is
    unusable afterwards.
    """

    __slots__ = (
        "_buf",
        "_closed",
        "_data",
        "_event",
        "_id",
        "_line_start",
        "_retry",
        "_started",
        "last_event_id",
        "max_event_bytes",
    )

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        if max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be positive, got {max_event_bytes}")
        self.max_event_bytes = max_event_bytes
        self.last_event_id = ""
        # Bytes from the first line of the unfinished event to the end of the input seen
        # so far. Lines before _line_start are already parsed into the fields below;
        # they stay here only for ``raw`` and ``pending``.
        self._buf = bytearray()
        self._line_start = 0
        self._started = False  # past the (optional) leading BOM
        self._closed = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    @property
    def pending(self) -> bytes:
        """Bytes of the unfinished event: after ``close()``, what was discarded."""
        return bytes(self._buf)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse the next chunk of the stream; return the events it completed."""
        if self._closed:
            raise RuntimeError("SSEParser.feed() called after close() or an overflow")
        if not chunk:
            return []
        buf = self._buf
        # Everything before the old end was searched for line endings already, except
        # a trailing CR that may pair with an LF at the start of this chunk.
        scan_from = max(self._line_start, len(buf) - 1)
        buf += chunk
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                return []
            self._started = True
            if buf.startswith(_BOM):
                del buf[: len(_BOM)]
            scan_from = 0
        return self._parse(scan_from, at_eof=False)

    def close(self) -> list[SSEEvent]:
        """End of stream: return the events still owed, discard an unfinished one.

        The only event that can still come out is one whose terminating blank line
        ended in a lone CR at the very end of the last chunk.
        """
        if self._closed:
            return []
        events = self._parse(max(self._line_start, len(self._buf) - 1), at_eof=True)
        self._closed = True
        return events

    def _parse(self, scan_from: int, *, at_eof: bool) -> list[SSEEvent]:
        buf = self._buf
        end = len(buf)
        limit = self.max_event_bytes
        events: list[SSEEvent] = []
        line_start = self._line_start
        block_start = 0
        for match in _EOL.finditer(buf, scan_from):
            eol_start, eol_end = match.span()
            if eol_end == end and buf[eol_start] == _CR and not at_eof and eol_end - eol_start == 1:
                break  # maybe half of a CRLF: wait for the next byte
            if eol_start == line_start:  # blank line
                if line_start > block_start:
                    if eol_end - block_start > limit:
                        self._overflow(eol_end - block_start)
                    event = self._dispatch(buf, block_start, eol_end)
                    if event is not None:
                        events.append(event)
                block_start = eol_end
            elif buf[line_start] != _COLON:  # a comment otherwise
                self._field(buf, line_start, eol_start)
            line_start = eol_end
        del buf[:block_start]
        self._line_start = line_start - block_start
        if len(buf) > limit:
            self._overflow(len(buf))
        return events

    def _field(self, buf: bytearray, start: int, end: int) -> None:
        colon = buf.find(b":", start, end)
        if colon < 0:
            name = buf[start:end]
            value = bytearray()
        else:
            name = buf[start:colon]
            start = colon + 1
            if start < end and buf[start] == _SPACE:
                start += 1
            value = buf[start:end]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # ASCII digits only, unlike str.isdigit
            # int() refuses more than sys.get_int_max_str_digits() digits: ignore those too
            with contextlib.suppress(ValueError):
                self._retry = int(value)

    def _dispatch(self, buf: bytearray, start: int, end: int) -> SSEEvent | None:
        if self._id is not None:
            self.last_event_id = self._id
        event = None
        if self._data:
            event = SSEEvent(
                data="\n".join(self._data),
                event=self._event or "message",
                id=self._id,
                retry=self._retry,
                raw=bytes(buf[start:end]),
            )
        self._data = []
        self._event = ""
        self._id = None
        self._retry = None
        return event

    def _overflow(self, size: int) -> None:
        self._closed = True
        raise SSEBufferOverflow(
            f"server-sent event of at least {size} bytes exceeds max_event_bytes"
            f"={self.max_event_bytes}"
        )


def encode_event(
    data: str,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Serialise one event: ``event:``, ``id:``, ``retry:``, one ``data:`` line per line
    of ``data``, then a blank line, all with LF endings.

    Line breaks in ``data`` (LF, CRLF or CR) become separate ``data:`` lines, so a
    receiver sees them as LF. An empty ``event`` is omitted (receivers read it as
    "message"). Raises ``ValueError`` if ``event`` or ``id`` contains CR or LF, if ``id``
    contains NUL (receivers would ignore it) or if ``retry`` is negative.
    """
    parts: list[str] = []
    if event:
        if "\r" in event or "\n" in event:
            raise ValueError(f"SSE event type contains a line break: {event!r}")
        parts.append(f"event: {event}\n")
    if id is not None:
        if "\r" in id or "\n" in id or "\0" in id:
            raise ValueError(f"SSE id contains CR, LF or NUL: {id!r}")
        parts.append(f"id: {id}\n")
    if retry is not None:
        if retry < 0:
            raise ValueError(f"SSE retry must be >= 0, got {retry}")
        parts.append(f"retry: {retry}\n")
    lines = _TEXT_EOL.split(data) if "\r" in data else data.split("\n")
    for line in lines:
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")
