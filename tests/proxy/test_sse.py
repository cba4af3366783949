"""Tests for proxy.sse: the shared Server-Sent Events parser and encoder."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable

import pytest

from proxy.sse import SSEBufferOverflow, SSEEvent, SSEParser, encode_event


def parse(chunks: Iterable[bytes], **kwargs: int) -> tuple[list[SSEEvent], SSEParser]:
    """Feed every chunk, then close; return all events and the parser."""
    parser = SSEParser(**kwargs)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.close()
    return events, parser


def fields(events: Iterable[SSEEvent]) -> list[tuple[str, str, str | None, int | None]]:
    """Everything but raw, for comparisons across different encodings of a stream."""
    return [(e.data, e.event, e.id, e.retry) for e in events]


def split_at(stream: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


# Every line-ending style, a chunk boundary inside multibyte characters in every position
# of the chunking tests, comments, an id-only block, a comment-only block and a trailing
# event terminated by a lone CR.
EV_GREETING = (
    b": welcome\n"  # a comment inside the event is part of its raw bytes
    b"event: greeting\n"
    b"id: 1\n"
    b"data: hello\n"
    b"data:  world\n"  # only the first space after the colon is stripped
    b"\n"
)
EV_UNICODE = b"retry: 3000\r\ndata: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\r\n\r\n"
ID_ONLY = b"id: 7\r\n\r\n"  # no data: not dispatched, but sets last_event_id
KEEPALIVE = b": ping\n\n"  # comment-only block: not dispatched
EV_EMPTY_CR = b"data\rid\r\r"  # field names without colons, lone-CR endings
EV_LAST = b"event: done\ndata: [DONE]\r\n\r"
STREAM = EV_GREETING + EV_UNICODE + ID_ONLY + KEEPALIVE + b"\n\n" + EV_EMPTY_CR + EV_LAST

EXPECTED = [
    SSEEvent(data="hello\n world", event="greeting", id="1", raw=EV_GREETING),
    SSEEvent(data="café € 😀", retry=3000, raw=EV_UNICODE),
    SSEEvent(data="", id="", raw=EV_EMPTY_CR),
    SSEEvent(data="[DONE]", event="done", raw=EV_LAST),
]


def test_single_feed() -> None:
    events, parser = parse([STREAM])
    assert events == EXPECTED
    assert parser.last_event_id == ""  # the empty id in EV_EMPTY_CR reset it
    assert parser.pending == b""


def test_last_event_id_after_id_only_block() -> None:
    events, parser = parse([EV_GREETING + EV_UNICODE + ID_ONLY])
    assert [e.data for e in events] == ["hello\n world", "café € 😀"]
    assert parser.last_event_id == "7"


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_every_two_chunk_split(cut: int) -> None:
    events, parser = parse(split_at(STREAM, cut))
    assert events == EXPECTED
    assert parser.last_event_id == ""


def test_every_three_chunk_split() -> None:
    for first in range(1, len(STREAM)):
        for second in range(first, len(STREAM)):
            events, _ = parse(split_at(STREAM, first, second))
            assert events == EXPECTED, (first, second)


def test_one_byte_chunks() -> None:
    events, _ = parse(STREAM[i : i + 1] for i in range(len(STREAM)))
    assert events == EXPECTED


def test_random_chunkings_with_empty_chunks() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        cuts = sorted(rng.choices(range(len(STREAM) + 1), k=rng.randint(1, 30)))
        events, _ = parse(split_at(STREAM, *cuts))  # repeated cuts give empty chunks
        assert events == EXPECTED, cuts


def test_events_come_out_as_soon_as_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.pending == b"data: a\n"
    assert [e.data for e in parser.feed(b"\ndata: b")] == ["a"]
    assert parser.pending == b"data: b"
    assert [e.data for e in parser.feed(b"\n\n")] == ["b"]
    assert parser.pending == b""


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(eol: bytes) -> None:
    lines = [b"event: e", b"id: 9", b"data: one", b"data: two", b"", b": c", b"data: 3", b""]
    stream = eol.join(lines) + eol
    events, parser = parse([stream])
    assert fields(events) == [("one\ntwo", "e", "9", None), ("3", "message", None, None)]
    assert b"".join(e.raw for e in events) == stream
    assert parser.last_event_id == "9"


def test_mixed_line_endings_in_one_event() -> None:
    events, _ = parse([b"data: a\rdata: b\r\ndata: c\n\r\n"])
    assert [e.data for e in events] == ["a\nb\nc"]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    parser = SSEParser()
    # If the LF after the CR were a second line ending, it would be a blank line that
    # dispatches "a" on its own.
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r") == []
    events = parser.feed(b"\n\r")
    assert events == []
    events = parser.feed(b"\n")
    assert events == [SSEEvent(data="a\nb", raw=b"data: a\r\ndata: b\r\n\r\n")]
    assert parser.close() == []


def test_lone_cr_at_chunk_end_is_resolved_by_next_chunk() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == []  # the last CR might still become CRLF
    assert parser.feed(b"data: b\r\r") == [SSEEvent(data="a", raw=b"data: a\r\r")]
    assert parser.close() == [SSEEvent(data="b", raw=b"data: b\r\r")]


def test_multiline_data() -> None:
    events, _ = parse([b"data: YHOO\ndata: +2\ndata: 10\n\n"])
    assert [e.data for e in events] == ["YHOO\n+2\n10"]


def test_field_value_parsing() -> None:
    stream = (
        b"data:test\n\n"  # no space after the colon
        b"data: test\n\n"  # one space stripped
        b"data:  two spaces\n\n"  # only one stripped
        b"data:\ttab\n\n"  # tab is not stripped
        b"data: a: b\n\n"  # only the first colon separates
        b"data\n\n"  # no colon: empty value
        b"data:\n\n"
        b"data\ndata\n\n"  # two empty lines joined
    )
    events, _ = parse([stream])
    assert [e.data for e in events] == [
        "test",
        "test",
        " two spaces",
        "\ttab",
        "a: b",
        "",
        "",
        "\n",
    ]


def test_unknown_and_miscased_fields_are_ignored() -> None:
    stream = b"foo: bar\nData: x\n data: y\nEvent: e\ndata: kept\n\nData: only\n\n"
    events, _ = parse([stream])
    assert fields(events) == [("kept", "message", None, None)]
    assert events[0].raw == stream[: stream.index(b"\n\n") + 2]


def test_comments() -> None:
    stream = b":\n: keep-alive\n\n:comment\ndata: x\n: trailing comment\n\n"
    events, _ = parse([stream])
    assert events == [
        SSEEvent(data="x", raw=b":comment\ndata: x\n: trailing comment\n\n"),
    ]


def test_blocks_without_data_are_not_dispatched() -> None:
    stream = (
        b"event: orphan\nid: 3\nretry: 10\n\n"  # no data: nothing dispatched, id kept
        b"data: next\n\n"  # the orphan's event type and retry do not leak here
    )
    events, parser = parse([stream])
    assert events == [SSEEvent(data="next", raw=b"data: next\n\n")]
    assert parser.last_event_id == "3"


def test_event_type_resets_but_last_event_id_persists() -> None:
    events, parser = parse([b"event: a\nid: 5\ndata: 1\n\ndata: 2\n\n"])
    assert fields(events) == [("1", "a", "5", None), ("2", "message", None, None)]
    assert parser.last_event_id == "5"


def test_empty_event_field_means_message() -> None:
    events, _ = parse([b"event:\ndata: x\n\nevent\ndata: y\n\n"])
    assert [e.event for e in events] == ["message", "message"]


def test_last_field_wins() -> None:
    events, _ = parse([b"event: a\nevent: b\nid: 1\nid: 2\nretry: 1\nretry: 2\ndata: x\n\n"])
    assert fields(events) == [("x", "b", "2", 2)]


def test_id_with_nul_is_ignored() -> None:
    events, parser = parse([b"id: 1\n\ndata: x\nid: a\x00b\n\n"])
    assert fields(events) == [("x", "message", None, None)]
    assert parser.last_event_id == "1"


def test_id_with_nul_does_not_clear_earlier_id_in_same_event() -> None:
    events, parser = parse([b"id: good\nid: \x00\ndata: x\n\n"])
    assert events[0].id == "good"
    assert parser.last_event_id == "good"


@pytest.mark.parametrize(
    "value",
    [
        b"12a",
        b"-1",
        b"+5",
        b" 5",
        b"5 ",
        b"1.5",
        b"",
        b"\xd9\xa1\xd9\xa2",
        b"\xc2\xb2",
        b"9" * 5000,
    ],
    ids=[
        "suffix",
        "minus",
        "plus",
        "space",
        "trailing",
        "float",
        "empty",
        "arabic",
        "super",
        "huge",
    ],
)
def test_invalid_retry_is_ignored(value: bytes) -> None:
    # "retry: " + value: the single space after the colon is stripped, so " 5" keeps one.
    events, _ = parse([b"retry: " + value + b"\ndata: x\n\n"])
    assert fields(events) == [("x", "message", None, None)]


def test_valid_retry() -> None:
    events, _ = parse([b"retry: 0042\ndata: x\n\nretry:0\ndata: y\n\n"])
    assert [e.retry for e in events] == [42, 0]


def test_leading_bom_is_dropped() -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    expected = [SSEEvent(data="x", raw=b"data: x\n\n")]
    for cut in range(len(stream) + 1):
        assert parse(split_at(stream, cut))[0] == expected, cut
    assert parse(stream[i : i + 1] for i in range(len(stream)))[0] == expected


def test_only_one_bom_is_dropped() -> None:
    # The second BOM becomes part of the field name "\ufeffdata", which is unknown.
    events, _ = parse([b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n"])
    assert [e.data for e in events] == ["y"]


def test_bom_later_in_stream_is_data() -> None:
    events, _ = parse([b"data: \xef\xbb\xbfx\n\n"])
    assert [e.data for e in events] == ["\ufeffx"]


def test_partial_bom_prefix_is_not_lost() -> None:
    # Starts like a BOM but is not one: the bytes are decoded as (invalid) UTF-8.
    events, _ = parse([b"\xef\xbb", b"data: x\n\n"])
    assert events == []  # the first line is the field "\ufffddata"
    events, _ = parse([b"\xef", b"\n", b"data: x\n\n"])
    assert [e.data for e in events] == ["x"]


def test_multibyte_character_split_in_every_position() -> None:
    stream = "data: ä€😀\n\n".encode()
    for cut in range(len(stream) + 1):
        assert [e.data for e in parse(split_at(stream, cut))[0]] == ["ä€😀"], cut


def test_invalid_utf8_is_replaced() -> None:
    events, _ = parse([b"event: \xff\ndata: a\xc3\ndata: \xe2\x82\n\n"])
    assert fields(events) == [("a\ufffd\n\ufffd", "\ufffd", None, None)]


def test_nul_in_data_is_kept() -> None:
    events, _ = parse([b"data: a\x00b\n\n"])
    assert [e.data for e in events] == ["a\x00b"]


def test_raw_concatenation_reproduces_input() -> None:
    stream = (
        b": comment\ndata: a\n\n"
        b"event: x\r\nid: 1\r\ndata: b\r\ndata: c\r\n\r\n"
        b"retry: 5\rdata: d\r\r"
        b'data: {"k": "v"}\n: trailing\n\n'
    )
    for cut in range(1, len(stream)):
        events, _ = parse(split_at(stream, cut))
        assert len(events) == 4
        assert b"".join(e.raw for e in events) == stream, cut


def test_raw_excludes_stray_blank_lines_between_events() -> None:
    events, _ = parse([b"\n\ndata: a\n\n\n\r\ndata: b\n\n"])
    assert [e.raw for e in events] == [b"data: a\n\n", b"data: b\n\n"]


def test_close_discards_incomplete_event() -> None:
    parser = SSEParser()
    assert [e.data for e in parser.feed(b"data: a\n\nid: 9\ndata: b\n")] == ["a"]
    assert parser.close() == []
    assert parser.pending == b"id: 9\ndata: b\n"
    assert parser.last_event_id == ""  # the id of a discarded event never takes effect


def test_close_discards_unterminated_last_line() -> None:
    # The spec's example: the third event has no blank line after it.
    stream = (
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event"
    )
    events, parser = parse([stream])
    assert fields(events) == [
        ("first event", "message", "1", None),
        ("second event", "message", "", None),
    ]
    assert parser.pending == b"data:  third event"
    assert parser.last_event_id == ""


def test_close_is_idempotent_and_feed_after_close_fails() -> None:
    parser = SSEParser()
    parser.feed(b"data: x\n")
    assert parser.close() == []
    assert parser.close() == []
    assert parser.pending == b"data: x\n"
    with pytest.raises(RuntimeError):
        parser.feed(b"\n")


def test_empty_chunks_and_empty_stream() -> None:
    parser = SSEParser()
    assert parser.feed(b"") == []
    assert parser.close() == []
    assert parser.pending == b""


class TestOverflow:
    def test_incomplete_line_over_limit_raises(self) -> None:
        parser = SSEParser(max_event_bytes=16)
        parser.feed(b"data: 0123456789")  # exactly 16 bytes: allowed
        with pytest.raises(SSEBufferOverflow):
            parser.feed(b"x")
        with pytest.raises(RuntimeError):
            parser.feed(b"\n\n")

    def test_overflow_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="max_event_bytes"):
            SSEParser(max_event_bytes=8).feed(b"data: 123456789")

    def test_complete_lines_of_an_unfinished_event_count(self) -> None:
        parser = SSEParser(max_event_bytes=32)
        parser.feed(b"data: 0123456789\n")
        with pytest.raises(SSEBufferOverflow):
            parser.feed(b"data: 0123456789\n")

    def test_comments_count(self) -> None:
        parser = SSEParser(max_event_bytes=64)
        with pytest.raises(SSEBufferOverflow):
            for _ in range(10):
                parser.feed(b": padding padding\n")

    @pytest.mark.parametrize("chunk_size", [1, 7, 1000])
    def test_oversized_event_raises_regardless_of_chunking(self, chunk_size: int) -> None:
        stream = b"data: " + b"x" * 100 + b"\n\n"
        parser = SSEParser(max_event_bytes=64)
        with pytest.raises(SSEBufferOverflow):
            for i in range(0, len(stream), chunk_size):
                parser.feed(stream[i : i + chunk_size])

    def test_limit_is_per_event_not_per_stream(self) -> None:
        event = b"data: 0123456789\n\n"  # 18 bytes
        parser = SSEParser(max_event_bytes=len(event))
        events = parser.feed(event * 1000)
        events += parser.feed(event * 1000)
        assert len(events) == 2000

    def test_buffer_is_trimmed_to_the_unfinished_event(self) -> None:
        parser = SSEParser(max_event_bytes=64)
        for _ in range(1000):
            parser.feed(b"data: 0123456789\n\ndata: partial")
            assert parser.feed(b"\n\n")[0].data == "partial"
            assert parser.pending == b""

    def test_invalid_limit(self) -> None:
        with pytest.raises(ValueError):
            SSEParser(max_event_bytes=0)


@pytest.mark.parametrize(
    ("data", "event", "id", "retry"),
    [
        ("hello", None, None, None),
        ("", None, None, None),
        ("\n", None, None, None),
        ("line 1\nline 2\n\nline 4", "update", "42", 1500),
        (" leading and trailing space ", "e", " id with spaces ", 0),
        ('{"choices": [{"delta": {"content": "é€😀"}}]}', None, "", None),
        (": not a comment\ndata: not a field", "message", None, None),
        ("\u2028 and \x0b and \x85 are not line breaks", None, None, None),
    ],
)
def test_encode_event_round_trips(
    data: str, event: str | None, id: str | None, retry: int | None
) -> None:
    encoded = encode_event(data, event=event, id=id, retry=retry)
    events, parser = parse([encoded])
    assert events == [
        SSEEvent(data=data, event=event or "message", id=id, retry=retry, raw=encoded)
    ]
    assert events[0].encode() == encode_event(
        data, event=None if event == "message" else event, id=id, retry=retry
    )
    if id is not None:
        assert parser.last_event_id == id


def test_encode_event_format() -> None:
    assert encode_event("a\nb", event="e", id="1", retry=10) == (
        b"event: e\nid: 1\nretry: 10\ndata: a\ndata: b\n\n"
    )
    assert encode_event("x") == b"data: x\n\n"


def test_encode_event_normalises_cr_in_data() -> None:
    encoded = encode_event("a\r\nb\rc")
    assert encoded == b"data: a\ndata: b\ndata: c\n\n"
    assert parse([encoded])[0][0].data == "a\nb\nc"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\rb"},
        {"id": "1\n"},
        {"id": "\r1"},
        {"id": "a\x00b"},
        {"retry": -1},
    ],
)
def test_encode_event_rejects_unsendable_values(kwargs: dict[str, str | int]) -> None:
    with pytest.raises(ValueError):
        encode_event("x", **kwargs)  # type: ignore[arg-type]


def test_sse_event_encode_is_canonical() -> None:
    messy = b": note\r\nid:7\r\nevent:message\r\ndata:a\r\ndata:b\r\n\r\n"
    (event,) = parse([messy])[0]
    assert event.raw == messy
    assert event.encode() == b"id: 7\ndata: a\ndata: b\n\n"
    assert parse([event.encode()])[0][0].data == event.data


def test_sse_event_is_frozen() -> None:
    event = SSEEvent(data="x")
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


def openai_chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion.chunk",
        "created": 1732579200,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


OPENAI_STREAM = (
    b"data: "
    + json.dumps(
        {
            "id": "chatcmpl-AbC123",
            "object": "chat.completion.chunk",
            "created": 1732579200,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        },
        separators=(",", ":"),
    ).encode()
    + b"\n\n"
    + openai_chunk("Bonjour")
    + openai_chunk(", ça")
    + openai_chunk(" va? 👋")
    + openai_chunk(None, finish="stop")
    + b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("chunk_size", [1, 3, 17, 256, 100_000])
def test_openai_chat_completion_stream(chunk_size: int) -> None:
    chunks = [OPENAI_STREAM[i : i + chunk_size] for i in range(0, len(OPENAI_STREAM), chunk_size)]
    events, parser = parse(chunks)
    assert [e.data for e in events][-1] == "[DONE]"
    assert all(e.event == "message" and e.id is None for e in events)
    payloads = [json.loads(e.data) for e in events[:-1]]
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads)
    assert text == "Bonjour, ça va? 👋"
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    assert b"".join(e.raw for e in events) == OPENAI_STREAM
    assert parser.pending == b""


def test_anthropic_messages_stream() -> None:
    stream = (
        b"event: message_start\n"
        b'data: {"type":"message_start","message":{"id":"msg_01","role":"assistant"}}\n\n'
        b"event: content_block_start\n"
        b'data: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
        b"event: ping\n"
        b'data: {"type": "ping"}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":" there"}}\n\n'
        b"event: content_block_stop\n"
        b'data: {"type":"content_block_stop","index":0}\n\n'
        b"event: message_stop\n"
        b'data: {"type":"message_stop"}\n\n'
    )
    events, _ = parse([stream[:100], stream[100:101], stream[101:]])
    assert [e.event for e in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_stop",
    ]
    assert all(json.loads(e.data)["type"] == e.event for e in events)
    text = "".join(
        json.loads(e.data)["delta"]["text"] for e in events if e.event == "content_block_delta"
    )
    assert text == "Hi there"
