"""The JSON-lines audit log the WAF plugins append to."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


class AuditLog:
    """One file, opened in start() and closed in close(); a line per record."""

    def __init__(self, path: str | None, base_dir: Path) -> None:
        self.path = None if path is None else (path if os.path.isabs(path)
                                               else str(base_dir / path))
        self._fd: int | None = None

    @property
    def open(self) -> bool:
        return self._fd is not None

    def start(self) -> None:
        if self.path is not None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            return
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with contextlib.suppress(OSError):  # a full disk must not fail requests
            os.write(self._fd, line.encode("utf-8", "replace"))
