"""An append-only, crash-safe cache of teacher answers: one JSON line per answered request.

Why a JSONL file: every answer costs money or minutes, so each one is written the moment it
arrives and flushed to disk (``fsync``) before it counts as done. A run that is killed loses
at most the answers still in flight; the next run reads the file, skips what is already there
and asks only for the rest, so a finished job re-runs for free. A crash can leave a torn last
line: reading skips it (and says so), and the next append starts on a fresh line. Several
processes may append to the same file: each append takes an exclusive ``flock`` and writes
whole lines, and the first answer recorded for a key wins. Introduced in the appendix on
teacher endpoints.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per cache file there
    fcntl = None

log = logging.getLogger(__name__)

RESPONSES_FILE = "responses.jsonl"


class ResponseCache:
    """Answers by request key, backed by ``<folder>/responses.jsonl``."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / RESPONSES_FILE
        self._records: dict[str, dict[str, Any]] = {}
        self._offset = 0
        self.torn_lines = 0
        self.refresh()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> dict[str, Any] | None:
        return self._records.get(key)

    def keys(self) -> set[str]:
        return set(self._records)

    def refresh(self) -> None:
        """Read what was appended since the last read (by this or another process)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1  # a last line without newline may still be growing
        position = self._offset
        for line in data[:complete].split(b"\n")[:-1]:
            start, position = position, position + len(line) + 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = record["key"]
            except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                self.torn_lines += 1
                log.warning(
                    "%s: skipping an unreadable line at byte %d (a torn write from a crash?)",
                    self.path,
                    start,
                )
                continue
            self._records.setdefault(key, record)
        self._offset += complete

    def append_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records (each with a ``key``) durably; returns how many were new."""
        fresh = [r for r in records if r["key"] not in self._records]
        if not fresh:
            return 0
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            # Another process may have appended meanwhile (maybe the same keys): read it first.
            self.refresh()
            fresh = [r for r in fresh if r["key"] not in self._records]
            size = os.fstat(fd).st_size
            prefix = b""
            if size and os.pread(fd, 1, size - 1) != b"\n":
                prefix = b"\n"  # a torn line from a crashed writer: start ours on a new line
            payload = b"".join(
                json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
                for r in fresh
            )
            if payload:
                view = memoryview(prefix + payload)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self.refresh()
        return len(fresh)
