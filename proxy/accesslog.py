"""The JSON access log: one line per request."""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from proxy.config import AccessLogConfig


class AccessLog:
    def __init__(self, stream: IO[str] | None, owned: bool = False) -> None:
        self._stream = stream
        self._owned = owned

    @classmethod
    def from_config(cls, config: AccessLogConfig) -> AccessLog:
        if not config.enabled:
            return cls(None)
        if config.path == "-":
            return cls(sys.stdout)
        # Line-buffered: a line is on disk when the request is done.
        return cls(open(config.path, "a", buffering=1, encoding="utf-8"), owned=True)

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def write(self, record: dict[str, Any]) -> None:
        if self._stream is None:
            return
        try:
            self._stream.write(json.dumps(record, separators=(",", ":")) + "\n")
            if not self._owned:
                self._stream.flush()
        except (OSError, ValueError):
            # A full disk or closed pipe must not take requests down with it.
            pass

    def close(self) -> None:
        if self._owned and self._stream is not None:
            self._stream.close()
        self._stream = None
