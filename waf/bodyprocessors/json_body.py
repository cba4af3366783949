"""JSON request bodies -> ARGS, named the way ModSecurity v3 names them.

Every scalar becomes one argument whose name is its path from a root called
``json``: object members are joined with ``.`` and array elements are
``array_<index>`` (ModSecurity v3's ``JSON::addArgument``), so::

    {"a": {"b": 1}, "c": [true, null, {"d": "x"}], "": 2}

gives ``json.a.b=1``, ``json.c.array_0=true``, ``json.c.array_1=`` (null is
the empty string), ``json.c.array_2.d=x`` and ``json.empty-key=2``. Numbers
keep their source text (``1e5`` stays ``1e5``), duplicate keys all appear,
and a top-level scalar is named ``json``. Coraza names array elements
``json.c.0`` and adds a count argument per array; CRS's tests hold with
either, and CRS's CI runs on ModSecurity, so ModSecurity's names are used.

Parsing is strict RFC 8259 (no NaN, comments or trailing commas; UTF-8
only), and accepts and rejects what ModSecurity's parser does; a lone
surrogate escape becomes ``?`` as there. Names and values were checked
against libmodsecurity 3.0.15 (see the differential tests), which puts
them in ARGS in hash order; here they come in document order. A malformed
document sets ``error`` and yields no arguments (ModSecurity keeps those
parsed before the error). Exceeding ``max_args`` or ``max_depth`` sets
``error`` and keeps the arguments found so far.

Documents nest fine up to ``max_depth``: the C ``json`` module parses
anything shallower than Python's recursion limit, and an iterative
tokenizer takes over beyond it. Deep nesting makes long names, so their
total size is capped relative to the body size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from waf.bodyprocessors.result import BodyResult

_PREFIX = "JSON parsing error: "

# Deep nesting multiplies name lengths; cap the names' total size.
_NAME_BUDGET_PER_BODY_BYTE = 32
_MIN_NAME_BUDGET = 1 << 20


def parse_json(body: bytes, *, max_depth: int = 10000, max_args: int = 100000,
               partial: bool = False) -> BodyResult:
    """Flatten a JSON document into (name, value) pairs; a malformed one sets ``error``.

    An empty body is no arguments and no error (as in ModSecurity). A
    ``partial`` body (the first bytes of a longer one) may stop anywhere, even
    inside a string, whose prefix is then the argument's value.
    """
    result = BodyResult()
    if not body:
        return result
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if partial and exc.reason == "unexpected end of data":
            return parse_json(body[: exc.start], max_depth=max_depth, max_args=max_args,
                              partial=True)
        result.error = (
            f"{_PREFIX}lexical error: invalid bytes in UTF8 string at offset {exc.start}."
        )
        return result
    sink = _Flattener(
        max_depth=max_depth,
        max_args=max_args,
        name_budget=max(_NAME_BUDGET_PER_BODY_BYTE * len(body), _MIN_NAME_BUDGET),
    )
    try:
        if partial:
            _tokenize(body, sink, partial=True)
            result.args = sink.args
            return result
        try:
            document = json.loads(
                text,
                object_pairs_hook=tuple,
                parse_int=str,
                parse_float=str,
                parse_constant=_reject,
            )
        except RecursionError:
            _tokenize(body, sink)  # deeper than the C parser goes
        else:
            _walk(document, sink)
    except _Malformed as exc:
        result.error = _PREFIX + str(exc)
        return result
    except json.JSONDecodeError as exc:
        result.error = f"{_PREFIX}parse error: {exc.msg} at offset {exc.pos}."
        return result
    except _LimitExceeded as exc:
        result.error = _PREFIX + str(exc)
    result.args = sink.args
    return result


class _Malformed(Exception):
    pass


class _LimitExceeded(Exception):
    pass


def _reject(constant: str) -> Any:
    raise _Malformed(f"parse error: {constant} is not valid JSON.")


def _text(value: object) -> bytes:
    """A scalar's argument value: strings and numbers as text, true/false, null as ''."""
    if value is None:
        return b""
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    assert isinstance(value, str)
    return value.encode("utf-8", "replace")


