"""An append-only, crash-safe cache of teacher answers: one JSON line per answered request.

Why a JSONL file: every answer costs money or minutes, so each one is written the moment it
arrives and flushed to disk (``fsync``) before it counts as done. A run that is killed loses
at most the answers still in flight; the next run reads the file, skips what is already there
and asks only for the rest, so a finished job re-runs for free. A crash can leave a torn last
line: reading skips it (and says so), and the next append starts on a fresh line. Several
processes may append to the same file: each append takes an exclusive ``flock`` and writes
whole lines, and the first answer recorded for a key wins.

Two other kinds of line share the file, so that nothing the teacher said is lost: a
``"status": "malformed"`` line keeps an answer that was refused (never served from the cache,
there for a reader), and a ``"status": "revoked"`` line withdraws an answer a stage refused
after it was cached (it names the answer by its text's hash, so it withdraws that answer
only); the next run asks that question again. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per cache file there
    fcntl = None

log = logging.getLogger(__name__)

RESPONSES_FILE = "responses.jsonl"
MALFORMED = "malformed"
REVOKED = "revoked"


def text_hash(text: str | None) -> str:
    """The hash a revocation names an answer by."""
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


class ResponseCache:
    """Answers by request key, backed by ``<folder>/responses.jsonl``."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / RESPONSES_FILE
        self._records: dict[str, dict[str, Any]] = {}
        self._offset = 0
        self.torn_lines = 0
        self.malformed_lines = 0
        self.refresh()

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._records))

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
            self._file(key, record)
        self._offset += complete

    def _file(self, key: str, record: dict[str, Any]) -> None:
        status = record.get("status")
        if status == MALFORMED:
            self.malformed_lines += 1
        elif status == REVOKED:
            current = self._records.get(key)
            if current is not None and text_hash(current.get("text")) == record.get("text_sha"):
                del self._records[key]
        else:
            self._records.setdefault(key, record)

    @staticmethod
    def revocation(key: str, answer: dict[str, Any], reason: str) -> dict[str, Any]:
        """The line that withdraws the cached ``answer`` of ``key`` (a stage refused it)."""
        return {
            "key": key,
            "status": REVOKED,
            "text_sha": text_hash(answer.get("text")),
            "reason": reason,
        }

    def _is_new(self, record: dict[str, Any]) -> bool:
        return record.get("status") in (MALFORMED, REVOKED) or record["key"] not in self._records

    def append_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records (each with a ``key``) durably; returns how many were new.

        An answer is new when its key has none yet; malformed and revocation lines always are.
        """
        fresh = [r for r in records if self._is_new(r)]
        if not fresh:
            return 0
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            # Another process may have appended meanwhile (maybe the same keys): read it first.
            self.refresh()
            fresh = [r for r in fresh if self._is_new(r)]
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
