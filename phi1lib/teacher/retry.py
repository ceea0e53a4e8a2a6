"""Which failures are worth another try, and how long to wait before it.

Rate limits (429), server errors (5xx), timeouts and dropped connections are transient: the
client waits and tries again, doubling a random ("full jitter") wait each time so that many
workers do not retry in lockstep, and waits exactly as long as the server asks when it sends
``Retry-After`` (or OpenAI's ``retry-after-ms``). Anything else (a 400, a 401, a missing model)
will fail the same way again and is recorded at once. Introduced in the appendix on teacher
endpoints.
"""

from __future__ import annotations

import email.utils
import random
import time

import openai

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
BASE_DELAY_S = 0.5  # the first retry waits up to this long; each next one up to twice as long
MAX_DELAY_S = 8.0  # ...but never more than this (the openai SDK's own cap)
MAX_RETRY_AFTER_S = 120.0


def is_retryable(error: BaseException) -> bool:
    """True for rate limits, 5xx, timeouts and connection errors."""
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    return isinstance(error, (openai.APIConnectionError, openai.APITimeoutError))


def retry_after_s(error: BaseException) -> float | None:
    """The wait the server asked for, from ``retry-after-ms`` or ``Retry-After``, if any."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if headers.get("retry-after-ms") is not None:
            return min(float(headers["retry-after-ms"]) / 1000.0, MAX_RETRY_AFTER_S)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return min(float(value), MAX_RETRY_AFTER_S)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value).timestamp()
            return min(max(when - time.time(), 0.0), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return None


def backoff_s(
    attempt: int,
    error: BaseException | None = None,
    base_s: float = BASE_DELAY_S,
    cap_s: float = MAX_DELAY_S,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
    asked = retry_after_s(error) if error is not None else None
    if asked is not None:
        return asked + random.uniform(0.0, 0.1 * asked + 0.01)
    return random.uniform(0.0, min(cap_s, base_s * 2**attempt))


def describe(error: BaseException) -> str:
    """A one-line account of a failure, for the result's ``error`` field."""
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}: {error.message}"
    return f"{type(error).__name__}: {error}"