class _Flattener:
    """ModSecurity's container stack, turning parse events into named arguments.

    Each open container is a level ``[separator, name, head, is_array,
    count]``: the separator its parent used when it opened (``.`` or
    ``.array_N``), its own name, its full path (``head``, built and cached
    only when an argument beneath it needs it), and how many children an
    array has had. Opening and closing a container is constant time
    whatever the depth.
    """

    def __init__(self, *, max_depth: int, max_args: int, name_budget: int) -> None:
        self.max_depth = max_depth
        self.max_args = max_args
        self.name_budget = name_budget
        self.args: list[tuple[bytes, bytes]] = []
        self.levels: list[list[Any]] = []

    def in_array(self) -> bool:
        return bool(self.levels[-1][_IS_ARRAY])

    def _slot(self, key: bytes | None) -> tuple[bytes, bytes]:
        """(separator, name) for a new child of the innermost container."""
        top = self.levels[-1]
        if top[_IS_ARRAY]:
            index = top[_COUNT]
            top[_COUNT] = index + 1
            return b".array_%d" % index, b""
        return b".", key or b"empty-key"

    def _head(self) -> bytes:
        """The innermost container's path; cached there and in its parent only,
        so a deep stack never holds a path per level."""
        levels = self.levels
        top = levels[-1]
        if top[_HEAD] is not None:
            return top[_HEAD]  # type: ignore[no-any-return]
        base = len(levels) - 2
        while base >= 0 and levels[base][_HEAD] is None:
            base -= 1
        pieces: list[bytes] = [levels[base][_HEAD]] if base >= 0 else []
        for level in levels[base + 1 : -1]:
            pieces += (level[_SEP], level[_NAME])
        if len(levels) > 1:
            levels[-2][_HEAD] = b"".join(pieces)
            pieces = [levels[-2][_HEAD]]
        top[_HEAD] = b"".join([*pieces, top[_SEP], top[_NAME]])
        return top[_HEAD]  # type: ignore[no-any-return]

    def open(self, is_array: bool, key: bytes | None) -> None:
        if len(self.levels) >= self.max_depth:
            raise _LimitExceeded(f"Parsing depth limit exceeded (max {self.max_depth}).")
        sep, name = self._slot(key) if self.levels else (b"", b"json")
        self.levels.append([sep, name, None, is_array, 0])

    def open_empty(self, key: bytes | None) -> None:
        """An empty container: it names no argument but still takes a slot."""
        if len(self.levels) >= self.max_depth:
            raise _LimitExceeded(f"Parsing depth limit exceeded (max {self.max_depth}).")
        if self.levels and self.levels[-1][_IS_ARRAY]:
            self.levels[-1][_COUNT] += 1

    def close(self) -> None:
        self.levels.pop()

    def scalar(self, value: bytes, key: bytes | None) -> None:
        if self.levels:
            sep, name = self._slot(key)
            name = self._head() + sep + name
        else:
            name = b"json"
        if len(self.args) >= self.max_args:
            raise _LimitExceeded(f"argument limit exceeded (max {self.max_args}).")
        self.name_budget -= len(name)
        if self.name_budget < 0:
            raise _LimitExceeded(
                "argument names too long in total (nesting too deep for the body size)."
            )
        self.args.append((name, value))


_SEP, _NAME, _HEAD, _IS_ARRAY, _COUNT = range(5)


def _walk(document: object, sink: _Flattener) -> None:
    """Feed a parsed document (objects as tuples of pairs) to ``sink``, iteratively."""
    kind = type(document)
    if kind is not list and kind is not tuple:
        sink.scalar(_text(document), None)
        return
    if not document:
        sink.open_empty(None)
        return
    sink.open(kind is list, None)
    stack: list[Iterator[Any]] = [iter(document)]  # type: ignore[call-overload]
    while stack:
        in_array = sink.in_array()
        for item in stack[-1]:
            if in_array:
                key, value = None, item
            else:
                key, value = item[0].encode("utf-8", "replace"), item[1]
            kind = type(value)
            if kind is list or kind is tuple:
                if not value:
                    sink.open_empty(key)
                    continue
                sink.open(kind is list, key)
                stack.append(iter(value))
                break
            sink.scalar(_text(value), key)
        else:
            stack.pop()
            sink.close()


# -- iterative tokenizer, for documents nested deeper than json.loads goes --

# One token with the whitespace before it. Strings are matched with their
# escapes validated, and decoded only when they contain a backslash.
_TOKEN = re.compile(
    rb"""[ \t\n\r]*(?:
      ("[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*")
    | (-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    | (true|false|null)
    | ([\[\]{}:,])
    )""",
    re.VERBOSE,
)
_STRING, _NUMBER, _LITERAL, _PUNCT = 1, 2, 3, 4
_LITERALS = {b"true": b"true", b"false": b"false", b"null": b""}

