"""A bounded buffer that keeps the end of a stream: output floods cost no memory.

A program may write gigabytes to stdout; the sandbox keeps reading (so the program is not
blocked and its time limit still decides when it stops) but remembers only the last bytes,
where a traceback or the last test's output usually is. Introduced in chapter 2 ("Executing the
textbooks").
"""

from __future__ import annotations


class TailBuffer:
    """Keeps the last ``limit`` bytes appended, and counts all of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._data = bytearray()

    def append(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._data += chunk[-self.limit :]
        overflow = len(self._data) - self.limit
        if overflow > 0:
            del self._data[:overflow]

    @property
    def truncated(self) -> bool:
        return self.total > len(self._data)

    def text(self) -> str:
        """The kept bytes as text; a multi-byte character cut at the start becomes U+FFFD."""
        return self._data.decode("utf-8", errors="replace")
