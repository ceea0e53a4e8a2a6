"""How many requests to keep in flight: as many as the server answers well within the timeout.

A server that generates one answer at a time (``transformers serve`` without continuous
batching, llama.cpp with one slot, a lone Ollama model) queues what it is sent, and the
client's ``timeout_s`` counts that queueing: sixteen requests of four seconds each make the
last one wait a minute, time out, and be sent again to the back of the queue. A hosted API, on
the other hand, answers sixty-four requests as fast as one.

So the client measures. It starts with a few requests in flight and doubles them while answers
come back within a quarter of the timeout (slow start), then adds one per round; when an
answer takes more than half of the timeout, or a request times out, it halves the number
(at most once per round of requests in flight, so that one slow round counts once). Error
statuses and lost connections say nothing about queueing and change nothing; rate limits are
the ``Retry-After`` wait's business. It never
goes above ``teacher.concurrency``, the ceiling a profile sets for servers that can take it.
Throughput against a one-at-a-time server is the same at any concurrency; what adapting saves
is the timeouts and the work the server did for requests the client had given up on.
Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

START = 4  # requests in flight before anything is known
HEALTHY = 0.25  # an answer within this share of the timeout lets the client send more
SLOW = 0.5  # an answer slower than this share of the timeout halves what is in flight
ANSWER, TIMEOUT, ERROR = "answer", "timeout", "error"  # what became of a request


class AdaptiveLimit:
    """A gate for requests in flight whose width follows the latency (see the module doc)."""

    def __init__(self, ceiling: int, timeout_s: float, start: int = START):
        self.ceiling = max(1, ceiling)
        self.timeout_s = timeout_s
        self.limit = float(min(self.ceiling, max(1, start)))
        self.in_flight = 0
        self.lowest = int(self.limit)
        self.highest = int(self.limit)
        self.lowered = 0
        self._slow_start = True
        self._epoch = 0  # bumped at each decrease; slow answers from older epochs count once
        self._changed = asyncio.Condition()

    @property
    def width(self) -> int:
        return max(1, math.floor(self.limit))

    async def acquire(self) -> tuple[int, float]:
        """Wait for room; returns the ticket to give back to :meth:`release`."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.width)
            self.in_flight += 1
            return self._epoch, time.monotonic()

    async def release(self, ticket: tuple[int, float], outcome: str) -> None:
        """Give the room back and learn from how long the request took.

        ``outcome`` is ``answer`` (any completion), ``timeout``, or ``error`` (an error status
        or a lost connection, which says nothing about queueing and changes nothing).
        """
        epoch, started = ticket
        latency = time.monotonic() - started
        async with self._changed:
            self.in_flight -= 1
            slow = outcome == TIMEOUT or (outcome == ANSWER and latency > SLOW * self.timeout_s)
            if slow and epoch == self._epoch:
                self._decrease()
            elif outcome == ANSWER and latency <= HEALTHY * self.timeout_s:
                self._increase()
            self._changed.notify_all()

    def _decrease(self) -> None:
        self.limit = max(1.0, math.floor(self.limit / 2))
        self._slow_start = False
        self._epoch += 1
        self.lowered += 1
        self.lowest = min(self.lowest, self.width)

    def _increase(self) -> None:
        step = 1.0 if self._slow_start else 1.0 / self.limit
        self.limit = min(float(self.ceiling), self.limit + step)
        self.highest = max(self.highest, self.width)

    def summary(self) -> dict[str, Any]:
        """What the job report says about it."""
        return {
            "max": self.ceiling,
            "highest": self.highest,
            "lowest": self.lowest,
            "final": self.width,
            "lowered": self.lowered,
        }