# Grammar states: what the next token may be.
_VALUE = 0  # any value (start, after ':', after ',' in an array)
_VALUE_OR_END = 1  # after '['
_KEY_OR_END = 2  # after '{'
_KEY = 3  # after ',' in an object
_COLON = 4
_COMMA_OR_END = 5  # after a member or element
_DONE = 6  # after the top-level value


def _unexpected(token: bytes, at: int) -> _Malformed:
    return _Malformed(f"parse error: unexpected {token.decode()!r} at offset {at}.")


# What may be left when a partial body is cut inside a token.
_CUT_STRING = re.compile(rb'[ \t\n\r]*"((?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*)'
                         rb"(?:\\(?:u[0-9a-fA-F]{0,3})?)?\Z")
_CUT_SCALAR = re.compile(rb"[ \t\n\r]*(?:-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?"
                         rb"|t(?:ru?)?|f(?:a(?:ls?)?)?|n(?:ul?)?)\Z")


def _tokenize(body: bytes, sink: _Flattener, partial: bool = False) -> None:
    state = _VALUE
    pos = 0
    end = len(body)
    key: bytes | None = None
    # Open containers whose first token was seen but which are still empty
    # are opened in the sink lazily, so an empty one costs no name.
    pending: list[bool] = []
    match = _TOKEN.match
    while True:
        m = match(body, pos)
        if m is None:
            rest = body[pos:].lstrip(b" \t\n\r")
            if partial and (not rest or _CUT_SCALAR.match(body, pos)):
                return
            cut = _CUT_STRING.match(body, pos) if partial else None
            if cut is not None and state in (_VALUE, _VALUE_OR_END, _KEY_OR_END, _KEY):
                text = cut.group(1)
                if b"\\" in text:
                    text = json.loads(b'"' + text + b'"').encode("utf-8", "replace")
                if pending:
                    sink.open(pending.pop(), key)
                    key = None
                if state in (_KEY_OR_END, _KEY):
                    sink.scalar(b"", text)  # a cut name: an argument with no value yet
                else:
                    sink.scalar(text, key)
                return
            if not rest:
                if state == _DONE:
                    return
                raise _Malformed("parse error: premature EOF.")
            raise _Malformed(f"lexical error: invalid character at offset {end - len(rest)}.")
        pos = m.end()
        group = m.lastindex or 0
        tok = m.group(group)
        if group == _PUNCT:
            if tok == b"," and state == _COMMA_OR_END:
                state = _VALUE if sink.in_array() else _KEY
            elif tok == b":" and state == _COLON:
                state = _VALUE
            elif tok in (b"[", b"{") and state in (_VALUE, _VALUE_OR_END):
                if pending:
                    sink.open(pending.pop(), key)
                    key = None
                is_array = tok == b"["
                pending.append(is_array)
                state = _VALUE_OR_END if is_array else _KEY_OR_END
            elif tok in (b"]", b"}") and state in (_COMMA_OR_END, _VALUE_OR_END, _KEY_OR_END):
                closes_array = tok == b"]"
                if pending:
                    if pending[-1] != closes_array or state == _COMMA_OR_END:
                        raise _unexpected(tok, pos - 1)
                    pending.pop()
                    sink.open_empty(key)
                    key = None
                else:
                    if not sink.levels or sink.in_array() != closes_array or state != _COMMA_OR_END:
                        raise _unexpected(tok, pos - 1)
                    sink.close()
                state = _COMMA_OR_END if sink.levels else _DONE
            else:
                raise _unexpected(tok, pos - 1)
            continue
        if group == _STRING:
            value = tok[1:-1]
            if b"\\" in value:
                value = json.loads(tok).encode("utf-8", "replace")
            if state in (_KEY_OR_END, _KEY):
                if pending:
                    sink.open(pending.pop(), key)
                key = value
                state = _COLON
                continue
        elif group == _NUMBER:
            value = tok
        else:
            value = _LITERALS[tok]
        if state not in (_VALUE, _VALUE_OR_END):
            raise _Malformed(f"parse error: unexpected value at offset {m.start(group)}.")
        if pending:
            sink.open(pending.pop(), key)
            key = None
        sink.scalar(value, key)
        key = None
        state = _COMMA_OR_END if sink.levels else _DONE
