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


def sqli_fingerprint(value: bytes) -> str | None:
    """libinjection's fingerprint when ``value`` looks like SQL injection, else None."""
    result = libinjection.is_sql_injection(_RawPayload(value))
    if not result["is_sqli"]:
        return None
    return str(result["fingerprint"])


def is_xss(value: bytes) -> bool:
    return bool(libinjection.is_xss(_RawPayload(value))["is_xss"])


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
