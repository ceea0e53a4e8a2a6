"""Token counts, cost estimates and the hard budget that stops a job before it overspends.

Before a request is sent, the guard reserves its worst case: the prompt's estimated tokens plus
``max_tokens`` for the answer, priced from ``prices.toml``. A request whose reservation would
take the job past its budget waits for the answers in flight to settle (they usually cost less
than reserved); if it still does not fit, the job stops there and every request after it is
reported as not run. The prompt estimate starts cautious (half a token per byte) and then
follows the endpoint's own counts. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

PRICES_FILE = Path(__file__).with_name("prices.toml")

_SNAPSHOT_SUFFIX = re.compile(r"^-(\d{4}-\d{2}-\d{2}|\d{4})$")
_START_TOKENS_PER_BYTE = 0.5  # cautious until the endpoint has reported real counts
_MARGIN = 1.15  # headroom over the largest tokens-per-byte seen so far
_PER_MESSAGE_TOKENS = 4  # chat formatting overhead per message (OpenAI's rule of thumb)


class BudgetError(ValueError):
    """A budget that cannot be enforced (no price for the model, no max_tokens...)."""


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


@dataclass(frozen=True)
class PriceTable:
    """Model prices, read from a TOML file (``prices.toml`` in this package by default)."""

    models: dict[str, Price]
    batch_discount: float = 0.5
    as_of: str = ""

    @classmethod
    def load(cls, path: Path | str = PRICES_FILE) -> PriceTable:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            models = {
                name: Price(float(entry["input"]), float(entry["output"]))
                for name, entry in raw["models"].items()
            }
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
            raise BudgetError(f"price table {path}: {error!r}") from error
        return cls(models, float(raw.get("batch_discount", 0.5)), str(raw.get("as_of", "")))

    def price(self, model: str) -> Price | None:
        """The price of ``model``: an exact entry, or an entry plus a dated-snapshot suffix."""
        if model in self.models:
            return self.models[model]
        for name in sorted(self.models, key=len, reverse=True):
            if model.startswith(name) and _SNAPSHOT_SUFFIX.match(model[len(name) :]):
                return self.models[name]
        return None

    def cost(
        self, model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False
    ) -> float | None:
        """Dollars for these tokens, or None when the model has no price."""
        price = self.price(model)
        if price is None:
            return None
        dollars = (prompt_tokens * price.input + completion_tokens * price.output) / 1e6
        return dollars * (self.batch_discount if batch else 1.0)


def prompt_bytes(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).encode("utf-8")) for m in body["messages"])


@dataclass
class Reservation:
    """The worst case of one request, held against the budget while it is in flight."""

    prompt_tokens: int
    completion_tokens: int
    usd: float
    prompt_bytes: int
    messages: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class BudgetGuard:
    """Counts what a job spends and refuses requests that could take it past its budget."""

    model: str
    prices: PriceTable
    budget_tokens: int = 0
    budget_usd: float = 0.0
    batch: bool = False
    spent_tokens: int = 0
    spent_usd: float = 0.0
    stopped: bool = False
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    _reserved_tokens: int = 0
    _reserved_usd: float = 0.0
    _in_flight: int = 0
    _tokens_per_byte: float = _START_TOKENS_PER_BYTE
    _seen_ratio: float = 0.0
    _changed: asyncio.Condition | None = None

    def __post_init__(self) -> None:
        if self.budget_usd and self.prices.price(self.model) is None:
            raise BudgetError(
                f"a money budget needs a price for model {self.model!r}: add it to "
                f"{PRICES_FILE} or budget in tokens (teacher.budget_tokens) instead"
            )

    @property
    def active(self) -> bool:
        return bool(self.budget_tokens or self.budget_usd)

    def estimate(self, body: dict[str, Any], request_id: str) -> Reservation:
        """The worst case of one request: estimated prompt tokens plus its max_tokens."""
        answer = body.get("max_tokens", body.get("max_completion_tokens"))
        if answer is None:
            if self.active:
                raise BudgetError(
                    f"request {request_id!r} sets no max_tokens, so a budget cannot bound it"
                )
            answer = 0
        size = prompt_bytes(body)
        prompt = (
            math.ceil(size * self._tokens_per_byte)
            + _PER_MESSAGE_TOKENS * len(body["messages"])
            + 3
        )
        usd = self.prices.cost(self.model, prompt, int(answer), batch=self.batch) or 0.0
        return Reservation(prompt, int(answer), usd, size, len(body["messages"]))

    def _fits(self, reservation: Reservation) -> bool:
        if self.budget_tokens and (
            self.spent_tokens + self._reserved_tokens + reservation.tokens > self.budget_tokens
        ):
            return False
        return not (
            self.budget_usd
            and self.spent_usd + self._reserved_usd + reservation.usd > self.budget_usd
        )

    def _take(self, reservation: Reservation) -> Reservation:
        self._reserved_tokens += reservation.tokens
        self._reserved_usd += reservation.usd
        self._in_flight += 1
        return reservation

    def try_reserve(self, reservation: Reservation) -> Reservation | None:
        """Reserve now or stop the job (the Batch API path, where nothing settles meanwhile)."""
        if self.stopped:
            return None
        if self._fits(reservation):
            return self._take(reservation)
        self.stopped = True
        return None

    async def reserve(self, reservation: Reservation) -> Reservation | None:
        """Reserve, waiting for answers in flight when that could make room; None means stop."""
        if not self.active:
            return self._take(reservation)
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            while not self.stopped and not self._fits(reservation):
                if self._in_flight == 0:
                    self.stopped = True
                    break
                await self._changed.wait()
            if self.stopped:
                return None
            return self._take(reservation)

    def _record(self, prompt_tokens: int, completion_tokens: int) -> None:
        tally = self.usage.setdefault(
            self.model, {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0}
        )
        tally["prompt_tokens"] += prompt_tokens
        tally["completion_tokens"] += completion_tokens
        tally["requests"] += 1
        self.spent_tokens += prompt_tokens + completion_tokens
        cost = self.prices.cost(self.model, prompt_tokens, completion_tokens, batch=self.batch)
        self.spent_usd += cost or 0.0

    def record_spent(self, usage: dict[str, int]) -> None:
        """Count tokens that were spent without a reservation (a batch from an earlier run)."""
        self._record(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))

    def _learn(self, reservation: Reservation, prompt_tokens: int) -> None:
        if reservation.prompt_bytes <= 0:
            return
        overhead = _PER_MESSAGE_TOKENS * reservation.messages + 3
        ratio = max(prompt_tokens - overhead, 0) / reservation.prompt_bytes
        self._seen_ratio = max(self._seen_ratio, ratio)
        self._tokens_per_byte = max(self._seen_ratio * _MARGIN, 0.05)

    def _release_now(self, reservation: Reservation) -> None:
        self._reserved_tokens -= reservation.tokens
        self._reserved_usd -= reservation.usd
        self._in_flight -= 1

    def settle_now(self, reservation: Reservation, usage: dict[str, int] | None) -> None:
        """Replace a reservation by what the answer really used (None: nothing was billed)."""
        self._release_now(reservation)
        if usage:
            prompt = int(usage.get("prompt_tokens", 0))
            self._record(prompt, int(usage.get("completion_tokens", 0)))
            self._learn(reservation, prompt)
        self._stop_if_over()

    def _stop_if_over(self) -> None:
        if (self.budget_tokens and self.spent_tokens > self.budget_tokens) or (
            self.budget_usd and self.spent_usd > self.budget_usd
        ):
            self.stopped = True

    def charge_worst_case_now(self, reservation: Reservation) -> None:
        """Settle an answer whose endpoint reported no usage: charge what was reserved."""
        self._release_now(reservation)
        self._record(reservation.prompt_tokens, reservation.completion_tokens)
        self._stop_if_over()

    async def settle(
        self, reservation: Reservation, usage: dict[str, int] | None, *, billed: bool = True
    ) -> None:
        """Settle with the reported usage and wake requests waiting for room.

        ``billed=False`` is for a request that failed (nothing was charged); a billed answer
        without a usage report is charged the worst case, so that budgets still hold.
        """
        if billed and usage is None:
            self.charge_worst_case_now(reservation)
        else:
            self.settle_now(reservation, usage if billed else None)
        if self.active and self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
