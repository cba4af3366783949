"""RE2 for every pattern the gateway runs on request data (linear time, no backtracking)."""

from __future__ import annotations

from typing import Any

import re2

_OPTIONS = re2.Options()
# RE2 otherwise prints its own copy of every compile error to stderr.
_OPTIONS.log_errors = False


def compile_regex(pattern: str) -> Any:
    """Compile an RE2 pattern; raises ValueError with RE2's reason."""
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"bad regex {pattern!r}: {reason}") from None
