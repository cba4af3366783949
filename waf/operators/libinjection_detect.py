"""``@detectSQLi`` / ``@detectXSS``: libinjection's SQL and HTML tokenizers.

The ``libinjection-python`` wrapper takes ``str`` and calls
``payload.encode("utf_8")`` on it. Request data is bytes, and re-encoding a
Latin-1 decoding would turn every byte >= 0x80 into two, so the wrapper is
handed an object whose ``encode`` returns the raw bytes unchanged. The C code
receives a pointer and a length, so NUL bytes are inspected too.
"""

from __future__ import annotations

import libinjection  # type: ignore[import-not-found]

from waf.operators import OperatorContext, OperatorTx, register


class _RawPayload:
    """Stands in for ``str`` so the wrapper passes our bytes through as-is."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def encode(self, *_args: object) -> bytes:
        return self._data


# Verdicts on short values, which repeat from request to request (header
# values, cookie and argument names): both tokenizers are pure functions of
# the bytes. Bounded like rules.ValueCache: emptied when full.
_SHORT = 512
_MAX_ENTRIES = 16_384
_sqli_seen: dict[bytes, str | None] = {}
_xss_seen: dict[bytes, bool] = {}


def _sqli(value: bytes) -> str | None:
    result = libinjection.is_sql_injection(_RawPayload(value))
    return str(result["fingerprint"]) if result["is_sqli"] else None


def _xss(value: bytes) -> bool:
    return bool(libinjection.is_xss(_RawPayload(value))["is_xss"])


def sqli_fingerprint(value: bytes) -> str | None:
    """libinjection's fingerprint when ``value`` looks like SQL injection, else None."""
    if len(value) > _SHORT:
        return _sqli(value)
    if value in _sqli_seen:
        return _sqli_seen[value]
    if len(_sqli_seen) >= _MAX_ENTRIES:
        _sqli_seen.clear()
    found = _sqli_seen[value] = _sqli(value)
    return found


def is_xss(value: bytes) -> bool:
    if len(value) > _SHORT:
        return _xss(value)
    found = _xss_seen.get(value)
    if found is None:
        if len(_xss_seen) >= _MAX_ENTRIES:
            _xss_seen.clear()
        found = _xss_seen[value] = _xss(value)
    return found


class DetectSQLi:
    __slots__ = ()

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        fingerprint = sqli_fingerprint(value)
        if fingerprint is None:
            return False
        if tx.capturing:
            tx.set_captures([fingerprint.encode("ascii", "replace")])
        return True


class DetectXSS:
    __slots__ = ()

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        return is_xss(value)


@register("detectSQLi")
def detect_sqli(argument: str, ctx: OperatorContext) -> DetectSQLi:
    return DetectSQLi()


@register("detectXSS")
def detect_xss(argument: str, ctx: OperatorContext) -> DetectXSS:
    return DetectXSS()
